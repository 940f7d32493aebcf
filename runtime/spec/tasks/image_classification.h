// Spec of the image classification tasks (CS230 lecture 2):
//  - day_night: one sigmoid output trained with the log-likelihood loss (needs 2 classes);
//  - multiclass: K softmax outputs with cross-entropy.
// Sections: the image `data` fields (sections/image_data.h) and a CNN `model`
// (sections/cnn_model.h).
#ifndef DTRAIN_RUNTIME_SPEC_TASKS_IMAGE_CLASSIFICATION_H_
#define DTRAIN_RUNTIME_SPEC_TASKS_IMAGE_CLASSIFICATION_H_

#include <memory>

#include "runtime/spec/sections/cnn_model.h"
#include "runtime/spec/sections/image_data.h"
#include "runtime/spec/task_spec.h"

namespace dtrain {

class ImageClassificationSpec final : public TaskSpec {
 public:
  explicit ImageClassificationSpec(bool binary) : binary(binary) {}

  bool binary;  // day_night: one sigmoid output; multiclass: softmax
  ImageDataSpec data;
  ModelSpec model;

  std::unique_ptr<TaskSpec> Clone() const override {
    return std::make_unique<ImageClassificationSpec>(*this);
  }
  std::vector<SpecReader::Field> DataFields(SpecReader& reader) override;
  std::vector<SpecReader::Field> Sections(SpecReader& reader) override;
  void Finish(SpecReader& reader, const JobSpec& spec) override;
  void EmitDataFields(YAML::Emitter& out) const override;
  void EmitSections(YAML::Emitter& out) const override;
  ResourceEstimate EstimateNeeds(const JobSpec& spec) const override;
};

void RegisterImageClassificationSpecs(TaskSpecRegistry& registry);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_TASKS_IMAGE_CLASSIFICATION_H_
