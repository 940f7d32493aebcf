#include "workers/embedding_store/index/distance.h"

#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DTRAIN_INDEX_X86 1
#endif

// The kernels are written with intrinsics per instruction set rather than left to the
// auto-vectoriser through target_clones: GCC vectorises the main loops either way, but turns the
// horizontal sums into long scalar chains, which would dominate HNSW's one-pair distances.

namespace dtrain::embed {
namespace {

// ---- portable C++ -------------------------------------------------------------------------------

float L2SqrGeneric(const float* a, const float* b, size_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t j = 0;
  for (; j + 4 <= d; j += 4) {
    const float t0 = a[j] - b[j], t1 = a[j + 1] - b[j + 1];
    const float t2 = a[j + 2] - b[j + 2], t3 = a[j + 3] - b[j + 3];
    s0 += t0 * t0;
    s1 += t1 * t1;
    s2 += t2 * t2;
    s3 += t3 * t3;
  }
  for (; j < d; ++j) {
    const float t = a[j] - b[j];
    s0 += t * t;
  }
  return (s0 + s1) + (s2 + s3);
}

void L2SqrRowsGeneric(const float* q, const float* x, size_t n, size_t d, float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = L2SqrGeneric(q, x + i * d, d);
}

constexpr int kGenericMr = 4;
constexpr int kGenericNr = 16;

void TileGeneric(const float* qp, const float* xp, size_t d, const float* qn, const float* xn,
                 const float* thr, float* dist, uint32_t* masks) {
  float acc[kGenericMr][kGenericNr] = {};
  for (size_t p = 0; p < d; ++p) {
    const float* xr = xp + p * kGenericNr;
    for (int i = 0; i < kGenericMr; ++i) {
      const float qi = qp[p * kGenericMr + i];
      for (int j = 0; j < kGenericNr; ++j) acc[i][j] += qi * xr[j];
    }
  }
  for (int i = 0; i < kGenericMr; ++i) {
    uint32_t m = 0;
    float* row = dist + i * kGenericNr;
    for (int j = 0; j < kGenericNr; ++j) {
      row[j] = qn[i] + xn[j] - 2.0f * acc[i][j];
      if (row[j] < thr[i]) m |= 1u << j;
    }
    masks[i] = m;
  }
}

#if defined(DTRAIN_INDEX_X86)

// ---- AVX2 + FMA ---------------------------------------------------------------------------------
#define DTRAIN_TARGET_AVX2 __attribute__((target("avx2,fma")))

DTRAIN_TARGET_AVX2 inline float HorizontalSum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

DTRAIN_TARGET_AVX2 inline float L2SqrAvx2Inline(const float* a, const float* b, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  size_t j = 0;
  for (; j + 16 <= d; j += 16) {
    const __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j));
    const __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    s1 = _mm256_fmadd_ps(t1, t1, s1);
  }
  if (j + 8 <= d) {
    const __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j));
    s0 = _mm256_fmadd_ps(t0, t0, s0);
    j += 8;
  }
  float s = HorizontalSum256(_mm256_add_ps(s0, s1));
  for (; j < d; ++j) {
    const float t = a[j] - b[j];
    s += t * t;
  }
  return s;
}

DTRAIN_TARGET_AVX2 float L2SqrAvx2(const float* a, const float* b, size_t d) {
  return L2SqrAvx2Inline(a, b, d);
}

DTRAIN_TARGET_AVX2 void L2SqrRowsAvx2(const float* q, const float* x, size_t n, size_t d,
                                      float* out) {
  for (size_t i = 0; i < n; ++i) out[i] = L2SqrAvx2Inline(q, x + i * d, d);
}

constexpr int kAvx2Mr = 6;
constexpr int kAvx2Nr = 16;

