#include "workers/embedding_store/index/vector_index.h"

#include <cstring>

namespace dtrain::embed {

StatusOr<std::vector<SearchResult>> VectorIndex::Search(FloatView query, int k,
                                                        std::optional<float> radius) const {
  SearchOptions options;
  options.k = k;
  if (radius.has_value()) options.radius = *radius;
  return Search(query, options);
}

StatusOr<std::vector<std::vector<SearchResult>>> VectorIndex::SearchBatch(FloatView queries,
                                                                          int k) const {
  SearchOptions options;
  options.k = k;
  return SearchBatch(queries, options);
}

void VectorIndex::Export(std::vector<int64_t>* ids, std::vector<float>* vectors) const {
  ids->clear();
  vectors->clear();
  const size_t d = static_cast<size_t>(dim());
  ForEach([&](int64_t id, const float* v) {
    ids->push_back(id);
    vectors->insert(vectors->end(), v, v + d);
  });
}

double VectorIndex::BytesPerVector() const {
  const size_t n = size();
  return n == 0 ? 0.0 : static_cast<double>(MemoryBytes()) / static_cast<double>(n);
}

}  // namespace dtrain::embed
