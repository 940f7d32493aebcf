// Checkpoints: model + optimizer + loop position + the spec fingerprint of the run that wrote
// them, serialised in memory and written by rank 0 with WriteFileAtomically (temp file, fsync,
// rename, fsync of the directory), keeping the newest `keep_last`. Files are named
// ckpt-<global step, 10 digits>.pt so lexical order is step order.
//
// File format: torch's archive followed by a 24-byte trailer ("dtckpt01", the archive's length
// and its FNV-1a 64 checksum, little-endian), so a torn or bit-flipped file is found before
// anything of it is loaded. A full disk fails the write (RESOURCE_EXHAUSTED naming the file)
// and leaves the previous checkpoints as they were.
#ifndef DTRAIN_WORKERS_TRAINER_CHECKPOINT_H_
#define DTRAIN_WORKERS_TRAINER_CHECKPOINT_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runtime/common/status.h"
#include "workers/trainer/spec_fingerprint.h"

namespace torch::nn {
class Module;
}
namespace torch::optim {
class Optimizer;
}

namespace dtrain::trainer {

// Where the loop stands: the next micro-batch to run is `micro_step` of epoch `epoch`.
struct LoopPosition {
  int64_t epoch = 0;
  int64_t micro_step = 0;
  int64_t global_step = 0;  // optimizer steps taken so far
};

Status SaveCheckpoint(const std::string& dir, const LoopPosition& position,
                      torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                      const SpecFingerprint& fingerprint, int keep_last);

// The complete checkpoints in dir, oldest first (temp files are ignored).
std::vector<std::string> ListCheckpoints(const std::string& dir);
// Newest complete checkpoint in dir, or nullopt when there is none.
std::optional<std::string> FindLatestCheckpoint(const std::string& dir);

// Loads into existing model/optimizer (shapes must match). Errors name the file:
// DATA_LOSS for a file that is torn, corrupt or not a checkpoint (nothing was loaded);
// FAILED_PRECONDITION for a checkpoint another spec wrote, naming the fields that differ.
Status LoadCheckpoint(const std::string& path, torch::nn::Module& model,
                      torch::optim::Optimizer& optimizer, const SpecFingerprint& expected,
                      LoopPosition* position);

// What --resume does: loads the newest checkpoint in dir that is intact. A corrupt newer one is
// skipped with a warning through `warn` (the run continues from the previous one, repeating a
// few steps); a checkpoint of another spec is an error, never skipped. nullopt when dir holds
// no checkpoint; DATA_LOSS when it holds some and none is intact.
StatusOr<std::optional<std::string>> ResumeFromNewestIntact(
    const std::string& dir, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
    const SpecFingerprint& expected, LoopPosition* position,
    const std::function<void(const std::string&)>& warn);

// Saves the model alone (the job's final artifact): a plain torch archive, no trailer.
Status SaveModel(const std::string& path, torch::nn::Module& model);

}  // namespace dtrain::trainer

#endif  // DTRAIN_WORKERS_TRAINER_CHECKPOINT_H_
