// SpecFingerprint: the fields of a job spec that decide what a checkpoint's numbers mean (task,
// data, model, optimizer, schedule, batch, seed), stored in every checkpoint so that --resume
// can refuse a checkpoint another spec wrote and say which fields differ. Fields that may change
// between attempts of one run without changing the run are left out: the job's name, where it
// writes (output_dir, checkpoint.*), restart.*, distributed.* (ranks, backend, timeout),
// train.epochs (a resumed run may be extended), train.log_every_steps, train.intra_op_threads.
// Torch-free.
#ifndef DTRAIN_WORKERS_TRAINER_SPEC_FINGERPRINT_H_
#define DTRAIN_WORKERS_TRAINER_SPEC_FINGERPRINT_H_

#include <map>
#include <string>

#include "runtime/common/status.h"
#include "runtime/spec/job_spec.h"

namespace dtrain::trainer {

struct SpecFingerprint {
  // "train.optimizer.lr" -> "0.01", as the fully defaulted spec (ToYaml) writes them.
  std::map<std::string, std::string> fields;

  static SpecFingerprint Of(const JobSpec& spec);

  // 16 hex digits (FNV-1a over the fields), for messages and summaries.
  std::string Hash() const;
  // The fields as one JSON object, and back (INVALID_ARGUMENT for text that is not one).
  std::string ToJson() const;
  static StatusOr<SpecFingerprint> FromJson(const std::string& text);

  // "" when equal, else one "field: 'a' in the checkpoint, 'b' in this spec" per difference,
  // joined by "; " (a field only one side has shows as '(absent)').
  std::string Differences(const SpecFingerprint& checkpoint) const;
};

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_SPEC_FINGERPRINT_H_
