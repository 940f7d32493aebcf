#include "runtime/spec/tasks/image_classification.h"

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

void RegisterImageClassificationSpecs(TaskSpecRegistry& registry) {
  (void)registry.Register({"day_night", "binary image classification: sigmoid + log-likelihood",
                           [] { return std::make_unique<ImageClassificationSpec>(true); }});
  (void)registry.Register({"multiclass", "K-class image classification: softmax + cross-entropy",
                           [] { return std::make_unique<ImageClassificationSpec>(false); }});
}

}  // namespace dtrain