DTRAIN_TARGET_AVX2 void TileAvx2(const float* qp, const float* xp, size_t d, const float* qn,
                                 const float* xn, const float* thr, float* dist, uint32_t* masks) {
  __m256 c0[kAvx2Mr], c1[kAvx2Mr];
  {
    const __m256 x0 = _mm256_loadu_ps(xp);
    const __m256 x1 = _mm256_loadu_ps(xp + 8);
#pragma GCC unroll 6
    for (int i = 0; i < kAvx2Mr; ++i) {
      const __m256 qi = _mm256_broadcast_ss(qp + i);
      c0[i] = _mm256_mul_ps(qi, x0);
      c1[i] = _mm256_mul_ps(qi, x1);
    }
  }
  for (size_t p = 1; p < d; ++p) {
    const __m256 x0 = _mm256_loadu_ps(xp + p * kAvx2Nr);
    const __m256 x1 = _mm256_loadu_ps(xp + p * kAvx2Nr + 8);
    const float* q = qp + p * kAvx2Mr;
#pragma GCC unroll 6
    for (int i = 0; i < kAvx2Mr; ++i) {
      const __m256 qi = _mm256_broadcast_ss(q + i);
      c0[i] = _mm256_fmadd_ps(qi, x0, c0[i]);
      c1[i] = _mm256_fmadd_ps(qi, x1, c1[i]);
    }
  }
  const __m256 xn0 = _mm256_loadu_ps(xn), xn1 = _mm256_loadu_ps(xn + 8);
  const __m256 minus2 = _mm256_set1_ps(-2.0f);
#pragma GCC unroll 6
  for (int i = 0; i < kAvx2Mr; ++i) {
    const __m256 qni = _mm256_set1_ps(qn[i]);
    const __m256 t = _mm256_set1_ps(thr[i]);
    const __m256 d0 = _mm256_fmadd_ps(c0[i], minus2, _mm256_add_ps(xn0, qni));
    const __m256 d1 = _mm256_fmadd_ps(c1[i], minus2, _mm256_add_ps(xn1, qni));
    const uint32_t m =
        static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(d0, t, _CMP_LT_OQ))) |
        (static_cast<uint32_t>(_mm256_movemask_ps(_mm256_cmp_ps(d1, t, _CMP_LT_OQ))) << 8);
    masks[i] = m;
    if (m != 0) {
      _mm256_storeu_ps(dist + i * kAvx2Nr, d0);
      _mm256_storeu_ps(dist + i * kAvx2Nr + 8, d1);
    }
  }
}

// GCC 12 reports the _mm512_undefined_ps() inside its own shuffle intrinsics as uninitialised
// (GCC bug 105593); the operand is dead by design.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// ---- AVX-512F -----------------------------------------------------------------------------------
#define DTRAIN_TARGET_AVX512 __attribute__((target("avx512f")))

