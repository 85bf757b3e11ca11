// Small dense vector helpers (length = embedding dim) for CPU kernels: dot product and axpy, written with
// AVX-512 / AVX2+FMA intrinsics when the compiler targets them (-march=native) and a scalar loop otherwise.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace embedfast {

// The multi-row helpers below are called from the innermost loops of the training kernels; with their AVX2 blocks
// they grew past GCC's inlining limits, and the calls (one per row group) cost skip-gram's HogBatch loop its speed.
#if defined(__GNUC__)
#define EMBEDFAST_HOT_INLINE inline __attribute__((always_inline))
#define EMBEDFAST_LAMBDA_INLINE __attribute__((always_inline))
#else
#define EMBEDFAST_HOT_INLINE inline
#define EMBEDFAST_LAMBDA_INLINE
#endif

#if defined(__AVX512F__)
// Horizontal sum of 16 lanes with in-register shuffles; the maskz forms avoid _mm512_undefined_ps, which
// trips GCC 12 -Wuninitialized (as _mm512_reduce_add_ps does).
inline float hsum512(__m512 v) {
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0x4E));  // swap 256-bit halves
  v = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(0xFFFF, v, v, 0xB1));  // swap 128-bit lanes
  v = _mm512_add_ps(v, _mm512_maskz_permute_ps(0xFFFF, v, 0x4E));        // swap pairs
  v = _mm512_add_ps(v, _mm512_maskz_permute_ps(0xFFFF, v, 0xB1));        // swap neighbours
  return _mm512_cvtss_f32(v);
}

// out[r] = hsum512(v[r]) for r < m <= 8, the eight vectors reduced together (17 shuffles and 10 adds, against 32
// and 32 one by one). The same additions in the same order per vector as hsum512, so the sums are equal; v[m..8)
// are overwritten.
EMBEDFAST_HOT_INLINE void hsum512x8(__m512* v, int64_t m, float* out) {
  for (int64_t r = m; r < 8; ++r) v[r] = _mm512_setzero_ps();
  // [a's 256-bit halves added | b's]
  auto pair = [](__m512 a, __m512 b) {
    return _mm512_add_ps(_mm512_maskz_shuffle_f32x4(0xFFFF, a, b, 0x44), _mm512_maskz_shuffle_f32x4(0xFFFF, a, b, 0xEE));
  };
  // [p's 128-bit lanes 0 + 1 | p's 2 + 3 | q's 0 + 1 | q's 2 + 3]: each 128-bit lane one vector's partial sums
  auto quad = [](__m512 p, __m512 q) {
    return _mm512_add_ps(_mm512_maskz_shuffle_f32x4(0xFFFF, p, q, 0x88), _mm512_maskz_shuffle_f32x4(0xFFFF, p, q, 0xDD));
  };
  auto lanes = [](__m512 x) {  // within each 128-bit lane: swap pairs, then neighbours
    x = _mm512_add_ps(x, _mm512_maskz_permute_ps(0xFFFF, x, 0x4E));
    return _mm512_add_ps(x, _mm512_maskz_permute_ps(0xFFFF, x, 0xB1));
  };
  const __m512 lo = lanes(quad(pair(v[0], v[1]), pair(v[2], v[3])));
  const __m512 hi = lanes(quad(pair(v[4], v[5]), pair(v[6], v[7])));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
  _mm512_mask_storeu_ps(out, __mmask16((1u << m) - 1u), _mm512_permutex2var_ps(lo, idx, hi));
}
#endif

