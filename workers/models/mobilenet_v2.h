// Keras's MobileNetV2 (width 1.0), as npm nsfwjs 4.4.0 ships it (deploy/fetch-style-model.sh),
// rebuilt in LibTorch as a FeatureNetwork. Its taps are the Keras layer names of the block
// outputs, shallow to deep:
//   Conv1_relu (/2, 32 channels), expanded_conv_depthwise_relu, expanded_conv_project_BN (/2, 16),
//   block_<i>_expand_relu, block_<i>_depthwise_relu, block_<i>_project_BN for i = 1..16, and
//   block_<i>_add for the residual blocks (2, 4, 5, 7, 8, 9, 11, 12, 14, 15), then out_relu
//   (/32, 1280). Blocks 1, 3, 6 and 13 halve the resolution in their depthwise convolution, so
//   block_1_expand_relu is /2, block_3_expand_relu /4, block_6_expand_relu /8 and
//   block_13_expand_relu /16.
// Input: RGB / 255, as nsfwjs feeds it. Verified against @tensorflow/tfjs's own activations in
// tests/unit/style_features_test.cc (reference from tests/tools/mobilenet_v2_reference.js).
#ifndef DTRAIN_WORKERS_MODELS_MOBILENET_V2_H_
#define DTRAIN_WORKERS_MODELS_MOBILENET_V2_H_

#include <memory>
#include <string>

#include "runtime/common/status.h"
#include "workers/models/feature_network.h"

namespace dtrain::models {

// The file inside the fetched directory (deploy/fetch-style-model.sh's mobilenet_v2/).
inline constexpr char kMobileNetV2ModelFile[] = "model.json";

// Loads the network from `dir` (holding model.json and its weight shard) in eval mode. Only the
// feature layers are read; nsfwjs's classification head is ignored. NOT_FOUND without the files,
// INVALID_ARGUMENT or DATA_LOSS (naming the tensor) for weights that do not fit the architecture.
StatusOr<std::shared_ptr<FeatureNetwork>> LoadMobileNetV2(const std::string& dir);

}  // namespace dtrain::models

#endif  // DTRAIN_WORKERS_MODELS_MOBILENET_V2_H_
