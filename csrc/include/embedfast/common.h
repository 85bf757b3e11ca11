// Shared helpers for every op family: argument checks that turn bad input into clear Python errors.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#include <string>

namespace embedfast {

// "arg `name` must be <dtype>, got <dtype>" as a TypeError-free ValueError-style message.
inline void check_dtype(const at::Tensor& t, at::ScalarType want, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.scalar_type() == want, op, ": argument '", name, "' must have dtype ", want, ", got ",
                    t.scalar_type());
}

inline void check_dim(const at::Tensor& t, int64_t ndim, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.dim() == ndim, op, ": argument '", name, "' must be ", ndim, "-D, got shape ", t.sizes());
}

inline void check_same_device(const at::Tensor& a, const at::Tensor& b, const char* op, const char* na,
                              const char* nb) {
  TORCH_CHECK_VALUE(a.device() == b.device(), op, ": arguments '", na, "' (", a.device(), ") and '", nb, "' (",
                    b.device(), ") must be on the same device");
}

inline void check_cpu(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK_VALUE(t.device().is_cpu(), op, ": argument '", name, "' must be a CPU tensor here, got ", t.device());
}

// Range check of an index tensor against [lo, hi); reports the first offending value and its position.
// Works on any integer dtype by going through int64.
void check_index_range(const at::Tensor& idx, int64_t lo, int64_t hi, const char* op, const char* name);

}  // namespace embedfast
