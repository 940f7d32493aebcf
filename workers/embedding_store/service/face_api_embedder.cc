// face-api's encoder as an Embedder, and the encoder-spec parser. No LibTorch here: the encoder's
// header hides it.
#include <cstdlib>
#include <filesystem>

#include "workers/embedding_store/encoder/face_encoder.h"
#include "workers/embedding_store/service/encoders.h"

namespace dtrain::embed {
namespace {

constexpr char kFaceApiDirName[] = "face-api-1.7.15";

class FaceApiEmbedder final : public Embedder {
 public:
  explicit FaceApiEmbedder(face::FaceEncoder encoder) : encoder_(std::move(encoder)) {}

  std::string name() const override { return "face-api 1.7.15 (dlib ResNet-34)"; }
  int dim() const override { return face::FaceEncoder::kEmbeddingDim; }
  float default_threshold() const override { return face::FaceEncoder::kSamePersonDistance; }
  std::string threshold_source() const override {
    return "face-api/dlib: Euclidean distance <= 0.6";
  }
  StatusOr<std::vector<float>> Embed(const face::Image& crop) const override {
    return encoder_.Embed(crop);
  }
  StatusOr<std::vector<std::vector<float>>> EmbedBatch(
      const std::vector<face::Image>& crops) const override {
    return encoder_.EmbedBatch(crops);
  }

 private:
  face::FaceEncoder encoder_;
};

}  // namespace

std::string DefaultFaceApiDir() {
  namespace fs = std::filesystem;
  const char* models = std::getenv("DTRAIN_MODEL_DIR");
  if (models != nullptr && *models != '\0') return (fs::path(models) / kFaceApiDirName).string();
  const char* home = std::getenv("HOME");
  const fs::path base = home != nullptr && *home != '\0' ? fs::path(home) : fs::path(".");
  return (base / ".cache/dtrain/models" / kFaceApiDirName).string();
}

StatusOr<std::unique_ptr<Embedder>> LoadFaceApiEmbedder(const std::string& model_dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(model_dir, ec)) {
    return NotFound("face-api model directory '" + model_dir +
                    "' does not exist; run deploy/fetch-face-model.sh (or pass --encoder "
                    "face-api:DIR)");
  }
  DTRAIN_ASSIGN_OR_RETURN(face::FaceEncoder encoder, face::FaceEncoder::LoadFaceApi(model_dir));
  return std::unique_ptr<Embedder>(new FaceApiEmbedder(std::move(encoder)));
}

StatusOr<std::unique_ptr<Embedder>> LoadEmbedder(const std::string& spec) {
  if (spec == "face-api") return LoadFaceApiEmbedder(DefaultFaceApiDir());
  if (spec.rfind("face-api:", 0) == 0 && spec.size() > 9)
    return LoadFaceApiEmbedder(spec.substr(9));
  if (spec.rfind("job:", 0) == 0 && spec.size() > 4) return LoadJobEmbedder(spec.substr(4));
  return InvalidArgument("--encoder '" + spec +
                         "': expected face-api, face-api:MODEL_DIR or job:RUN_DIR");
}

}  // namespace dtrain::embed
