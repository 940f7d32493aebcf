#include "tests/tasks/linear_regression/linear_regression_spec.h"

#include <string>

#include "runtime/spec/job_spec.h"

namespace dtrain::testtasks {

using Value = SpecReader::Value;

constexpr int kMaxRows = 1 << 20;
constexpr int kMaxFeatures = 1024;
constexpr double kMaxNoise = 1e6;
// A generated CSV value: sign, 17 significant digits, exponent and separator.
constexpr double kBytesPerCsvValue = 26;

std::vector<SpecReader::Field> LinearRegressionSpec::DataFields(SpecReader& r) {
  return {
      {"rows", false, [this, &r](const Value& v) { r.ReadInt(v, 4, kMaxRows, &rows); }},
      {"features", false, [this, &r](const Value& v) { r.ReadInt(v, 1, kMaxFeatures, &features); }},
      {"noise", false,
       [this, &r](const Value& v) {
         r.ReadDouble(v, {0.0, true, kMaxNoise, true}, &noise);
       }},
      {"split", false,
       [this, &r](const Value& v) {
         r.ReadDouble(v, {0.0, false, 1.0, false}, &split);
       }},
  };
}

std::vector<SpecReader::Field> LinearRegressionSpec::Sections(SpecReader& r) {
  return {{"model", false, [this, &r](const Value& v) {
             r.ReadMap(v, {{"bias", false, [this, &r](const Value& f) { r.ReadBool(f, &bias); }}});
           }}};
}

void LinearRegressionSpec::Finish(SpecReader& r, const JobSpec& spec) {
  const int train_rows = static_cast<int>(rows * split);
  if (train_rows < 1 || train_rows >= rows) {
    r.ErrorAt("data.split", "leaves no training or no test rows of " + std::to_string(rows));
  }
}

void LinearRegressionSpec::EmitDataFields(YAML::Emitter& out) const {
  out << YAML::Key << "rows" << YAML::Value << rows;
  out << YAML::Key << "features" << YAML::Value << features;
  out << YAML::Key << "noise" << YAML::Value;
  EmitDouble(out, noise);
  out << YAML::Key << "split" << YAML::Value;
  EmitDouble(out, split);
}

void LinearRegressionSpec::EmitSections(YAML::Emitter& out) const {
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "bias" << YAML::Value << bias;
  out << YAML::EndMap;
}

ResourceEstimate LinearRegressionSpec::EstimateNeeds(const JobSpec& spec) const {
  ResourceEstimate e;
  e.parameters = features + (bias ? 1 : 0);
  e.parameters_field = "data.features";
  e.parameters_detail = "one weight per feature";
  e.bytes_per_parameter = BytesPerParameter(spec.train.optimizer);
  // Inputs, prediction and their gradients.
  e.activation_bytes_per_sample = (features + 1.0) * kFloatBytes * kActivationCopiesInTraining;
  e.batch_per_rank = spec.train.batch_size;
  e.data_bytes = static_cast<double>(rows) * (features + 1) * kFloatBytes;
  e.generated_bytes = static_cast<double>(rows) * (features + 1) * kBytesPerCsvValue;
  e.generated_field = "data.rows";
  ChooseMemoryField("train.batch_size", "data.features", &e);
  return e;
}

void RegisterLinearRegressionSpec(TaskSpecRegistry& registry) {
  (void)registry.Register({kLinearRegressionTask, "test-only: linear regression on generated rows",
                           [] { return std::make_unique<LinearRegressionSpec>(); }});
}

}  // namespace dtrain::testtasks
