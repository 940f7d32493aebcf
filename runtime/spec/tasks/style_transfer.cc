#include "runtime/spec/tasks/style_transfer.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "runtime/spec/job_spec.h"

namespace dtrain {
namespace {

using Value = SpecReader::Value;

constexpr int kMinImageSize = 32;  // MobileNetV2's deepest default tap is at 1/16 of the input
constexpr int kMaxIterations = 1000000;
constexpr double kMaxWeight = 1e9;
constexpr double kMaxLearningRate = 1e3;
constexpr size_t kMaxStyleLayers = 64;
// Features kept per input pixel for backward through the network up to its deepest default tap
// (MobileNetV2's expanded blocks dominate), as floats; a generous round figure.
constexpr double kActivationFloatsPerPixel = 200;

constexpr EnumName<StyleNetwork> kNetworkNames[] = {{"mobilenet_v2", StyleNetwork::kMobileNetV2},
                                                    {"vgg19", StyleNetwork::kVgg19}};
constexpr EnumName<StylePooling> kPoolingNames[] = {{"max", StylePooling::kMax},
                                                    {"average", StylePooling::kAverage}};
constexpr EnumName<StyleOptimizer> kOptimizerNames[] = {{"adam", StyleOptimizer::kAdam},
                                                        {"lbfgs", StyleOptimizer::kLbfgs}};

// A list of non-empty strings, [1, max_items] of them.
void ReadStringList(SpecReader& r, const Value& v, size_t max_items,
                    std::vector<std::string>* out) {
  if (!v.node.IsSequence() || v.node.size() == 0) {
    r.Expected(v, "a non-empty list of names");
    return;
  }
  if (v.node.size() > max_items) {
    r.Error(v.mark, v.path,
            "expected at most " + std::to_string(max_items) + " items, got " +
                std::to_string(v.node.size()));
    return;
  }
  std::vector<std::string> values;
  for (size_t i = 0; i < v.node.size(); ++i) {
    const YAML::Node item = v.node[i];
    Value element{item, item.IsNull() ? v.mark : item.Mark(),
                  v.path + "[" + std::to_string(i) + "]"};
    std::string value;
    if (!r.ReadPath(element, &value)) return;
    values.push_back(value);
  }
  *out = std::move(values);
}

void ReadWeightList(SpecReader& r, const Value& v, std::vector<double>* out) {
  if (!v.node.IsSequence() || v.node.size() == 0 || v.node.size() > kMaxStyleLayers) {
    r.Expected(v, "a list of 1 to " + std::to_string(kMaxStyleLayers) + " numbers");
    return;
  }
  std::vector<double> values;
  for (size_t i = 0; i < v.node.size(); ++i) {
    const YAML::Node item = v.node[i];
    Value element{item, item.IsNull() ? v.mark : item.Mark(),
                  v.path + "[" + std::to_string(i) + "]"};
    double value = 0;
    if (!r.ReadDouble(element, {0.0, true, kMaxWeight, true}, &value)) return;
    values.push_back(value);
  }
  *out = std::move(values);
}

bool ClimbsOut(const std::string& path) {
  for (const auto& part : std::filesystem::path(path)) {
    if (part == "..") return true;
  }
  return false;
}

void EmitStrings(YAML::Emitter& out, const char* key, const std::vector<std::string>& values) {
  out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const std::string& v : values) EmitString(out, v);
  out << YAML::EndSeq;
}

}  // namespace

const char* ToString(StyleNetwork v) { return NameOf(kNetworkNames, v); }
const char* ToString(StylePooling v) { return NameOf(kPoolingNames, v); }
const char* ToString(StyleOptimizer v) { return NameOf(kOptimizerNames, v); }

std::string StyleTransferSpec::DefaultContentLayer(StyleNetwork network) {
  return network == StyleNetwork::kVgg19 ? "conv4_2" : "block_6_expand_relu";
}

std::vector<std::string> StyleTransferSpec::DefaultStyleLayers(StyleNetwork network) {
  if (network == StyleNetwork::kVgg19)
    return {"conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"};
  return {"block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu",
          "block_13_expand_relu"};
}

std::vector<SpecReader::Field> StyleTransferSpec::DataFields(SpecReader& r) {
  StyleDataSpec& d = data;
  return {
      {"content", true,
       [&r, &d](const Value& v) { ReadStringList(r, v, kMaxStylePairs, &d.content); }},
      {"style", true, [&r, &d](const Value& v) { ReadStringList(r, v, kMaxStylePairs, &d.style); }},
      {"image_size", false,
       [&r, &d](const Value& v) {
         r.ReadInt(v, kMinImageSize, kMaxStyleImageSize, &d.image_size);
       }},
  };
}

