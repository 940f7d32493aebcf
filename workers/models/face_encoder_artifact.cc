#include "workers/models/face_encoder_artifact.h"

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "runtime/common/atomic_file.h"
#include "workers/models/cnn.h"

namespace dtrain::models {
namespace {

namespace fs = std::filesystem;

// A tensor's values as doubles, for JSON.
std::vector<double> Values(const at::Tensor& t) {
  const at::Tensor flat = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().view(-1);
  return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
}

}  // namespace

Status WriteFaceEncoderManifest(const std::string& path, const FaceEncoderInfo& info,
                                const torch::nn::Module& model,
                                const FaceEncoderProvenance& provenance) {
  const ModelSpec& m = info.model;
  nlohmann::json j;
  j["format"] = kFaceEncoderFormat;
  j["job"] = provenance.job;
  j["weights"] = kFaceEncoderWeightsName;
  j["weights_format"] =
      "LibTorch C++ archive of a torch::nn::Sequential (torch::nn::Module::save); load it into "
      "the module described by 'architecture' with torch::nn::Module::load";
  j["architecture"] =
      "Sequential: [0] Standardize (buffers mean, std: (x - mean) / std per channel); per "
      "model.conv_channels entry Conv2d(kernel_size, stride 1, padding kernel_size / 2) "
      "[+ BatchNorm2d if batch_norm] + ReLU + MaxPool2d(2) (pooling only while height and width "
      ">= 2); Flatten; per model.hidden_units entry Linear + ReLU [+ Dropout if dropout > 0]; "
      "Linear(embedding_dim); L2Normalize (rows to unit L2 norm). Layers are numbered from 0 in "
      "that order, parameters named '<index>.weight', '<index>.bias' (BatchNorm2d also "
      "'<index>.running_mean', '<index>.running_var', '<index>.num_batches_tracked')";
  j["model"] = {{"conv_channels", m.conv_channels}, {"kernel_size", m.kernel_size},
                {"hidden_units", m.hidden_units},   {"dropout", m.dropout},
                {"batch_norm", m.batch_norm},       {"embedding_dim", m.embedding_dim}};
  nlohmann::json input = {{"height", info.height},
                          {"width", info.width},
                          {"channels", info.channels},
                          {"channel_order", info.channels == 1 ? "grey" : "RGB"},
                          {"layout", "NCHW"},
                          {"dtype", "float32"},
                          {"scale", "pixel / 255, in [0, 1]; resize bilinearly to height x width"},
                          {"normalisation", "inside the model (layer 0), nothing to do"}};
  nlohmann::json parameters = nlohmann::json::array();
  for (const auto& p : model.named_parameters()) {
    parameters.push_back({{"name", p.key()}, {"shape", p.value().sizes().vec()}});
  }
  for (const auto& b : model.named_buffers()) {
    parameters.push_back({{"name", b.key()}, {"shape", b.value().sizes().vec()}, {"buffer", true}});
    if (b.key() == "0.mean") input["mean"] = Values(b.value());
    if (b.key() == "0.std") input["std"] = Values(b.value());
  }
  j["input"] = input;
  j["parameters"] = parameters;
  j["output"] = {{"embedding_dim", m.embedding_dim}, {"l2_normalized", true}};
  j["verification"] = {
      {"score", "cosine similarity = dot product of the two unit embeddings"},
      {"threshold", info.threshold},
      {"threshold_squared_l2", 2 - 2 * info.threshold},
      {"rule",
       "same identity when score >= threshold (squared L2 distance <= "
       "threshold_squared_l2)"},
      {"chosen_by", "best accuracy over all pairs of the held-out identities' test images"},
      {"eval_classes", provenance.eval_classes},
      {"test_metrics", provenance.test_metrics}};
  return WriteFileAtomically(path, j.dump(2) + "\n", 0644);
}

StatusOr<torch::nn::Sequential> LoadFaceEncoder(const std::string& dir, FaceEncoderInfo* info) {
  const std::string manifest_path = (fs::path(dir) / kFaceEncoderManifestName).string();
  std::ifstream in(manifest_path);
  if (!in) return NotFound("cannot read '" + manifest_path + "'");
  nlohmann::json j;
  FaceEncoderInfo parsed;
  try {
    in >> j;
    if (j.value("format", "") != kFaceEncoderFormat) {
      return InvalidArgument("'" + manifest_path + "' is not a " + kFaceEncoderFormat +
                             " manifest");
    }
    const nlohmann::json& m = j.at("model");
    parsed.model.conv_channels = m.at("conv_channels").get<std::vector<int>>();
    parsed.model.kernel_size = m.at("kernel_size").get<int>();
    parsed.model.hidden_units = m.at("hidden_units").get<std::vector<int>>();
    parsed.model.dropout = m.at("dropout").get<double>();
    parsed.model.batch_norm = m.at("batch_norm").get<bool>();
    parsed.model.embedding_dim = m.at("embedding_dim").get<int>();
    parsed.height = j.at("input").at("height").get<int>();
    parsed.width = j.at("input").at("width").get<int>();
    parsed.channels = j.at("input").at("channels").get<int>();
    parsed.threshold = j.at("verification").at("threshold").get<double>();
  } catch (const std::exception& e) {
    return InvalidArgument("cannot parse '" + manifest_path + "': " + e.what());
  }
  const std::string weights =
      (fs::path(dir) / j.value("weights", std::string(kFaceEncoderWeightsName))).string();
  torch::nn::Sequential model =
      BuildEmbeddingCnn(parsed.model, parsed.channels, parsed.height, parsed.width);
  // Archive reads replace storages, shapes included: compare them with the built module.
  std::map<std::string, std::vector<int64_t>> expected;
  for (const auto& p : model->named_parameters()) expected[p.key()] = p.value().sizes().vec();
  for (const auto& b : model->named_buffers()) expected[b.key()] = b.value().sizes().vec();
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(weights);
    model->load(archive);
  } catch (const std::exception& e) {
    std::string what = e.what();
    return DataLoss("cannot load encoder weights '" + weights +
                    "': " + what.substr(0, what.find('\n')));
  }
  auto check = [&](const std::string& name, const at::Tensor& t) -> Status {
    if (t.sizes().vec() != expected[name]) {
      return DataLoss("'" + weights + "' does not match '" + manifest_path + "': '" + name +
                      "' has shape " + c10::str(t.sizes()) + ", the manifest's model has " +
                      c10::str(c10::IntArrayRef(expected[name])));
    }
    return Status::Ok();
  };
  for (const auto& p : model->named_parameters()) DTRAIN_RETURN_IF_ERROR(check(p.key(), p.value()));
  for (const auto& b : model->named_buffers()) DTRAIN_RETURN_IF_ERROR(check(b.key(), b.value()));
  model->eval();
  if (info != nullptr) *info = parsed;
  return model;
}

}  // namespace dtrain::models
