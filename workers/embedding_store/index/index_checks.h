// Argument checks shared by the index implementations. Internal to the index library.
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_INDEX_CHECKS_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_INDEX_CHECKS_H_

#include <cmath>
#include <string>

#include "runtime/common/status.h"
#include "workers/embedding_store/index/vector_index.h"

namespace dtrain::embed {

inline Status CheckVector(FloatView v, int dim, const char* what) {
  if (v.size() != static_cast<size_t>(dim)) {
    return InvalidArgument(std::string(what) + " has " + std::to_string(v.size()) +
                           " components, the index holds vectors of dimension " +
                           std::to_string(dim));
  }
  for (size_t j = 0; j < v.size(); ++j) {
    if (!std::isfinite(v.data()[j])) {
      return InvalidArgument(std::string(what) + " component " + std::to_string(j) +
                             " is not a finite number");
    }
  }
  return Status::Ok();
}

inline Status CheckBatch(FloatView queries, int dim) {
  if (queries.size() % static_cast<size_t>(dim) != 0) {
    return InvalidArgument("query batch of " + std::to_string(queries.size()) +
                           " floats is not a whole number of vectors of dimension " +
                           std::to_string(dim));
  }
  for (size_t j = 0; j < queries.size(); ++j) {
    if (!std::isfinite(queries.data()[j])) {
      return InvalidArgument("query " + std::to_string(j / dim) + " component " +
                             std::to_string(j % dim) + " is not a finite number");
    }
  }
  return Status::Ok();
}

inline Status CheckOptions(const SearchOptions& options) {
  if (options.k <= 0) {
    return InvalidArgument("k must be positive, got " + std::to_string(options.k));
  }
  if (std::isnan(options.radius) || options.radius < 0) {
    return InvalidArgument("radius must be >= 0 (a squared L2 distance)");
  }
  if (options.ef_search < 0) return InvalidArgument("ef_search must be >= 0");
  return Status::Ok();
}

inline Status DuplicateId(int64_t id) {
  return {StatusCode::kAlreadyExists, "id " + std::to_string(id) + " is already in the index"};
}

inline Status MissingId(int64_t id) {
  return NotFound("id " + std::to_string(id) + " is not in the index");
}

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_INDEX_CHECKS_H_
