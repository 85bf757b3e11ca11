#include "embedfast/common.h"

namespace embedfast {

void check_index_range(const at::Tensor& idx, int64_t lo, int64_t hi, const char* op, const char* name) {
  if (idx.numel() == 0) return;
  auto flat = idx.reshape(-1);
  auto bad = (flat < lo).logical_or_(flat >= hi);
  if (!bad.any().item<bool>()) return;
  const int64_t pos = bad.nonzero().min().item<int64_t>();
  const int64_t val = flat[pos].item<int64_t>();
  TORCH_CHECK_INDEX(false, op, ": argument '", name, "' has value ", val, " at flat position ", pos,
                    ", outside the valid range [", lo, ", ", hi, ")");
}

}  // namespace embedfast
