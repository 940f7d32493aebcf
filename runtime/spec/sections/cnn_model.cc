#include "runtime/spec/sections/cnn_model.h"

#include <vector>

namespace dtrain {

void ReadCnnModel(SpecReader& r, const SpecReader::Value& v, bool with_embedding, ModelSpec* m) {
  using Value = SpecReader::Value;
  std::vector<SpecReader::Field> fields = {
      {"conv_channels", false,
       [&](const Value& f) { r.ReadIntList(f, 1, false, &m->conv_channels); }},
      {"kernel_size", false,
       [&](const Value& f) {
         int k = 0;
         if (!r.ReadInt(f, 1, SpecReader::kMaxInt, &k)) return;
         if (k % 2 == 0) {
           r.Expected(f, "an odd integer >= 1");
           return;
         }
         m->kernel_size = k;
       }},
      {"hidden_units", false, [&](const Value& f) { r.ReadIntList(f, 1, true, &m->hidden_units); }},
      {"dropout", false,
       [&](const Value& f) { r.ReadDouble(f, DoubleRange::ZeroToOneExclusive(), &m->dropout); }},
      {"batch_norm", false, [&](const Value& f) { r.ReadBool(f, &m->batch_norm); }},
  };
  if (with_embedding) {
    fields.push_back({"embedding_dim", false, [&](const Value& f) {
                        r.ReadInt(f, 1, SpecReader::kMaxInt, &m->embedding_dim);
                      }});
  }
  r.ReadMap(v, fields);
}

void EmitCnnModel(YAML::Emitter& out, const ModelSpec& m, bool with_embedding) {
  out << YAML::Key << "conv_channels" << YAML::Value << YAML::Flow << m.conv_channels;
  out << YAML::Key << "kernel_size" << YAML::Value << m.kernel_size;
  out << YAML::Key << "hidden_units" << YAML::Value << YAML::Flow << m.hidden_units;
  out << YAML::Key << "dropout" << YAML::Value;
  EmitDouble(out, m.dropout);
  out << YAML::Key << "batch_norm" << YAML::Value << m.batch_norm;
  if (with_embedding) out << YAML::Key << "embedding_dim" << YAML::Value << m.embedding_dim;
}

}  // namespace dtrain