#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
namespace detail {
// The end of an AVX2 dot of a and b over [0, n) whose lanes before i are summed in the 8 lanes of acc: the two
// 128-bit halves added, one 4-lane step when that many lanes are left, two horizontal adds, then the scalar tail as
// fused multiply-adds. dot_f32, multi_dot_f32 and exchange_dot_rows_f32 all end here, so their sums agree.
EMBEDFAST_HOT_INLINE float finish_dot_avx2(__m256 acc, const float* __restrict a, const float* __restrict b, int64_t i,
                                           int64_t n) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  if (n - i >= 4) {
    s = _mm_fmadd_ps(_mm_loadu_ps(a + i), _mm_loadu_ps(b + i), s);
    i += 4;
  }
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  float r = _mm_cvtss_f32(s);
  for (; i < n; ++i) r = std::fma(a[i], b[i], r);
  return r;
}
}  // namespace detail
#endif

inline float dot_f32(const float* __restrict a, const float* __restrict b, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i + 16 <= n; i += 16) acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc0);
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1u);
    acc1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc1);
    i = n;
  }
  return hsum512(_mm512_add_ps(acc0, acc1));
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  if (n - i >= 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    i += 8;
  }
  return detail::finish_dot_avx2(_mm256_add_ps(acc0, acc1), a, b, i, n);
#else
  float r0 = 0.f, r1 = 0.f, r2 = 0.f, r3 = 0.f;
  for (; i + 4 <= n; i += 4) {
    r0 += a[i] * b[i];
    r1 += a[i + 1] * b[i + 1];
    r2 += a[i + 2] * b[i + 2];
    r3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) r0 += a[i] * b[i];
  return (r0 + r1) + (r2 + r3);
#endif
}

// y += alpha * x
inline void axpy_f32(float alpha, const float* __restrict x, float* __restrict y, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512F__)
  const __m512 va = _mm512_set1_ps(alpha);
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(va, _mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 m = __mmask16((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i)));
  }
#elif defined(__AVX2__) && defined(__FMA__)
  const __m256 va = _mm256_set1_ps(alpha);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; ++i) y[i] = std::fma(alpha, x[i], y[i]);
#else
  for (; i < n; ++i) y[i] += alpha * x[i];
#endif
}

namespace detail {
// f(std::integral_constant<int, C>{}) for the run-time c in 1..8: the multi-row helpers' blocks of C chunks or rows.
template <typename F>
EMBEDFAST_HOT_INLINE void with_chunks(int64_t c, F&& f) {
  switch (c) {
    case 1: f(std::integral_constant<int, 1>{}); break;
    case 2: f(std::integral_constant<int, 2>{}); break;
    case 3: f(std::integral_constant<int, 3>{}); break;
    case 4: f(std::integral_constant<int, 4>{}); break;
    case 5: f(std::integral_constant<int, 5>{}); break;
    case 6: f(std::integral_constant<int, 6>{}); break;
    case 7: f(std::integral_constant<int, 7>{}); break;
    case 8: f(std::integral_constant<int, 8>{}); break;
    default: break;
  }
}

// f(std::integral_constant<int, C>{}, c0) for the blocks [c0, c0 + C) of `chunks` lane chunks, in order: as many
// of kMax chunks as fit, then one of the rest (none when it is empty). The multi-row helpers' walk over D (and
// multi_dot_f32's over its rows).
template <int kMax, typename F>
EMBEDFAST_HOT_INLINE void chunk_blocks(int64_t chunks, F&& f) {
  int64_t c0 = 0;
  for (; chunks - c0 >= kMax; c0 += kMax) f(std::integral_constant<int, kMax>{}, c0);
  with_chunks(chunks - c0, [&](auto C) EMBEDFAST_LAMBDA_INLINE { f(C, c0); });
}
}  // namespace detail

