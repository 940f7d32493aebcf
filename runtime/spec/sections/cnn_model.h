// The `model` section of the convolutional image tasks (day_night, multiclass, face_triplet):
// conv blocks, then fully connected layers (workers/models builds the network from it).
#ifndef DTRAIN_RUNTIME_SPEC_SECTIONS_CNN_MODEL_H_
#define DTRAIN_RUNTIME_SPEC_SECTIONS_CNN_MODEL_H_

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "runtime/spec/resource_estimate.h"
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

// Field bounds: enough for any model this trainer can hold, small enough that no product of
// them overflows the int arithmetic of the network builder before the estimate refuses it.
constexpr int kMaxConvLayers = 32;
constexpr int kMaxHiddenLayers = 64;
constexpr int kMaxChannels = 65536;  // per conv layer
constexpr int kMaxKernelSize = 255;  // odd
constexpr int kMaxUnits = 1 << 24;   // per hidden layer, and embedding_dim

// The input a CNN of the spec gets and the fields that set its parts, for EstimateCnn.
struct CnnInput {
  double channels = 1;
  double height = 1;
  double width = 1;
  double outputs = 1;
  std::string input_field;   // sets height x width ("data.resolution")
  std::string output_field;  // sets the outputs ("model.embedding_dim"; "" when fixed)
  bool embedding = false;    // BuildEmbeddingCnn: standardised input, L2-normalised output
};

// Adds what workers/models/cnn.cc builds from `model` to *estimate: its parameters (with the
// largest layer and the field that drives it) and its activations per sample.
void EstimateCnn(const ModelSpec& model, const CnnInput& input, ResourceEstimate* estimate);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_SECTIONS_CNN_MODEL_H_
