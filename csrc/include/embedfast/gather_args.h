// The argument checks of gather_bags / gather_bags_backward that do not read index values (dtypes, shapes,
// devices), shared by the CPU kernel (csrc/cpu/fusion.cpp) and the CUDA kernel (csrc/cuda/fusion.cu). The value
// checks (bag offsets, ids, entries) are each backend's own: the CPU reads the values on the host, the CUDA
// kernel on the device.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace embedfast {

struct GatherShape {
  int64_t K = 0, D = 0, B = 0, E = 0, N = 0;
  at::ScalarType dtype = at::kFloat, wdtype = at::kFloat;
  std::vector<at::Tensor> tables;  // row-contiguous (stride(1) == 1)
  std::vector<int64_t> rows;       // V_k
};

// Every tensor argument must be on `device` (check_device in common.h); tables float32/float16/bfloat16/float64
// of one dtype and one D, weights float32 (float64 for float64 tables), index tensors int64 1-D, lengths
// consistent. bag_offsets must have >= 1 element.
GatherShape check_gather_structure(const char* op, at::TensorList tables, const at::Tensor& source_weight,
                                   const at::Tensor& bag_offsets, const at::Tensor& entry_source,
                                   const at::Tensor& entry_row, const at::Tensor& entry_weight,
                                   const at::Tensor& ids, const at::Device& device);

// IndexError for the bad entry e (source k, row r) that a kernel read: a source outside [0, K), else a row outside
// its table.
[[noreturn]] void raise_bad_entry(const char* op, int64_t e, int64_t k, int64_t r, const GatherShape& c);

// The value checks of bag_offsets (starts at 0, ends at E, nondecreasing) and ids (in [0, B)) from what was found
// (the CPU scans on the host, the CUDA kernel reduces on the device): off0 / offB the first and last offset,
// dec the first b + 1 with bag_offsets[b + 1] < bag_offsets[b] (or -1) with those two values, bad_id the first
// position of an id outside [0, B) (or -1) and its value. Raises the CPU kernel's errors in its order.
void raise_bag_errors(const char* op, const GatherShape& c, int64_t off0, int64_t offB, int64_t dec,
                      int64_t dec_hi, int64_t dec_lo, int64_t bad_id, int64_t bad_id_value);

}  // namespace embedfast
