// Spec of style_transfer: images with the shapes of content images and the textures of style
// images, by optimising their pixels against a frozen pretrained network's features (Gatys et
// al.; docs/STYLE_TRANSFER.md). Every (content, style) pair is one result; the pairs are shared
// out over the ranks, and rank 0 writes the results and a contact sheet into output_dir. No
// model is trained, so train's optimisation fields and checkpoints do not apply.
#ifndef DTRAIN_RUNTIME_SPEC_TASKS_STYLE_TRANSFER_H_
#define DTRAIN_RUNTIME_SPEC_TASKS_STYLE_TRANSFER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "runtime/spec/task_spec.h"

namespace dtrain {

enum class StyleNetwork { kMobileNetV2, kVgg19 };
enum class StylePooling { kMax, kAverage };
enum class StyleOptimizer { kAdam, kLbfgs };
const char* ToString(StyleNetwork v);
const char* ToString(StylePooling v);
const char* ToString(StyleOptimizer v);

inline constexpr int kMaxStyleImageSize = 1024;
// Results per job: one contact sheet row each (contact_sheet.h's row limit).
inline constexpr int kMaxStylePairs = 256;

// `data`: image files (PNG or JPEG, any size), relative to data.path unless absolute; each is
// resized to image_size x image_size.
struct StyleDataSpec {
  std::vector<std::string> content;  // required, >= 1
  std::vector<std::string> style;    // required, >= 1; every content is drawn in every style
  int image_size = 256;              // [32, kMaxStyleImageSize]
};

// `network`: the frozen feature network and where the losses read it.
struct StyleNetworkSpec {
  StyleNetwork name = StyleNetwork::kMobileNetV2;
  // mobilenet_v2: the directory deploy/fetch-style-model.sh wrote (default: its cache,
  // $DTRAIN_MODEL_DIR or ~/.cache/dtrain/models, resolved by the worker); vgg19: a safetensors
  // file, required.
  std::string weights;
  StylePooling pooling = StylePooling::kMax;  // vgg19 only
  std::string content_layer;                  // default per network
  std::vector<std::string> style_layers;      // default per network
  std::vector<double> style_layer_weights;    // one per style layer; default 1 each
};

// `loss`: total = content_weight * content + style_weight * style + tv_weight * TV.
struct StyleLossSpec {
  double content_weight = 10;
  double style_weight = 40;
  double tv_weight = 0;
};

// `optimize`: the pixel optimisation.
struct StyleOptimizeSpec {
  StyleOptimizer optimizer = StyleOptimizer::kAdam;
  int iterations = 200;
  double lr = 0.03;        // Adam: pixel units; L-BFGS: a multiple of its step (default 1)
  double noise_ratio = 0;  // start: noise_ratio * noise + (1 - noise_ratio) * content
  int image_every = 0;     // intermediate images every N iterations; 0: none
};

class StyleTransferSpec final : public TaskSpec {
 public:
  StyleDataSpec data;
  StyleNetworkSpec network;
  StyleLossSpec loss;
  StyleOptimizeSpec optimize;

  std::unique_ptr<TaskSpec> Clone() const override {
    return std::make_unique<StyleTransferSpec>(*this);
  }
  std::vector<SpecReader::Field> DataFields(SpecReader& reader) override;
  std::vector<SpecReader::Field> Sections(SpecReader& reader) override;
  void Finish(SpecReader& reader, const JobSpec& spec) override;
  void EmitDataFields(YAML::Emitter& out) const override;
  void EmitSections(YAML::Emitter& out) const override;
  std::vector<std::pair<std::string, std::string>> UnusedCoreFields() const override;
  ResourceEstimate EstimateNeeds(const JobSpec& spec) const override;
  std::vector<std::pair<std::string, std::string>> Paths() const override;

  // The default layers of each network (the worker checks the names against the network).
  static std::string DefaultContentLayer(StyleNetwork network);
  static std::vector<std::string> DefaultStyleLayers(StyleNetwork network);
};

void RegisterStyleTransferSpec(TaskSpecRegistry& registry);

}  // namespace dtrain

#endif  // DTRAIN_RUNTIME_SPEC_TASKS_STYLE_TRANSFER_H_