#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
namespace detail {
// out[r] = dot(x, rows[r]) for M rows at once, x loaded once per 16 lanes; per row the same accumulation as dot_f32
// (two accumulators over 16-lane steps, one more 8-lane and one 4-lane step when that many lanes are left, the
// same horizontal sum, then the scalar tail), so the results are equal.
template <int M>
EMBEDFAST_HOT_INLINE void multi_dot_avx2(const float* __restrict x, const float* const* rows, int64_t n, float* __restrict out) {
  __m256 acc0[M], acc1[M];
  for (int r = 0; r < M; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
    for (int r = 0; r < M; ++r) {
      acc0[r] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(rows[r] + i), acc0[r]);
      acc1[r] = _mm256_fmadd_ps(x1, _mm256_loadu_ps(rows[r] + i + 8), acc1[r]);
    }
  }
  if (n - i >= 8) {
    const __m256 x0 = _mm256_loadu_ps(x + i);
    for (int r = 0; r < M; ++r) acc0[r] = _mm256_fmadd_ps(x0, _mm256_loadu_ps(rows[r] + i), acc0[r]);
    i += 8;
  }
  for (int r = 0; r < M; ++r) out[r] = finish_dot_avx2(_mm256_add_ps(acc0[r], acc1[r]), x, rows[r], i, n);
}

// Lanes [k, k + 8C) of combine_rows_f32: C accumulators of 8 lanes (independent chains). Only whole 8-lane chunks:
// the last D % 8 lanes are left to combine_tail_avx2, because AVX2's masked stores (vmaskmovps) are slow on AMD cores.
template <int C>
EMBEDFAST_HOT_INLINE void combine_block_avx2(float* __restrict y, bool accumulate, const float* coef, int64_t coef_stride,
                               const float* const* rows, int64_t n, int64_t k) {
  __m256 acc[C];
  for (int i = 0; i < C; ++i) acc[i] = accumulate ? _mm256_loadu_ps(y + k + 8 * i) : _mm256_setzero_ps();
  for (int64_t r = 0; r < n; ++r) {
    const __m256 c = _mm256_set1_ps(coef[r * coef_stride]);
    const float* p = rows[r] + k;
    for (int i = 0; i < C; ++i) acc[i] = _mm256_fmadd_ps(c, _mm256_loadu_ps(p + 8 * i), acc[i]);
  }
  for (int i = 0; i < C; ++i) _mm256_storeu_ps(y + k + 8 * i, acc[i]);
}

// Lanes [k, D) of combine_rows_f32 (fewer than 8): 4 of them in one 128-bit chunk (a scalar loop there is a chain
// of dependent fused multiply-adds per lane), the rest scalar; the same fused multiply-adds per lane either way.
EMBEDFAST_HOT_INLINE void combine_tail_avx2(float* __restrict y, bool accumulate, const float* coef,
                                            int64_t coef_stride, const float* const* rows, int64_t n, int64_t k,
                                            int64_t D) {
  if (D - k >= 4) {
    __m128 acc = accumulate ? _mm_loadu_ps(y + k) : _mm_setzero_ps();
    for (int64_t r = 0; r < n; ++r) acc = _mm_fmadd_ps(_mm_set1_ps(coef[r * coef_stride]), _mm_loadu_ps(rows[r] + k), acc);
    _mm_storeu_ps(y + k, acc);
    k += 4;
  }
  for (; k < D; ++k) {
    float v = accumulate ? y[k] : 0.0f;
    for (int64_t r = 0; r < n; ++r) v = std::fma(coef[r * coef_stride], rows[r][k], v);
    y[k] = v;
  }
}

