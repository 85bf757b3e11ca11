// Large op outputs on huge pages: see embedfast/alloc.h.
#include "embedfast/alloc.h"

#include <ATen/Context.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/TensorImpl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace embedfast {
namespace {

constexpr size_t kHuge = size_t(2) << 20;  // 2 MiB
constexpr int64_t kDefaultThreshold = int64_t(2) << 20;

struct Mapping {
  void* base;
  size_t len;
};

void free_mapping(void* ctx) {
  auto* m = static_cast<Mapping*>(ctx);
  munmap(m->base, m->len);
  delete m;
}

// A 2 MiB-aligned anonymous mapping of at least `nbytes` bytes advised MADV_HUGEPAGE; nullptr when mmap fails.
Mapping* map_huge(size_t nbytes) {
  const size_t len = (nbytes + kHuge - 1) / kHuge * kHuge;
  // over-map by 2 MiB and trim both ends so the block starts on a 2 MiB boundary
  void* raw = mmap(nullptr, len + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const uintptr_t r = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t a = (r + kHuge - 1) / kHuge * kHuge;
  if (a > r) munmap(raw, a - r);
  const uintptr_t end = r + len + kHuge;
  if (end > a + len) munmap(reinterpret_cast<void*>(a + len), end - (a + len));
  void* base = reinterpret_cast<void*>(a);
  madvise(base, len, MADV_HUGEPAGE);  // advisory: without THP the block is still correct, just 4 KiB pages
  return new Mapping{base, len};
}

at::Tensor wrap(Mapping* m, size_t nbytes, at::IntArrayRef sizes, at::TensorOptions options) {
  c10::DataPtr dp(m->base, m, &free_mapping, c10::Device(c10::DeviceType::CPU));
  // resizable through torch's CPU allocator: a resize_ beyond nbytes copies into a block of that allocator
  c10::Storage storage(c10::Storage::use_byte_size_t(), static_cast<int64_t>(nbytes), std::move(dp),
                       c10::GetCPUAllocator(), /*resizable=*/true);
  auto impl = c10::make_intrusive<c10::TensorImpl>(std::move(storage), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                                   options.dtype());
  impl->set_sizes_contiguous(sizes);
  return at::Tensor(std::move(impl));
}

// nullptr when the block should come from at::empty / at::zeros.
Mapping* maybe_map(at::IntArrayRef sizes, const at::TensorOptions& options, size_t& nbytes) {
  TORCH_CHECK(options.device().is_cpu(), "embedfast: large CPU allocation asked for device ", options.device());
  int64_t numel = 1;
  for (int64_t s : sizes) {
    TORCH_CHECK(s >= 0, "embedfast: negative size in ", sizes);
    numel *= s;
  }
  nbytes = static_cast<size_t>(numel) * options.dtype().itemsize();
  const int64_t th = large_alloc_threshold();
  if (th < 0 || nbytes == 0 || static_cast<int64_t>(nbytes) < th) return nullptr;
  return map_huge(nbytes);
}

}  // namespace

int64_t large_alloc_threshold() {
  const char* env = std::getenv("EMBEDFAST_LARGE_ALLOC_MIN_BYTES");
  if (env == nullptr || *env == '\0') return kDefaultThreshold;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(env, &end, 10);
  TORCH_CHECK_VALUE(errno == 0 && end != env && *end == '\0',
                    "embedfast: EMBEDFAST_LARGE_ALLOC_MIN_BYTES must be an integer (bytes), got '", env, "'");
  return v < 0 ? -1 : static_cast<int64_t>(v);
}

at::Tensor empty_large(at::IntArrayRef sizes, at::TensorOptions options) {
  size_t nbytes = 0;
  Mapping* m = maybe_map(sizes, options, nbytes);
  if (m == nullptr) return at::empty(sizes, options);
  at::Tensor t = wrap(m, nbytes, sizes, options);
  if (at::globalContext().deterministicAlgorithms() && at::globalContext().deterministicFillUninitializedMemory()) {
    if (at::isFloatingType(t.scalar_type()) || at::isComplexType(t.scalar_type()))
      t.fill_(std::numeric_limits<double>::quiet_NaN());
    else if (t.scalar_type() == at::kLong)
      t.fill_(std::numeric_limits<int64_t>::max());
    else if (t.scalar_type() == at::kInt)
      t.fill_(std::numeric_limits<int32_t>::max());
  }
  return t;
}

at::Tensor zeros_large(at::IntArrayRef sizes, at::TensorOptions options) {
  size_t nbytes = 0;
  Mapping* m = maybe_map(sizes, options, nbytes);
  if (m == nullptr) return at::zeros(sizes, options);
  return wrap(m, nbytes, sizes, options);
}

}  // namespace embedfast
