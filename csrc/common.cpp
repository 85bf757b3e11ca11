#include "embedfast/common.h"

#include <unistd.h>

#include <limits>
#include <string>

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

// Physical memory in bytes (read once; +inf when unknown).
double machine_memory_bytes() {
  static const double mem = [] {
    const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? double(pages) * double(page) : std::numeric_limits<double>::infinity();
  }();
  return mem;
}

// ValueError "<op>: <what> would take <bytes> bytes, more than this machine's memory (<mem> bytes)".
[[noreturn]] void raise_too_large(double bytes, const char* op, const std::string& what) {
  const std::string b = bytes < 9e18 ? std::to_string(static_cast<long long>(bytes)) : std::to_string(bytes);
  TORCH_CHECK_VALUE(false, op, ": ", what, " would take ", b, " bytes, more than this machine's memory (",
                    static_cast<long long>(machine_memory_bytes()), " bytes)");
  __builtin_unreachable();
}

}  // namespace embedfast