// Lanes [k, k + 8C) of exchange_rows_f32: y's and x's chunks stay in registers while every row passes once. With
// kDot (exchange_dot_rows_f32), each updated row's products with xn are also added into its 8-lane partial sum
// partial[8r, 8r + 8) (set by the first block).
template <int C, bool kDot = false>
EMBEDFAST_HOT_INLINE void exchange_block_avx2(float* __restrict y, bool accumulate, const float* coef,
                                              const float* __restrict x, float* const* rows, int64_t n, int64_t k,
                                              const float* __restrict xn = nullptr, float* __restrict partial = nullptr,
                                              bool first = true) {
  __m256 acc[C], xv[C];
  for (int i = 0; i < C; ++i) {
    acc[i] = accumulate ? _mm256_loadu_ps(y + k + 8 * i) : _mm256_setzero_ps();
    xv[i] = _mm256_loadu_ps(x + k + 8 * i);
  }
  for (int64_t r = 0; r < n; ++r) {
    const __m256 c = _mm256_set1_ps(coef[r]);
    float* p = rows[r] + k;
    __m256 d = !kDot || first ? _mm256_setzero_ps() : _mm256_loadu_ps(partial + 8 * r);
    for (int i = 0; i < C; ++i) {
      const __m256 v = _mm256_loadu_ps(p + 8 * i);
      acc[i] = _mm256_fmadd_ps(c, v, acc[i]);
      const __m256 updated = _mm256_fmadd_ps(c, xv[i], v);
      _mm256_storeu_ps(p + 8 * i, updated);
      if constexpr (kDot) d = _mm256_fmadd_ps(_mm256_loadu_ps(xn + k + 8 * i), updated, d);
    }
    if constexpr (kDot) _mm256_storeu_ps(partial + 8 * r, d);
  }
  for (int i = 0; i < C; ++i) _mm256_storeu_ps(y + k + 8 * i, acc[i]);
}

// Lanes [k, D) of exchange_rows_f32 (fewer than 8), as combine_tail_avx2: 4 in one 128-bit chunk, the rest scalar
// (fused multiply-adds, as axpy_f32's tail).
EMBEDFAST_HOT_INLINE void exchange_tail_avx2(float* __restrict y, bool accumulate, const float* coef,
                                             const float* __restrict x, float* const* rows, int64_t n, int64_t k,
                                             int64_t D) {
  if (D - k >= 4) {
    __m128 acc = accumulate ? _mm_loadu_ps(y + k) : _mm_setzero_ps();
    const __m128 xv = _mm_loadu_ps(x + k);
    for (int64_t r = 0; r < n; ++r) {
      const __m128 c = _mm_set1_ps(coef[r]), v = _mm_loadu_ps(rows[r] + k);
      acc = _mm_fmadd_ps(c, v, acc);
      _mm_storeu_ps(rows[r] + k, _mm_fmadd_ps(c, xv, v));
    }
    _mm_storeu_ps(y + k, acc);
    k += 4;
  }
  for (; k < D; ++k) {
    float v = accumulate ? y[k] : 0.0f;
    for (int64_t r = 0; r < n; ++r) {
      v = std::fma(coef[r], rows[r][k], v);
      rows[r][k] = std::fma(coef[r], x[k], rows[r][k]);
    }
    y[k] = v;
  }
}
}  // namespace detail
#endif

