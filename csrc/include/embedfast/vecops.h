// Small dense vector helpers (length = embedding dim) for CPU kernels: dot product and axpy, written with
// AVX-512 / AVX2+FMA intrinsics when the compiler targets them (-march=native) and a scalar loop otherwise;
// dot / axpy for every table dtype (float64, and float16 / bfloat16 rows accumulated in float32); prefetch_row.
// The one place for them: a kernel never has its own copy.
#pragma once

#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace embedfast {

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
  acc0 = _mm256_add_ps(acc0, acc1);
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc0), _mm256_extractf128_ps(acc0, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  float r = _mm_cvtss_f32(s);
  for (; i < n; ++i) r += a[i] * b[i];
  return r;
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
  for (; i < n; ++i) y[i] += alpha * x[i];
#else
  for (; i < n; ++i) y[i] += alpha * x[i];
#endif
}

// out[r] = dot(x, rows[r]) for r < n: x is loaded once per 16 lanes for up to 8 rows at a time.
inline void multi_dot_f32(const float* __restrict x, const float* const* rows, int64_t n, int64_t D,
                          float* __restrict out) {
#if defined(__AVX512F__)
  for (int64_t r0 = 0; r0 < n; r0 += 8) {
    const int64_t m = std::min<int64_t>(8, n - r0);
    __m512 acc[8];
    for (int64_t r = 0; r < m; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t k = 0; k < D; k += 16) {
      const __mmask16 mask = (D - k >= 16) ? __mmask16(0xFFFF) : __mmask16((1u << (D - k)) - 1u);
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + k);
      for (int64_t r = 0; r < m; ++r) acc[r] = _mm512_fmadd_ps(xv, _mm512_maskz_loadu_ps(mask, rows[r0 + r] + k), acc[r]);
    }
    for (int64_t r = 0; r < m; ++r) out[r0 + r] = hsum512(acc[r]);
  }
#else
  for (int64_t r = 0; r < n; ++r) out[r] = dot_f32(x, rows[r], D);
#endif
}

// y = (accumulate ? y : 0) + sum_r coef[r * coef_stride] * rows[r]: y is written once per 16 lanes.
inline void combine_rows_f32(float* __restrict y, bool accumulate, const float* coef, int64_t coef_stride,
                             const float* const* rows, int64_t n, int64_t D) {
#if defined(__AVX512F__)
  for (int64_t k = 0; k < D; k += 16) {
    const __mmask16 mask = (D - k >= 16) ? __mmask16(0xFFFF) : __mmask16((1u << (D - k)) - 1u);
    __m512 acc = accumulate ? _mm512_maskz_loadu_ps(mask, y + k) : _mm512_setzero_ps();
    for (int64_t r = 0; r < n; ++r)
      acc = _mm512_fmadd_ps(_mm512_set1_ps(coef[r * coef_stride]), _mm512_maskz_loadu_ps(mask, rows[r] + k), acc);
    _mm512_mask_storeu_ps(y + k, mask, acc);
  }
#else
  if (!accumulate)
    for (int64_t k = 0; k < D; ++k) y[k] = 0.0f;
  for (int64_t r = 0; r < n; ++r) axpy_f32(coef[r * coef_stride], rows[r], y, D);
#endif
}

// Prefetch the n elements at p into the cache, one 64-byte line at a time; kWrite: they are about to be written.
template <bool kWrite = false, typename T>
inline void prefetch_row(const T* p, int64_t n) {
  static_assert(64 % sizeof(T) == 0, "prefetch_row: element size must divide a cache line");
  constexpr int64_t kStep = 64 / static_cast<int64_t>(sizeof(T));
  for (int64_t k = 0; k < n; k += kStep) __builtin_prefetch(p + k, kWrite ? 1 : 0, 3);
}

// acc[0:D] += c * x[0:D], accumulating in A (float32 for float32 / float16 / bfloat16 rows x, float64 for
// float64): float32 by axpy_f32, float64 by a plain loop (vectorised by the compiler: no reduction), the
// reduced-precision types converted to float32 one vector at a time.
template <typename T, typename A>
inline void axpy(A c, const T* __restrict x, A* __restrict acc, int64_t D) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<A, float>) {
    axpy_f32(c, x, acc, D);
  } else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    for (int64_t j = 0; j < D; ++j) acc[j] += c * x[j];
  } else {
    using FVec = at::vec::Vectorized<float>;
    using TVec = at::vec::Vectorized<T>;
    const FVec vc(c);
    int64_t j = 0;
    for (; j + TVec::size() <= D; j += TVec::size()) {
      auto [lo, hi] = at::vec::convert_to_float<T>(TVec::loadu(x + j));
      at::vec::fmadd(lo, vc, FVec::loadu(acc + j)).store(acc + j);
      at::vec::fmadd(hi, vc, FVec::loadu(acc + j + FVec::size())).store(acc + j + FVec::size());
    }
    for (; j < D; ++j) acc[j] += c * static_cast<float>(x[j]);
  }
}

// <g, x> in A (see axpy): float32 by dot_f32; float64 with explicit vectors and 4 accumulators (a plain loop is
// a serial chain: no reassociation without -ffast-math); reduced-precision rows converted to float32.
template <typename T, typename A>
inline A dot(const A* __restrict g, const T* __restrict x, int64_t D) {
  if constexpr (std::is_same_v<T, float> && std::is_same_v<A, float>) {
    return dot_f32(g, x, D);
  } else if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    using Vec = at::vec::Vectorized<T>;
    constexpr int64_t W = Vec::size();
    Vec s0(T(0)), s1(T(0)), s2(T(0)), s3(T(0));
    int64_t j = 0;
    for (; j + 4 * W <= D; j += 4 * W) {
      s0 = at::vec::fmadd(Vec::loadu(g + j), Vec::loadu(x + j), s0);
      s1 = at::vec::fmadd(Vec::loadu(g + j + W), Vec::loadu(x + j + W), s1);
      s2 = at::vec::fmadd(Vec::loadu(g + j + 2 * W), Vec::loadu(x + j + 2 * W), s2);
      s3 = at::vec::fmadd(Vec::loadu(g + j + 3 * W), Vec::loadu(x + j + 3 * W), s3);
    }
    for (; j + W <= D; j += W) s0 = at::vec::fmadd(Vec::loadu(g + j), Vec::loadu(x + j), s0);
    T s = at::vec::vec_reduce_all<T>([](Vec& a, Vec& b) { return a + b; }, (s0 + s1) + (s2 + s3));
    for (; j < D; ++j) s += g[j] * x[j];
    return s;
  } else {
    using FVec = at::vec::Vectorized<float>;
    using TVec = at::vec::Vectorized<T>;
    FVec s0(0.f), s1(0.f);
    int64_t j = 0;
    for (; j + TVec::size() <= D; j += TVec::size()) {
      auto [lo, hi] = at::vec::convert_to_float<T>(TVec::loadu(x + j));
      s0 = at::vec::fmadd(lo, FVec::loadu(g + j), s0);
      s1 = at::vec::fmadd(hi, FVec::loadu(g + j + FVec::size()), s1);
    }
    float s = at::vec::vec_reduce_all<float>([](FVec& a, FVec& b) { return a + b; }, s0 + s1);
    for (; j < D; ++j) s += g[j] * static_cast<float>(x[j]);
    return s;
  }
}

}  // namespace embedfast
