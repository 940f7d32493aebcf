// The `model` section of the convolutional image tasks (day_night, multiclass, face_triplet):
// conv blocks, then fully connected layers (workers/models builds the network from it).
#ifndef DTRAIN_RUNTIME_SPEC_SECTIONS_CNN_MODEL_H_
#define DTRAIN_RUNTIME_SPEC_SECTIONS_CNN_MODEL_H_

#include <yaml-cpp/yaml.h>

#include <vector>

#include "runtime/spec/spec_reader.h"

namespace dtrain {

struct ModelSpec {
  std::vector<int> conv_channels = {16, 32};  // one 3x3 conv + ReLU + 2x2 max-pool per entry
  int kernel_size = 3;                        // odd, >= 1
  std::vector<int> hidden_units = {64};       // fully connected layers before the output
  double dropout = 0.0;                       // in [0, 1)
  bool batch_norm = false;
  int embedding_dim = 128;  // encoders (face_triplet): size of the L2-normalised embedding
};

// Reads the `model` map into *model; `with_embedding` accepts embedding_dim (encoders only).
void ReadCnnModel(SpecReader& reader, const SpecReader::Value& v, bool with_embedding,
                  ModelSpec* model);
// The section's fields as YAML (inside the model map).
void EmitCnnModel(YAML::Emitter& out, const ModelSpec& model, bool with_embedding);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_SECTIONS_CNN_MODEL_H_
