// Helpers shared by the CUDA kernels (csrc/cuda/*.cu): warp reductions, the capture test that decides whether an
// op may read values back to the host, and the first-true-position reduction of the device-side value checks.
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <cstdint>

namespace embedfast {

constexpr unsigned kFullMask = 0xffffffffu;

// Sum over the 32 lanes of a warp (butterfly: every lane gets the total, in the same order on every lane).
template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

__device__ __forceinline__ unsigned lanes_below(int lane) { return (1u << lane) - 1u; }

// True while the current stream is being captured into a CUDA graph: the ops then run no value check that reads
// back to the host (the kernels stay in bounds on bad input: bad ids or entries contribute nothing).
inline bool stream_capturing() {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  C10_CUDA_CHECK(cudaStreamIsCapturing(at::cuda::getCurrentCUDAStream(), &status));
  return status != cudaStreamCaptureStatusNone;
}

// Position of the first true element of the 1-D bool tensor `mask` (on any device), or -1 (one read-back).
inline int64_t first_true(const at::Tensor& mask) {
  if (mask.numel() == 0) return -1;
  const auto pos = at::arange(mask.numel(), mask.options().dtype(at::kLong));
  const int64_t none = mask.numel();
  const int64_t p = at::where(mask, pos, at::full({}, none, pos.options())).min().item<int64_t>();
  return p == none ? -1 : p;
}

// Launch configuration: blocks of `threads` threads covering n items (at least one block).
inline unsigned blocks_for(int64_t n, int threads) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : b);
}

}  // namespace embedfast
