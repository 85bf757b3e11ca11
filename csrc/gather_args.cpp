#include "embedfast/gather_args.h"

#include <string>
#include <utility>

#include "embedfast/common.h"

namespace embedfast {

GatherShape check_gather_structure(const char* op, at::TensorList tables, const at::Tensor& source_weight,
                                   const at::Tensor& bag_offsets, const at::Tensor& entry_source,
                                   const at::Tensor& entry_row, const at::Tensor& entry_weight,
                                   const at::Tensor& ids, const at::Device& device) {
  GatherShape c;
  TORCH_CHECK_VALUE(!tables.empty(), op, ": argument 'tables' must hold at least one table, got none");
  c.K = static_cast<int64_t>(tables.size());
  c.dtype = tables[0].scalar_type();
  TORCH_CHECK_VALUE(c.dtype == at::kFloat || c.dtype == at::kHalf || c.dtype == at::kBFloat16 ||
                        c.dtype == at::kDouble,
                    op, ": argument 'tables[0]' must be float32, float16, bfloat16 or float64, got ", c.dtype);
  for (int64_t k = 0; k < c.K; ++k) {
    const auto& t = tables[k];
    const std::string name = "tables[" + std::to_string(k) + "]";
    check_device(t, device, op, name.c_str());
    TORCH_CHECK_VALUE(t.dim() == 2, op, ": argument 'tables[", k, "]' must be 2-D [V, D], got shape ", t.sizes());
    TORCH_CHECK_VALUE(t.scalar_type() == c.dtype, op, ": all tables must share one dtype: 'tables[", k,
                      "]' is ", t.scalar_type(), " but 'tables[0]' is ", c.dtype);
    TORCH_CHECK_VALUE(t.size(1) == tables[0].size(1), op, ": all tables must share one dimension D: 'tables[", k,
                      "]' has shape ", t.sizes(), " but 'tables[0]' has shape ", tables[0].sizes());
    c.tables.push_back(t.stride(1) == 1 && t.stride(0) >= t.size(1) ? t : t.contiguous());
    c.rows.push_back(t.size(0));
  }
  c.D = tables[0].size(1);
  c.wdtype = c.dtype == at::kDouble ? at::kDouble : at::kFloat;
  check_device(source_weight, device, op, "source_weight");
  check_dtype(source_weight, c.wdtype, op, "source_weight");
  check_dim(source_weight, 1, op, "source_weight");
  TORCH_CHECK_VALUE(source_weight.numel() == c.K, op, ": argument 'source_weight' must have one weight per table (",
                    c.K, "), got shape ", source_weight.sizes());
  for (auto [t, name] : {std::pair{&bag_offsets, "bag_offsets"}, {&entry_source, "entry_source"},
                         {&entry_row, "entry_row"}, {&ids, "ids"}}) {
    check_device(*t, device, op, name);
    check_dtype(*t, at::kLong, op, name);
    check_dim(*t, 1, op, name);
  }
  check_device(entry_weight, device, op, "entry_weight");
  check_dtype(entry_weight, c.wdtype, op, "entry_weight");
  check_dim(entry_weight, 1, op, "entry_weight");
  TORCH_CHECK_VALUE(bag_offsets.numel() >= 1, op, ": argument 'bag_offsets' must have B+1 >= 1 elements, got 0");
  c.B = bag_offsets.numel() - 1;
  c.E = entry_source.numel();
  TORCH_CHECK_VALUE(entry_row.numel() == c.E && entry_weight.numel() == c.E, op,
                    ": arguments 'entry_source' ", entry_source.sizes(), ", 'entry_row' ", entry_row.sizes(),
                    " and 'entry_weight' ", entry_weight.sizes(), " must have the same length");
  c.N = ids.numel();
  return c;
}

[[noreturn]] void raise_bad_entry(const char* op, int64_t e, int64_t k, int64_t r, const GatherShape& c) {
  TORCH_CHECK_INDEX(k >= 0 && k < c.K, op, ": argument 'entry_source' has value ", k, " at position ", e,
                    ", outside the valid range of sources [0, ", c.K, ")");
  TORCH_CHECK_INDEX(false, op, ": argument 'entry_row' has value ", r, " at position ", e,
                    ", outside the rows of its source ", k, " (tables[", k, "] has ", c.rows[k], " rows)");
  __builtin_unreachable();
}

void raise_bag_errors(const char* op, const GatherShape& c, int64_t off0, int64_t offB, int64_t dec,
                      int64_t dec_hi, int64_t dec_lo, int64_t bad_id, int64_t bad_id_value) {
  TORCH_CHECK_VALUE(off0 == 0, op, ": argument 'bag_offsets' must start at 0, got ", off0);
  TORCH_CHECK_VALUE(offB == c.E, op, ": argument 'bag_offsets' must end at the number of entries (", c.E,
                    "), got ", offB);
  TORCH_CHECK_VALUE(dec < 0, op, ": argument 'bag_offsets' must be nondecreasing, but bag_offsets[", dec,
                    "] = ", dec_hi, " < bag_offsets[", dec - 1, "] = ", dec_lo);
  TORCH_CHECK_INDEX(bad_id < 0, op, ": argument 'ids' has value ", bad_id_value, " at flat position ", bad_id,
                    ", outside the valid range [0, ", c.B, ") of bags");
}

}  // namespace embedfast
