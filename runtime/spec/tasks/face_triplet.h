// Spec of face_triplet: an encoder trained with the triplet loss for face verification of
// people never seen in training. Classes of the image set are identities: data.train_classes
// are trained on, data.eval_classes are held out and only evaluated. Batches are P identities
// x K images (data.identities_per_batch x data.images_per_identity), so train.batch_size,
// data.split and data.generate do not apply.
#ifndef DTRAIN_RUNTIME_SPEC_TASKS_FACE_TRIPLET_H_
#define DTRAIN_RUNTIME_SPEC_TASKS_FACE_TRIPLET_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/spec/sections/cnn_model.h"
#include "runtime/spec/sections/image_data.h"
#include "runtime/spec/task_spec.h"

namespace dtrain {

// How each anchor's positive and negative are chosen inside the batch.
enum class TripletMining { kBatchHard, kSemiHard };
// Mine among the whole global batch (all ranks) or among this rank's shard only.
enum class MiningScope { kGlobal, kLocal };
const char* ToString(TripletMining v);
const char* ToString(MiningScope v);

// The face_triplet fields of `data`, besides the image ones. Classes are named by label index
// (sorted folder names for image_folder, the label values for idx).
struct IdentityDataSpec : ImageDataSpec {
  std::vector<int> train_classes;  // empty: every class that is not in eval_classes
  std::vector<int> eval_classes;   // held out (never trained on); required, >= 2 classes
  int identities_per_batch = 8;    // P: identities in every global batch (all ranks together)
  int images_per_identity = 4;     // K: images of each of them
  int gallery_per_identity = 1;    // identification: the first G images of a held-out identity
};

// L = max(|f(A) - f(P)|^2 - |f(A) - f(N)|^2 + margin, 0).
struct LossSpec {
  double margin = 0.2;  // > 0
  TripletMining mining = TripletMining::kBatchHard;
  MiningScope mining_scope = MiningScope::kGlobal;
};

class FaceTripletSpec final : public TaskSpec {
 public:
  IdentityDataSpec data;
  ModelSpec model;  // model.embedding_dim is the encoder's output size
  LossSpec loss;

  std::unique_ptr<TaskSpec> Clone() const override {
    return std::make_unique<FaceTripletSpec>(*this);
  }
  std::vector<SpecReader::Field> DataFields(SpecReader& reader) override;
  std::vector<SpecReader::Field> Sections(SpecReader& reader) override;
  void Finish(SpecReader& reader, const JobSpec& spec) override;
  void EmitDataFields(YAML::Emitter& out) const override;
  void EmitSections(YAML::Emitter& out) const override;
  std::vector<std::pair<std::string, std::string>> UnusedCoreFields() const override;
  ResourceEstimate EstimateNeeds(const JobSpec& spec) const override;
};

void RegisterFaceTripletSpec(TaskSpecRegistry& registry);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_TASKS_FACE_TRIPLET_H_