DTRAIN_TARGET_AVX512 inline float L2SqrAvx512Inline(const float* a, const float* b, size_t d) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  size_t j = 0;
  for (; j + 32 <= d; j += 32) {
    const __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j));
    const __m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + j + 16), _mm512_loadu_ps(b + j + 16));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    s1 = _mm512_fmadd_ps(t1, t1, s1);
  }
  if (j + 16 <= d) {
    const __m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j));
    s0 = _mm512_fmadd_ps(t0, t0, s0);
    j += 16;
  }
  if (j < d) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (d - j)) - 1);
    const __m512 t1 =
        _mm512_sub_ps(_mm512_maskz_loadu_ps(tail, a + j), _mm512_maskz_loadu_ps(tail, b + j));
    s1 = _mm512_fmadd_ps(t1, t1, s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

DTRAIN_TARGET_AVX512 float L2SqrAvx512(const float* a, const float* b, size_t d) {
  return L2SqrAvx512Inline(a, b, d);
}

// Sums each of 16 vectors: result lane r = sum of a[r]'s lanes. A transposing add tree, ~3 ops
// per vector instead of the ~8 of a horizontal sum each.
DTRAIN_TARGET_AVX512 inline __m512 Sum16(const __m512* a) {
  __m512 t[8];
  for (int p = 0; p < 8; ++p) {  // per 128-bit lane: pair sums of rows 2p, 2p + 1
    t[p] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * p], a[2 * p + 1]),
                         _mm512_unpackhi_ps(a[2 * p], a[2 * p + 1]));
  }
  __m512 u[4];
  for (int g = 0; g < 4; ++g) {  // per 128-bit lane: partial sums of rows 4g .. 4g + 3
    u[g] = _mm512_add_ps(_mm512_shuffle_ps(t[2 * g], t[2 * g + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(t[2 * g], t[2 * g + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  }
  const __m512 w01 = _mm512_add_ps(_mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(u[0], u[1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m512 w23 = _mm512_add_ps(_mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm512_shuffle_f32x4(u[2], u[3], _MM_SHUFFLE(3, 2, 3, 2)));
  return _mm512_add_ps(_mm512_shuffle_f32x4(w01, w23, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(w01, w23, _MM_SHUFFLE(3, 1, 3, 1)));
}

// 16 rows per step, the query held in registers when its width is a template constant
// (kChunks > 0: d = 16 * kChunks) and reloaded from L1 otherwise (d a multiple of 16). With
// one reduction tree per 16 rows instead of one horizontal sum per row, two cores scan at the
// full memory bandwidth (~1.1x the per-row loop at 128-d on Zen 5, measured).
template <int kChunks>
DTRAIN_TARGET_AVX512 size_t L2SqrRows16(const float* q, const float* x, size_t n, size_t d,
                                        float* out) {
  constexpr int kHeld = kChunks > 0 ? kChunks : 1;
  __m512 held[kHeld];
  if (kChunks > 0) {
    for (int c = 0; c < kHeld; ++c) held[c] = _mm512_loadu_ps(q + 16 * c);
  }
  const size_t chunks = kChunks > 0 ? static_cast<size_t>(kChunks) : d / 16;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512 acc[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
      const float* xr = x + (i + r) * d;
      __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
#pragma GCC unroll 8
      for (size_t c = 0; c < chunks; ++c) {
        const __m512 qc = kChunks > 0 ? held[c] : _mm512_loadu_ps(q + 16 * c);
        const __m512 t = _mm512_sub_ps(qc, _mm512_loadu_ps(xr + 16 * c));
        if (c % 2 == 0) {
          s0 = _mm512_fmadd_ps(t, t, s0);
        } else {
          s1 = _mm512_fmadd_ps(t, t, s1);
        }
      }
      acc[r] = _mm512_add_ps(s0, s1);
    }
    _mm512_storeu_ps(out + i, Sum16(acc));
  }
  return i;  // rows done; the caller finishes the tail
}

DTRAIN_TARGET_AVX512 void L2SqrRowsAvx512(const float* q, const float* x, size_t n, size_t d,
                                          float* out) {
  size_t i = 0;
  if (d == 128) {
    i = L2SqrRows16<8>(q, x, n, d, out);
  } else if (d == 64) {
    i = L2SqrRows16<4>(q, x, n, d, out);
  } else if (d % 16 == 0) {
    i = L2SqrRows16<0>(q, x, n, d, out);
  }
  for (; i < n; ++i) out[i] = L2SqrAvx512Inline(q, x + i * d, d);
}

constexpr int kAvx512Mr = 12;
constexpr int kAvx512Nr = 32;

DTRAIN_TARGET_AVX512 void TileAvx512(const float* qp, const float* xp, size_t d, const float* qn,
                                     const float* xn, const float* thr, float* dist,
                                     uint32_t* masks) {
  // 24 accumulators + 2 row vectors + 1 broadcast fit the 32 zmm registers.
  // The first step initialises the accumulators (d >= 1): zero-filling them instead makes GCC
  // keep a zeroed copy of the arrays on the stack.
  __m512 c0[kAvx512Mr], c1[kAvx512Mr];
  {
    const __m512 x0 = _mm512_loadu_ps(xp);
    const __m512 x1 = _mm512_loadu_ps(xp + 16);
#pragma GCC unroll 12
    for (int i = 0; i < kAvx512Mr; ++i) {
      const __m512 qi = _mm512_set1_ps(qp[i]);
      c0[i] = _mm512_mul_ps(qi, x0);
      c1[i] = _mm512_mul_ps(qi, x1);
    }
  }
  for (size_t p = 1; p < d; ++p) {
    const __m512 x0 = _mm512_loadu_ps(xp + p * kAvx512Nr);
    const __m512 x1 = _mm512_loadu_ps(xp + p * kAvx512Nr + 16);
    const float* q = qp + p * kAvx512Mr;
#pragma GCC unroll 12
    for (int i = 0; i < kAvx512Mr; ++i) {
      const __m512 qi = _mm512_set1_ps(q[i]);
      c0[i] = _mm512_fmadd_ps(qi, x0, c0[i]);
      c1[i] = _mm512_fmadd_ps(qi, x1, c1[i]);
    }
  }
  const __m512 xn0 = _mm512_loadu_ps(xn), xn1 = _mm512_loadu_ps(xn + 16);
  const __m512 minus2 = _mm512_set1_ps(-2.0f);
#pragma GCC unroll 12
  for (int i = 0; i < kAvx512Mr; ++i) {
    const __m512 qni = _mm512_set1_ps(qn[i]);
    const __m512 t = _mm512_set1_ps(thr[i]);
    const __m512 d0 = _mm512_fmadd_ps(c0[i], minus2, _mm512_add_ps(xn0, qni));
    const __m512 d1 = _mm512_fmadd_ps(c1[i], minus2, _mm512_add_ps(xn1, qni));
    const uint32_t m = static_cast<uint32_t>(_mm512_cmp_ps_mask(d0, t, _CMP_LT_OQ)) |
                       (static_cast<uint32_t>(_mm512_cmp_ps_mask(d1, t, _CMP_LT_OQ)) << 16);
    masks[i] = m;
    if (m != 0) {
      _mm512_storeu_ps(dist + i * kAvx512Nr, d0);
      _mm512_storeu_ps(dist + i * kAvx512Nr + 16, d1);
    }
  }
}

#pragma GCC diagnostic pop

#endif  // DTRAIN_INDEX_X86

const Kernels kGenericKernels = {"generic",  L2SqrGeneric, L2SqrRowsGeneric,
                                 kGenericMr, kGenericNr,   TileGeneric};
#if defined(DTRAIN_INDEX_X86)
const Kernels kAvx2Kernels = {"avx2", L2SqrAvx2, L2SqrRowsAvx2, kAvx2Mr, kAvx2Nr, TileAvx2};
const Kernels kAvx512Kernels = {"avx512",  L2SqrAvx512, L2SqrRowsAvx512,
                                kAvx512Mr, kAvx512Nr,   TileAvx512};
#endif

std::vector<const Kernels*> Supported() {
  std::vector<const Kernels*> out;
#if defined(DTRAIN_INDEX_X86)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) out.push_back(&kAvx512Kernels);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    out.push_back(&kAvx2Kernels);
  }
#endif
  out.push_back(&kGenericKernels);
  return out;
}

const Kernels* Choose() {
  const std::vector<const Kernels*> supported = Supported();
  const char* forced = std::getenv("DTRAIN_INDEX_ISA");
  if (forced != nullptr) {
    for (const Kernels* k : supported) {
      if (std::string(k->isa) == forced) return k;
    }
  }
  return supported.front();
}

}  // namespace

const Kernels& BestKernels() {
  static const Kernels* const best = Choose();
  return *best;
}

std::vector<const Kernels*> SupportedKernels() { return Supported(); }

float NormSqr(const float* a, size_t d) {
  double s = 0;
  for (size_t j = 0; j < d; ++j) s += static_cast<double>(a[j]) * a[j];
  return static_cast<float>(s);
}

void PackRows(const float* x, size_t rows, size_t d, int tile_rows, float* xpack) {
  const size_t nr = static_cast<size_t>(tile_rows);
  if (rows < nr) std::memset(xpack, 0, d * nr * sizeof(float));
  for (size_t j = 0; j < rows; ++j) {
    const float* src = x + j * d;
    for (size_t p = 0; p < d; ++p) xpack[p * nr + j] = src[p];
  }
}

void PackQueries(const float* q, size_t count, size_t d, int tile_queries, float* qpack) {
  PackRows(q, count, d, tile_queries, qpack);
}

}  // namespace dtrain::embed
