// Distance kernels: squared L2 between vectors, one query against many rows, and the register-
// blocked tile kernel behind batched exact search. Each exists for AVX-512F, AVX2+FMA and
// portable C++; the best one this CPU runs is chosen once, at first use, so one binary runs on
// any x86-64 (and on other architectures, portably).
#ifndef DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_DISTANCE_H_
#define DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_DISTANCE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace dtrain::embed {

// Batched exact search computes dist(q, x) = |q|^2 + |x|^2 - 2 q.x for a tile of tile_queries x
// tile_rows pairs at once, from operands packed so that the inner loop is pure loads and FMAs:
//   packed queries: qpack[p * tile_queries + i] = query i, component p (zero padded);
//   packed rows:    xpack[p * tile_rows + j]    = row j, component p (zero padded).
// tile() writes dist[i * tile_rows + j] for every i whose mask is non-zero, and sets bit j of
// masks[i] when dist < thresh[i]. Padding rows must carry xnorm = +inf and padding queries
// thresh = -inf, so that they never match.
struct Kernels {
  const char* isa;  // "avx512", "avx2" or "generic"
  float (*l2sqr)(const float* a, const float* b, size_t d);
  // out[i] = l2sqr(q, x + i * d) for i in [0, n).
  void (*l2sqr_rows)(const float* q, const float* x, size_t n, size_t d, float* out);
  int tile_queries;
  int tile_rows;
  void (*tile)(const float* qpack, const float* xpack, size_t d, const float* qnorm,
               const float* xnorm, const float* thresh, float* dist, uint32_t* masks);
};

// The kernels for this CPU. DTRAIN_INDEX_ISA=generic|avx2|avx512 (read once) forces a lower
// level, for comparisons.
const Kernels& BestKernels();
// Every kernel set this CPU can run, best first (tests compare them against each other).
std::vector<const Kernels*> SupportedKernels();

inline float L2Sqr(const float* a, const float* b, size_t d) {
  return BestKernels().l2sqr(a, b, d);
}
float NormSqr(const float* a, size_t d);

// Packs `rows` <= tile_rows rows of row-major x (stride d) into xpack (d * tile_rows floats).
void PackRows(const float* x, size_t rows, size_t d, int tile_rows, float* xpack);
// Packs `count` <= tile_queries queries into qpack (d * tile_queries floats).
void PackQueries(const float* q, size_t count, size_t d, int tile_queries, float* qpack);

}  // namespace dtrain::embed

#endif  // DTRAIN_WORKERS_EMBEDDING_STORE_INDEX_DISTANCE_H_