std::vector<SpecReader::Field> StyleTransferSpec::Sections(SpecReader& r) {
  StyleNetworkSpec& n = network;
  StyleLossSpec& l = loss;
  StyleOptimizeSpec& o = optimize;
  const DoubleRange weight{0.0, true, kMaxWeight, true};
  return {
      {"network", false,
       [&r, &n](const Value& v) {
         r.ReadMap(
             v,
             {
                 {"name", false, [&](const Value& f) { r.ReadEnum(f, kNetworkNames, &n.name); }},
                 {"weights", false, [&](const Value& f) { r.ReadPath(f, &n.weights); }},
                 {"pooling", false,
                  [&](const Value& f) { r.ReadEnum(f, kPoolingNames, &n.pooling); }},
                 {"content_layer", false, [&](const Value& f) { r.ReadPath(f, &n.content_layer); }},
                 {"style_layers", false,
                  [&](const Value& f) { ReadStringList(r, f, kMaxStyleLayers, &n.style_layers); }},
                 {"style_layer_weights", false,
                  [&](const Value& f) { ReadWeightList(r, f, &n.style_layer_weights); }},
             });
       }},
      {"loss", false,
       [&r, &l, weight](const Value& v) {
         r.ReadMap(v, {
                          {"content_weight", false,
                           [&](const Value& f) { r.ReadDouble(f, weight, &l.content_weight); }},
                          {"style_weight", false,
                           [&](const Value& f) { r.ReadDouble(f, weight, &l.style_weight); }},
                          {"tv_weight", false,
                           [&](const Value& f) { r.ReadDouble(f, weight, &l.tv_weight); }},
                      });
       }},
      {"optimize", false,
       [&r, &o](const Value& v) {
         r.ReadMap(v,
                   {
                       {"optimizer", false,
                        [&](const Value& f) { r.ReadEnum(f, kOptimizerNames, &o.optimizer); }},
                       {"iterations", false,
                        [&](const Value& f) { r.ReadInt(f, 1, kMaxIterations, &o.iterations); }},
                       {"lr", false,
                        [&](const Value& f) {
                          r.ReadDouble(f, {0.0, false, kMaxLearningRate, true}, &o.lr);
                        }},
                       {"noise_ratio", false,
                        [&](const Value& f) {
                          r.ReadDouble(f, {0.0, true, 1.0, true}, &o.noise_ratio);
                        }},
                       {"image_every", false,
                        [&](const Value& f) { r.ReadInt(f, 0, kMaxIterations, &o.image_every); }},
                   });
       }},
  };
}

// Only these two: ToYaml leaves out just them, so refusing more would stop spec.yaml from
// parsing again. The gradient-training fields of train and checkpoint are ignored (the docs say
// so).
std::vector<std::pair<std::string, std::string>> StyleTransferSpec::UnusedCoreFields() const {
  return {{"train.batch_size", "each rank optimises its share of the (content, style) pairs"},
          {"data.seed", "the start's noise is seeded by train.seed"}};
}

void StyleTransferSpec::Finish(SpecReader& r, const JobSpec&) {
  if (!r.Given("network.content_layer")) network.content_layer = DefaultContentLayer(network.name);
  if (!r.Given("network.style_layers")) network.style_layers = DefaultStyleLayers(network.name);
  if (!r.Given("network.style_layer_weights")) {
    network.style_layer_weights.assign(network.style_layers.size(), 1.0);
  } else if (network.style_layer_weights.size() != network.style_layers.size()) {
    r.ErrorAt("network.style_layer_weights",
              "expected one weight per style layer (" +
                  std::to_string(network.style_layers.size()) + "), got " +
                  std::to_string(network.style_layer_weights.size()));
  }
  if (!r.Given("optimize.lr") && optimize.optimizer == StyleOptimizer::kLbfgs) optimize.lr = 1;
  if (network.name == StyleNetwork::kVgg19 && network.weights.empty()) {
    r.Error(r.MarkOf("network"), "network.weights",
            "required with network.name: vgg19: a safetensors file converted from torchvision "
            "(docs/STYLE_TRANSFER.md)");
  }
  if (network.name != StyleNetwork::kVgg19 && r.Given("network.pooling")) {
    r.ErrorAt("network.pooling", std::string("only vgg19 has pooling layers to choose; ") +
                                     ToString(network.name) + " downsamples with strides");
  }
  const double pairs = static_cast<double>(data.content.size()) * data.style.size();
  if (pairs > kMaxStylePairs) {
    r.ErrorAt("data.style", "expected at most " + std::to_string(kMaxStylePairs) +
                                " (content, style) pairs in all, got " + FormatCount(pairs));
  }
  for (const auto& [field, files] :
       {std::pair<const char*, const std::vector<std::string>*>{"data.content", &data.content},
        {"data.style", &data.style}}) {
    for (const std::string& f : *files) {
      if (ClimbsOut(f)) {
        r.ErrorAt(field, "'" + f + "' climbs out of data.path with '..'; give an absolute path");
      }
    }
  }
  if (optimize.image_every > optimize.iterations) {
    r.ErrorAt("optimize.image_every", "expected at most optimize.iterations (" +
                                          std::to_string(optimize.iterations) + "), got " +
                                          std::to_string(optimize.image_every));
  }
}