#if defined(__AVX512F__)
namespace detail {
// Lanes [k, k + 16C) of combine_rows_f32, the chunks past D masked: C accumulators of 16 lanes, so each row adds C
// independent fused multiply-adds (one accumulator for all the rows would be a chain of dependent ones).
template <int C>
EMBEDFAST_HOT_INLINE void combine_block_avx512(float* __restrict y, bool accumulate, const float* coef,
                                               int64_t coef_stride, const float* const* rows, int64_t n, int64_t k,
                                               int64_t D) {
  __m512 acc[C];
  __mmask16 mask[C];
  for (int i = 0; i < C; ++i) {
    const int64_t left = D - (k + 16 * i);
    mask[i] = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
    acc[i] = accumulate ? _mm512_maskz_loadu_ps(mask[i], y + k + 16 * i) : _mm512_setzero_ps();
  }
  for (int64_t r = 0; r < n; ++r) {
    const __m512 c = _mm512_set1_ps(coef[r * coef_stride]);
    const float* p = rows[r] + k;
    for (int i = 0; i < C; ++i) acc[i] = _mm512_fmadd_ps(c, _mm512_maskz_loadu_ps(mask[i], p + 16 * i), acc[i]);
  }
  for (int i = 0; i < C; ++i) _mm512_mask_storeu_ps(y + k + 16 * i, mask[i], acc[i]);
}

// Lanes [k, k + 16C) of exchange_rows_f32, the chunks past D masked: y's and x's chunks stay in registers while
// every row passes once (loaded, added to y, updated, stored). With kDot (exchange_dot_rows_f32), each updated row's
// products with xn are also added into its 16-lane partial sum partial[16r, 16r + 16) (set by the first block; 0
// past D, where xn's and the row's lanes are loaded as 0).
template <int C, bool kDot = false>
EMBEDFAST_HOT_INLINE void exchange_block_avx512(float* __restrict y, bool accumulate, const float* coef,
                                                const float* __restrict x, float* const* rows, int64_t n, int64_t k,
                                                int64_t D, const float* __restrict xn = nullptr,
                                                float* __restrict partial = nullptr, bool first = true) {
  __m512 acc[C], xv[C], xnv[C];
  __mmask16 mask[C];
  for (int i = 0; i < C; ++i) {
    const int64_t left = D - (k + 16 * i);
    mask[i] = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
    acc[i] = accumulate ? _mm512_maskz_loadu_ps(mask[i], y + k + 16 * i) : _mm512_setzero_ps();
    xv[i] = _mm512_maskz_loadu_ps(mask[i], x + k + 16 * i);
    if constexpr (kDot) xnv[i] = _mm512_maskz_loadu_ps(mask[i], xn + k + 16 * i);
  }
  for (int64_t r = 0; r < n; ++r) {
    const __m512 c = _mm512_set1_ps(coef[r]);
    float* p = rows[r] + k;
    __m512 d = !kDot || first ? _mm512_setzero_ps() : _mm512_loadu_ps(partial + 16 * r);
    for (int i = 0; i < C; ++i) {
      const __m512 v = _mm512_maskz_loadu_ps(mask[i], p + 16 * i);
      acc[i] = _mm512_fmadd_ps(c, v, acc[i]);
      const __m512 updated = _mm512_fmadd_ps(c, xv[i], v);
      _mm512_mask_storeu_ps(p + 16 * i, mask[i], updated);
      if constexpr (kDot) d = _mm512_fmadd_ps(xnv[i], updated, d);
    }
    if constexpr (kDot) _mm512_storeu_ps(partial + 16 * r, d);
  }
  for (int i = 0; i < C; ++i) _mm512_mask_storeu_ps(y + k + 16 * i, mask[i], acc[i]);
}

// out[r] = dot(x, rows[r]) for M <= 8 rows: x loaded once per 16 lanes, two accumulators per row as dot_f32 (full
// chunk c into acc0 or acc1 by its parity, the masked last chunk into acc1, then acc0 + acc1), so the sums equal
// dot_f32's bit for bit. M is a constant so that the accumulators stay in registers (with a run-time count they
// lived on the stack, every fused multiply-add a load and a store).
template <int M>
EMBEDFAST_HOT_INLINE void multi_dot_avx512(const float* __restrict x, const float* const* rows, int64_t D,
                                           float* __restrict out) {
  __m512 acc[8], acc1[M];
  for (int r = 0; r < M; ++r) acc[r] = acc1[r] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 <= D; k += 32) {
    const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
    for (int r = 0; r < M; ++r) {
      acc[r] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(rows[r] + k), acc[r]);
      acc1[r] = _mm512_fmadd_ps(x1, _mm512_loadu_ps(rows[r] + k + 16), acc1[r]);
    }
  }
  if (k + 16 <= D) {
    const __m512 x0 = _mm512_loadu_ps(x + k);
    for (int r = 0; r < M; ++r) acc[r] = _mm512_fmadd_ps(x0, _mm512_loadu_ps(rows[r] + k), acc[r]);
    k += 16;
  }
  if (k < D) {
    const __mmask16 mask = __mmask16((1u << (D - k)) - 1u);
    const __m512 xv = _mm512_maskz_loadu_ps(mask, x + k);
    for (int r = 0; r < M; ++r) acc1[r] = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mask, rows[r] + k), acc1[r]);
  }
  for (int r = 0; r < M; ++r) acc[r] = _mm512_add_ps(acc[r], acc1[r]);
  hsum512x8(acc, M, out);
}
}  // namespace detail
#endif

