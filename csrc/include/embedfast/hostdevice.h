// EMBEDFAST_HD: a helper that host and device code share (csrc/cpu/*.cpp and csrc/cuda/*.cu compile the same
// definition; under nvcc it is __host__ __device__, elsewhere a plain inline function).
#pragma once

#if defined(__CUDACC__)
#define EMBEDFAST_HD __host__ __device__ __forceinline__
#else
#define EMBEDFAST_HD inline
#endif
