#include "workers/embedding_store/service/embedder.h"

namespace dtrain::embed {

StatusOr<std::vector<std::vector<float>>> Embedder::EmbedBatch(
    const std::vector<face::Image>& crops) const {
  std::vector<std::vector<float>> out;
  out.reserve(crops.size());
  for (const face::Image& crop : crops) {
    DTRAIN_ASSIGN_OR_RETURN(std::vector<float> v, Embed(crop));
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace dtrain::embed