// out[r] = dot(x, rows[r]) for r < n: x is loaded once per 16 lanes for up to 8 rows at a time.
EMBEDFAST_HOT_INLINE void multi_dot_f32(const float* __restrict x, const float* const* rows, int64_t n, int64_t D,
                          float* __restrict out) {
#if defined(__AVX512F__)
  detail::chunk_blocks<8>(n, [&](auto M, int64_t r0) EMBEDFAST_LAMBDA_INLINE {
    detail::multi_dot_avx512<decltype(M)::value>(x, rows + r0, D, out + r0);
  });
#elif defined(__AVX2__) && defined(__FMA__)
  int64_t r0 = 0;
  for (; r0 + 4 <= n; r0 += 4) detail::multi_dot_avx2<4>(x, rows + r0, D, out + r0);
  switch (n - r0) {
    case 3: detail::multi_dot_avx2<3>(x, rows + r0, D, out + r0); break;
    case 2: detail::multi_dot_avx2<2>(x, rows + r0, D, out + r0); break;
    case 1: detail::multi_dot_avx2<1>(x, rows + r0, D, out + r0); break;
    default: break;
  }
#else
  for (int64_t r = 0; r < n; ++r) out[r] = dot_f32(x, rows[r], D);
#endif
}

// y = (accumulate ? y : 0) + sum_r coef[r * coef_stride] * rows[r]: y is written once per 16 lanes.
EMBEDFAST_HOT_INLINE void combine_rows_f32(float* __restrict y, bool accumulate, const float* coef, int64_t coef_stride,
                             const float* const* rows, int64_t n, int64_t D) {
#if defined(__AVX512F__)
  // blocks of up to 8 chunks of 16 lanes (the last one masked); per lane the rows' terms are added in order
  // r = 0, 1, ... with fused multiply-adds
  detail::chunk_blocks<8>((D + 15) / 16, [&](auto C, int64_t c0) EMBEDFAST_LAMBDA_INLINE {
    detail::combine_block_avx512<decltype(C)::value>(y, accumulate, coef, coef_stride, rows, n, 16 * c0, D);
  });
#elif defined(__AVX2__) && defined(__FMA__)
  // blocks of up to 8 chunks of 8 lanes, one accumulator each (independent chains); per lane the rows' terms are
  // added in order r = 0, 1, ... with fused multiply-adds, as the axpy loop below does
  detail::chunk_blocks<8>(D / 8, [&](auto C, int64_t c0) EMBEDFAST_LAMBDA_INLINE {
    detail::combine_block_avx2<decltype(C)::value>(y, accumulate, coef, coef_stride, rows, n, 8 * c0);
  });
  detail::combine_tail_avx2(y, accumulate, coef, coef_stride, rows, n, D / 8 * 8, D);
#else
  if (!accumulate)
    for (int64_t k = 0; k < D; ++k) y[k] = 0.0f;
  for (int64_t r = 0; r < n; ++r) axpy_f32(coef[r * coef_stride], rows[r], y, D);
#endif
}

