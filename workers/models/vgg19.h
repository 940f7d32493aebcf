// VGG-19 (Simonyan and Zisserman), the network of Gatys et al.'s style transfer, as a
// FeatureNetwork, for users who have its weights. No VGG weights ship in a package these
// machines reach; convert torchvision's ImageNet weights once (docs/STYLE_TRANSFER.md):
//   python3 -c "import torchvision; from safetensors.torch import save_file; save_file({k: v
//   for k, v in torchvision.models.vgg19(weights='IMAGENET1K_V1').state_dict().items() if
//   k.startswith('features.')}, 'vgg19.safetensors')"
// Tensor names are torchvision's: features.<i>.weight / .bias for the 16 convolutions.
// Taps conv1_1, conv1_2, conv2_1, ..., conv5_4 are the ReLU outputs of those convolutions (what
// Gatys et al. call conv layers). Between the five blocks the network downsamples with 2x2
// pools, max (as trained) or average (smoother images, as the paper suggests), selectable.
// Input: RGB in [0, 1], normalised inside with ImageNet's mean and standard deviation as
// torchvision trained it.
#ifndef DTRAIN_WORKERS_MODELS_VGG19_H_
#define DTRAIN_WORKERS_MODELS_VGG19_H_

#include <memory>
#include <string>

#include "runtime/common/status.h"
#include "workers/models/feature_network.h"

namespace dtrain::models {

// Loads the 16 convolutions from the safetensors file at `path` (other tensors, such as a
// classifier, are ignored). NOT_FOUND without the file; INVALID_ARGUMENT naming the tensor for a
// missing one or a wrong shape.
StatusOr<std::shared_ptr<FeatureNetwork>> LoadVgg19(const std::string& path, Pooling pooling);

}  // namespace dtrain::models

#endif  // DTRAIN_WORKERS_MODELS_VGG19_H_
