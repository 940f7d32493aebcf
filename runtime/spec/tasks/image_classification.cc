#include "runtime/spec/tasks/image_classification.h"

#include <algorithm>

#include "runtime/spec/job_spec.h"

namespace dtrain {

std::vector<SpecReader::Field> ImageClassificationSpec::DataFields(SpecReader& reader) {
  return data.Fields(reader);
}

std::vector<SpecReader::Field> ImageClassificationSpec::Sections(SpecReader& reader) {
  return {{"model", false, [this, &reader](const SpecReader::Value& v) {
             ReadCnnModel(reader, v, /*with_embedding=*/false, &model);
           }}};
}

void ImageClassificationSpec::Finish(SpecReader& reader, const JobSpec&) { data.Finish(reader); }

void ImageClassificationSpec::EmitDataFields(YAML::Emitter& out) const { data.Emit(out); }

void ImageClassificationSpec::EmitSections(YAML::Emitter& out) const {
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  EmitCnnModel(out, model, /*with_embedding=*/false);
  out << YAML::EndMap;
}

ResourceEstimate ImageClassificationSpec::EstimateNeeds(const JobSpec& spec) const {
  ResourceEstimate e;
  CnnInput in;
  // IDX images come at the files' own size, unknown until they are read: a 1 x 1 x 1 input
  // gives a lower bound, which still catches an impossible model.
  in.channels = std::max(1, data.channels);
  in.height = std::max(1, data.height);
  in.width = std::max(1, data.width);
  // day_night has one output; multiclass at least 2 (the classes are known once data is read).
  in.outputs = binary ? 1 : 2;
  in.input_field = "data.resolution";
  EstimateCnn(model, in, &e);
  e.bytes_per_parameter = BytesPerParameter(spec.train.optimizer);
  e.batch_per_rank = spec.train.batch_size;
  data.Estimate(&e);
  ChooseMemoryField("train.batch_size", "data.resolution", &e);
  return e;
}

void RegisterImageClassificationSpecs(TaskSpecRegistry& registry) {
  (void)registry.Register({"day_night", "binary image classification: sigmoid + log-likelihood",
                           [] { return std::make_unique<ImageClassificationSpec>(true); }});
  (void)registry.Register({"multiclass", "K-class image classification: softmax + cross-entropy",
                           [] { return std::make_unique<ImageClassificationSpec>(false); }});
}

}  // namespace dtrain