// One pass over rows[0..n) that both reads and trains them against a fixed input x (a word2vec input row and its
// targets): y = (accumulate ? y : 0) + sum_r coef[r] * rows[r] with the rows as they were on entry, and rows[r] +=
// coef[r] * x. Per lane the same operations in the same order as combine_rows_f32(y, accumulate, coef, 1, rows, n,
// D) followed by axpy_f32(coef[r], x, rows[r], D) for each r, so the results are equal; x and y must not be one of
// the rows, and the rows must be distinct.
EMBEDFAST_HOT_INLINE void exchange_rows_f32(float* __restrict y, bool accumulate, const float* coef,
                                            const float* __restrict x, float* const* rows, int64_t n, int64_t D) {
#if defined(__AVX512F__)
  detail::chunk_blocks<8>((D + 15) / 16, [&](auto C, int64_t c0) EMBEDFAST_LAMBDA_INLINE {
    detail::exchange_block_avx512<decltype(C)::value>(y, accumulate, coef, x, rows, n, 16 * c0, D);
  });
#elif defined(__AVX2__) && defined(__FMA__)
  // blocks of up to 6 chunks of 8 lanes (12 of AVX2's 16 registers hold y's and x's), the last D % 8 lanes in
  // exchange_tail_avx2
  detail::chunk_blocks<6>(D / 8, [&](auto C, int64_t c0) EMBEDFAST_LAMBDA_INLINE {
    detail::exchange_block_avx2<decltype(C)::value>(y, accumulate, coef, x, rows, n, 8 * c0);
  });
  detail::exchange_tail_avx2(y, accumulate, coef, x, rows, n, D / 8 * 8, D);
#else
  combine_rows_f32(y, accumulate, coef, 1, rows, n, D);
  for (int64_t r = 0; r < n; ++r) axpy_f32(coef[r], x, rows[r], D);
#endif
}

// The floats of exchange_dot_rows_f32's scratch per row.
constexpr int64_t kDotPartialLanes = 16;

// exchange_rows_f32(y, accumulate, coef, x, rows, n, D) and, in the same pass, out[r] = dot(xn, rows[r]) with the
// rows as updated: the scores of the next fixed input against the same rows without a second pass over them
// (skip-gram HS: the window's next context against the center's Huffman path). y and the rows equal
// exchange_rows_f32's; out is the dot with its additions in another order than dot_f32's (per lane chunk of the
// pass, then across lanes), so it differs from multi_dot_f32 by float rounding. xn must not be one of the rows;
// scratch holds kDotPartialLanes * n floats.
EMBEDFAST_HOT_INLINE void exchange_dot_rows_f32(float* __restrict y, bool accumulate, const float* coef,
                                                const float* __restrict x, float* const* rows, int64_t n, int64_t D,
                                                const float* __restrict xn, float* __restrict out,
                                                float* __restrict scratch) {
#if defined(__AVX512F__)
  bool first = true;
  detail::chunk_blocks<8>((D + 15) / 16, [&](auto C, int64_t c0) EMBEDFAST_LAMBDA_INLINE {
    detail::exchange_block_avx512<decltype(C)::value, true>(y, accumulate, coef, x, rows, n, 16 * c0, D, xn, scratch,
                                                            first);
    first = false;
  });
  detail::chunk_blocks<8>(n, [&](auto M, int64_t r0) EMBEDFAST_LAMBDA_INLINE {
    __m512 v[8];
    for (int r = 0; r < decltype(M)::value; ++r) v[r] = _mm512_loadu_ps(scratch + 16 * (r0 + r));
    hsum512x8(v, decltype(M)::value, out + r0);
  });
#elif defined(__AVX2__) && defined(__FMA__)
  // exchange_rows_f32's blocks, then its tail; each row's 8-lane partial sum finished as dot_f32's, with the tail
  // lanes of the updated row
  bool first = true;
  detail::chunk_blocks<6>(D / 8, [&](auto C, int64_t c0) EMBEDFAST_LAMBDA_INLINE {
    detail::exchange_block_avx2<decltype(C)::value, true>(y, accumulate, coef, x, rows, n, 8 * c0, xn, scratch, first);
    first = false;
  });
  const int64_t k = D / 8 * 8;
  detail::exchange_tail_avx2(y, accumulate, coef, x, rows, n, k, D);
  for (int64_t r = 0; r < n; ++r)
    out[r] = detail::finish_dot_avx2(first ? _mm256_setzero_ps() : _mm256_loadu_ps(scratch + 8 * r), xn, rows[r], k, D);
#else
  (void)scratch;
  exchange_rows_f32(y, accumulate, coef, x, rows, n, D);
  multi_dot_f32(xn, rows, n, D, out);
#endif
}

}  // namespace embedfast
