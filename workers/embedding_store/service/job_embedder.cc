// A face_triplet job's encoder (files: workers/models/face_encoder_artifact.h) as an Embedder:
// the one LibTorch translation unit of the store's service.
#include <torch/torch.h>

#include <cmath>

#include "workers/embedding_store/service/encoders.h"
#include "workers/models/face_encoder_artifact.h"

namespace dtrain::embed {
namespace {

class JobEmbedder final : public Embedder {
 public:
  JobEmbedder(std::string run_dir, torch::nn::Sequential model, const models::FaceEncoderInfo& info)
      : run_dir_(std::move(run_dir)), model_(std::move(model)), info_(info) {}

  std::string name() const override { return "face_triplet job " + run_dir_; }
  int dim() const override { return info_.model.embedding_dim; }
  // The job chose a cosine threshold t on unit embeddings; |a - b|^2 = 2 - 2 cos(a, b).
  float default_threshold() const override {
    const double t = std::min(1.0, std::max(-1.0, info_.threshold));
    return static_cast<float>(std::sqrt(2.0 - 2.0 * t));
  }
  std::string threshold_source() const override {
    return "encoder.json: cosine >= " + std::to_string(info_.threshold) +
           " (Euclidean <= " + std::to_string(default_threshold()) + " on unit vectors)";
  }

  StatusOr<std::vector<float>> Embed(const face::Image& crop) const override {
    DTRAIN_ASSIGN_OR_RETURN(auto rows, EmbedBatch({crop}));
    return std::move(rows.front());
  }

  StatusOr<std::vector<std::vector<float>>> EmbedBatch(
      const std::vector<face::Image>& crops) const override {
    if (crops.empty()) return std::vector<std::vector<float>>{};
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> inputs;
    for (size_t i = 0; i < crops.size(); ++i) {
      const face::Image& image = crops[i];
      if (!image.valid()) return InvalidArgument("crop " + std::to_string(i) + " is empty");
      // H x W x 3 bytes -> 1 x 3 x H x W floats in [0, 1], resized to the encoder's input.
      torch::Tensor t = torch::from_blob(const_cast<uint8_t*>(image.rgb.data()),
                                         {image.height, image.width, 3}, torch::kUInt8)
                            .permute({2, 0, 1})
                            .to(torch::kFloat32)
                            .div(255.0)
                            .unsqueeze(0);
      t = torch::nn::functional::interpolate(
          t, torch::nn::functional::InterpolateFuncOptions()
                 .size(std::vector<int64_t>{info_.height, info_.width})
                 .mode(torch::kBilinear)
                 .align_corners(false));
      if (info_.channels == 1) {
        // ITU-R BT.601 luma, what image loaders use for RGB -> grey.
        t = (t.select(1, 0) * 0.299 + t.select(1, 1) * 0.587 + t.select(1, 2) * 0.114).unsqueeze(1);
      }
      inputs.push_back(t);
    }
    // Callers run concurrently: in eval mode and under NoGradGuard (thread-local) the encoder's
    // layers (convolutions, BatchNorm on running statistics, dropout as identity, linear,
    // normalisation) only read their parameters and buffers; Sequential::forward keeps no state
    // and is merely not declared const.
    const torch::Tensor out =
        model_->forward(torch::cat(inputs, 0)).contiguous().to(torch::kFloat32);
    if (out.dim() != 2 || out.size(0) != static_cast<int64_t>(crops.size()) ||
        out.size(1) != dim()) {
      return Internal("the job's encoder returned a tensor of shape " +
                      std::to_string(out.dim() == 2 ? out.size(1) : -1) + ", expected rows of " +
                      std::to_string(dim()));
    }
    std::vector<std::vector<float>> rows(crops.size());
    const float* data = out.data_ptr<float>();
    for (size_t i = 0; i < rows.size(); ++i)
      rows[i].assign(data + i * dim(), data + (i + 1) * dim());
    return rows;
  }

 private:
  const std::string run_dir_;
  mutable torch::nn::Sequential model_;
  const models::FaceEncoderInfo info_;
};

}  // namespace

StatusOr<std::unique_ptr<Embedder>> LoadJobEmbedder(const std::string& run_dir) {
  models::FaceEncoderInfo info;
  DTRAIN_ASSIGN_OR_RETURN(torch::nn::Sequential model, models::LoadFaceEncoder(run_dir, &info));
  if (info.channels != 1 && info.channels != 3) {
    return InvalidArgument(run_dir + "/encoder.json: channels must be 1 or 3, got " +
                           std::to_string(info.channels));
  }
  if (info.height <= 0 || info.width <= 0 || info.model.embedding_dim <= 0) {
    return InvalidArgument(run_dir + "/encoder.json: input size and embedding_dim must be > 0");
  }
  return std::unique_ptr<Embedder>(new JobEmbedder(run_dir, std::move(model), info));
}

}  // namespace dtrain::embed