void StyleTransferSpec::EmitDataFields(YAML::Emitter& out) const {
  EmitStrings(out, "content", data.content);
  EmitStrings(out, "style", data.style);
  out << YAML::Key << "image_size" << YAML::Value << data.image_size;
}

void StyleTransferSpec::EmitSections(YAML::Emitter& out) const {
  out << YAML::Key << "network" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << ToString(network.name);
  if (!network.weights.empty()) {
    out << YAML::Key << "weights" << YAML::Value;
    EmitString(out, network.weights);
  }
  if (network.name == StyleNetwork::kVgg19) {
    out << YAML::Key << "pooling" << YAML::Value << ToString(network.pooling);
  }
  out << YAML::Key << "content_layer" << YAML::Value;
  EmitString(out, network.content_layer);
  EmitStrings(out, "style_layers", network.style_layers);
  out << YAML::Key << "style_layer_weights" << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (double w : network.style_layer_weights) EmitDouble(out, w);
  out << YAML::EndSeq << YAML::EndMap;

  out << YAML::Key << "loss" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "content_weight" << YAML::Value;
  EmitDouble(out, loss.content_weight);
  out << YAML::Key << "style_weight" << YAML::Value;
  EmitDouble(out, loss.style_weight);
  out << YAML::Key << "tv_weight" << YAML::Value;
  EmitDouble(out, loss.tv_weight);
  out << YAML::EndMap;

  out << YAML::Key << "optimize" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "optimizer" << YAML::Value << ToString(optimize.optimizer);
  out << YAML::Key << "iterations" << YAML::Value << optimize.iterations;
  out << YAML::Key << "lr" << YAML::Value;
  EmitDouble(out, optimize.lr);
  out << YAML::Key << "noise_ratio" << YAML::Value;
  EmitDouble(out, optimize.noise_ratio);
  out << YAML::Key << "image_every" << YAML::Value << optimize.image_every;
  out << YAML::EndMap;
}

ResourceEstimate StyleTransferSpec::EstimateNeeds(const JobSpec& spec) const {
  ResourceEstimate e;
  const double pixels = static_cast<double>(data.image_size) * data.image_size;
  // The pixels, their gradient and Adam's two moments (L-BFGS keeps 2 x 50 history vectors).
  const double pixel_copies = optimize.optimizer == StyleOptimizer::kAdam ? 4 : 104;
  e.activation_bytes_per_sample =
      kFloatBytes * pixels *
      (kActivationCopiesInTraining * kActivationFloatsPerPixel + 3 * pixel_copies);
  const double pairs = static_cast<double>(data.content.size()) * data.style.size();
  e.batch_per_rank = std::ceil(pairs / std::max(1, spec.distributed.ranks));
  e.memory_field = "data.image_size";
  return e;
}

std::vector<std::pair<std::string, std::string>> StyleTransferSpec::Paths() const {
  std::vector<std::pair<std::string, std::string>> paths;
  for (const auto& [field, files] :
       {std::pair<const char*, const std::vector<std::string>*>{"data.content", &data.content},
        {"data.style", &data.style}}) {
    for (const std::string& f : *files) {
      if (std::filesystem::path(f).is_absolute()) paths.emplace_back(field, f);
    }
  }
  if (!network.weights.empty()) paths.emplace_back("network.weights", network.weights);
  return paths;
}

void RegisterStyleTransferSpec(TaskSpecRegistry& registry) {
  (void)registry.Register({"style_transfer",
                           "neural style transfer: pixels optimised against a pretrained network",
                           [] { return std::make_unique<StyleTransferSpec>(); }});
}

}  // namespace dtrain
