// embedfast::gather_bags on CUDA, forward and backward, with the schemas of csrc/ops.cpp and the semantics of the
// CPU kernel (csrc/cpu/fusion.cpp), launched on the current stream. fp16/bf16 tables accumulate in fp32 (fp64
// tables in fp64); weights are float32 (float64 for float64 tables).
//
// Forward: one warp per output row. The lanes read the bag's entries (source, row, weight) 32 at a time, the warp
// sums the weights (renormalize) and then walks the entries in order, each lane accumulating its columns of every
// table row with 16-byte loads (4 floats, 8 halves, 2 doubles; element loads when a table's rows are not 16-byte
// aligned or D is not a multiple of the vector), and stores its columns once.
// Backward (deterministic, no atomics): every gradient depends on an id only through grad[n], linearly, so the
// ids are sorted (stable) and one warp per run of equal ids (one bag) sums their gradient rows in order into
// Gsum; then
//   - weight gradients: the same warp takes the dot products of Gsum with its bag's rows; each entry's gradient
//     is written by exactly one warp, the source-weight terms go to a per-run row [K] summed afterwards;
//   - table gradients: the bag entries are sorted by table row (stable), and one warp per run of equal rows adds
//     coefficient x Gsum of its entries in order and writes the row once (hot rows are reduced by one warp, never
//     by atomics).
// Sparse table gradients (sparse_grad=True) are not implemented here: the op says so (use backend="triton").
//
// Checks: the structural checks of the CPU kernel (check_gather_structure), and its value checks on the device:
// bag offsets and ids by reductions, bad entries (only those of bags that are read, as on the CPU) flagged by the
// kernels; all read back once after the kernels, raising the CPU kernel's errors in its order (raise_bag_errors,
// raise_bad_entry). While a CUDA graph is captured nothing is read back, and the kernels stay in bounds: an id
// outside [0, B) gives a zero row, a bag with a bad entry contributes nothing.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

#include "embedfast/common.h"
#include "embedfast/cuda.cuh"
#include "embedfast/gather_args.h"

namespace embedfast {

namespace {

constexpr int kMaxTablesCuda = 64;  // tables per call (kernel parameters)
constexpr int kThreads = 256;       // 8 warps per block
constexpr int kUnroll = 4;          // vectors per lane per pass over the columns

template <typename T>
using acc_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

struct Tables {
  const void* ptr[kMaxTablesCuda];
  int64_t stride[kMaxTablesCuda];
  int64_t rows[kMaxTablesCuda];
  int64_t base[kMaxTablesCuda + 1];  // first global row key of each table
  void* grad[kMaxTablesCuda];        // table gradient accumulators (A) or nullptr
};

struct Bags {
  const int64_t* off;
  const int64_t* src;
  const int64_t* row;
  int64_t B, E, K, D;
};

template <typename T, int VEC>
struct alignas(sizeof(T) * VEC) Vec {
  T v[VEC];
};

__device__ __forceinline__ void note_bad(unsigned long long* flag, int64_t e) {
  atomicMin(flag, static_cast<unsigned long long>(e));
}

// Entry e's validity, its source weight x entry weight, for a bag's entries read by the lanes of a warp.
template <typename A>
__device__ __forceinline__ bool entry_coef(const Tables& t, const Bags& g, const A* sw, const A* ew, int64_t e,
                                           int64_t& k, int64_t& r, A& s) {
  k = g.src[e];
  r = g.row[e];
  if (k < 0 || k >= g.K || r < 0 || r >= t.rows[k]) return false;
  s = sw[k] * ew[e];
  return true;
}

// The bag's weight sum (or 1) over the warp; false when the bag contributes nothing (empty, a bad entry -- then
// flagged --, or renormalised with a zero sum). inv: 1 / sum (renormalize) or 1.
template <typename A>
__device__ bool bag_scale(const Tables& t, const Bags& g, const A* sw, const A* ew, int64_t e0, int64_t e1,
                          bool renormalize, unsigned long long* bad, int lane, A& inv) {
  A S = 0;
  bool ok = true;
  for (int64_t e = e0 + lane; e < e1; e += 32) {
    int64_t k, r;
    A s;
    if (entry_coef(t, g, sw, ew, e, k, r, s)) {
      S += s;
    } else {
      ok = false;
      note_bad(bad, e);
    }
  }
  ok = __all_sync(kFullMask, ok);
  S = warp_sum(S);
  if (!ok || e0 == e1 || (renormalize && S == A(0))) return false;
  inv = renormalize ? A(1) / S : A(1);
  return true;
}

template <typename T, int VEC>
__global__ void gather_fwd_kernel(T* __restrict__ out, Tables t, Bags g, const acc_t<T>* __restrict__ sw,
                                  const acc_t<T>* __restrict__ ew, const int64_t* __restrict__ ids, int64_t N,
                                  bool renormalize, unsigned long long* bad) {
  using A = acc_t<T>;
  const int lane = threadIdx.x & 31;
  const int64_t n = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (n >= N) return;
  const int64_t D = g.D;
  T* o = out + n * D;
  const int64_t b = ids[n];
  A inv = 0;
  bool live = b >= 0 && b < g.B;
  int64_t e0 = 0, e1 = 0;
  if (live) {
    e0 = g.off[b];
    e1 = g.off[b + 1];
    live = e0 >= 0 && e1 <= g.E && e0 <= e1;  // bad offsets only reach here unchecked (capture)
  }
  if (live) live = bag_scale<A>(t, g, sw, ew, e0, e1, renormalize, bad, lane, inv);
  constexpr int64_t kChunk = 32 * VEC * kUnroll;
  for (int64_t c0 = 0; c0 < D; c0 += kChunk) {
    A acc[kUnroll][VEC];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
#pragma unroll
      for (int v = 0; v < VEC; ++v) acc[u][v] = 0;
    if (live) {
      for (int64_t eb = e0; eb < e1; eb += 32) {
        int64_t mk = 0, mr = 0;
        A mc = 0;
        if (eb + lane < e1) {
          entry_coef(t, g, sw, ew, eb + lane, mk, mr, mc);
          mc *= inv;
        }
        const int cnt = int(e1 - eb < 32 ? e1 - eb : 32);
        for (int q = 0; q < cnt; ++q) {
          const int64_t k = __shfl_sync(kFullMask, mk, q), r = __shfl_sync(kFullMask, mr, q);
          const A cf = __shfl_sync(kFullMask, mc, q);
          const T* rp = static_cast<const T*>(t.ptr[k]) + r * t.stride[k];
#pragma unroll
          for (int u = 0; u < kUnroll; ++u) {
            const int64_t col = c0 + (int64_t(u) * 32 + lane) * VEC;
            if (col < D) {
              const Vec<T, VEC> x = *reinterpret_cast<const Vec<T, VEC>*>(rp + col);
#pragma unroll
              for (int v = 0; v < VEC; ++v) acc[u][v] += cf * static_cast<A>(x.v[v]);
            }
          }
        }
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t col = c0 + (int64_t(u) * 32 + lane) * VEC;
      if (col < D) {
        Vec<T, VEC> y;
#pragma unroll
        for (int v = 0; v < VEC; ++v) y.v[v] = static_cast<T>(acc[u][v]);
        *reinterpret_cast<Vec<T, VEC>*>(o + col) = y;
      }
    }
  }
}

// ---- backward --------------------------------------------------------------------------------------------

// One warp per run of equal ids in `sid` (sorted ids; perm: their positions): gsum[i0] = sum of grad[perm[i]]
// over the run i0..i1 in order; grp_inv[i0] = the bag's 1 / weight sum (or 1), grp_ok[i0] = it contributes,
// grp_of_bag[b] = i0. With weights_grad: dot products of gsum with the bag's rows -> entry-weight gradients
// (written once per entry) and the source-weight terms of the run (gsw_part[i0, k]); dtmp holds the dots.
template <typename T>
__global__ void gather_group_kernel(acc_t<T>* __restrict__ gsum, acc_t<T>* __restrict__ grp_inv,
                                    uint8_t* __restrict__ grp_ok, int64_t* __restrict__ grp_of_bag,
                                    acc_t<T>* __restrict__ gew, acc_t<T>* __restrict__ gsw_part,
                                    acc_t<T>* __restrict__ dtmp, const acc_t<T>* __restrict__ grad, Tables t, Bags g,
                                    const acc_t<T>* __restrict__ sw, const acc_t<T>* __restrict__ ew,
                                    const int64_t* __restrict__ sid, const int64_t* __restrict__ perm, int64_t N,
                                    bool renormalize, bool weights_grad, bool want_gew,
                                    unsigned long long* bad) {
  using A = acc_t<T>;
  const int lane = threadIdx.x & 31;
  const int64_t i0 = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (i0 >= N || (i0 > 0 && sid[i0 - 1] == sid[i0])) return;
  const int64_t b = sid[i0], D = g.D;
  int64_t i1 = i0 + 1;
  while (i1 < N && sid[i1] == b) ++i1;
  bool live = b >= 0 && b < g.B;
  int64_t e0 = 0, e1 = 0;
  if (live) {
    e0 = g.off[b];
    e1 = g.off[b + 1];
    live = e0 >= 0 && e1 <= g.E && e0 <= e1;
  }
  A inv = 0;
  if (live) live = bag_scale<A>(t, g, sw, ew, e0, e1, renormalize, bad, lane, inv);
  if (lane == 0) {
    grp_inv[i0] = live ? inv : A(0);
    grp_ok[i0] = live ? 1 : 0;
    if (b >= 0 && b < g.B) grp_of_bag[b] = i0;
  }
  if (!live) return;
  A* gs = gsum + i0 * D;
  for (int64_t col = lane; col < D; col += 32) {
    A acc = 0;
    for (int64_t i = i0; i < i1; ++i) acc += grad[perm[i] * D + col];
    gs[col] = acc;
  }
  if (!weights_grad) return;
  __syncwarp();
  A tsum = 0;
  for (int64_t e = e0; e < e1; ++e) {
    const int64_t k = g.src[e], r = g.row[e];
    const T* rp = static_cast<const T*>(t.ptr[k]) + r * t.stride[k];
    A acc = 0;
    for (int64_t col = lane; col < D; col += 32) acc += gs[col] * static_cast<A>(rp[col]);
    const A d = warp_sum(acc);
    if (lane == 0) dtmp[e] = d;
    tsum += sw[k] * ew[e] * inv * d;
  }
  __syncwarp();
  if (lane != 0) return;
  A* part = gsw_part + i0 * g.K;
  for (int64_t e = e0; e < e1; ++e) {
    const int64_t k = g.src[e];
    const A ds = renormalize ? (dtmp[e] - tsum) * inv : dtmp[e];
    if (want_gew) gew[e] = ds * sw[k];
    part[k] += ds * ew[e];
  }
}

// Global row key of every entry (base[k] + row), -1 for a bad entry.
__global__ void entry_key_kernel(int64_t* __restrict__ key, Tables t, Bags g) {
  const int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= g.E) return;
  const int64_t k = g.src[e], r = g.row[e];
  key[e] = (k >= 0 && k < g.K && r >= 0 && r < t.rows[k]) ? t.base[k] + r : -1;
}

// One warp per run of equal keys in `skey` (sorted entry keys; eperm: the entries): the table-gradient row
// base[k] + r = sum over the run's entries e, in order, of sw[k] ew[e] inv(bag_e) gsum[group(bag_e)].
template <typename A>
__global__ void table_grad_kernel(Tables t, Bags g, const A* __restrict__ sw, const A* __restrict__ ew,
                                  const int64_t* __restrict__ skey, const int64_t* __restrict__ eperm,
                                  const int64_t* __restrict__ bag_of_entry, const int64_t* __restrict__ grp_of_bag,
                                  const A* __restrict__ grp_inv, const uint8_t* __restrict__ grp_ok,
                                  const A* __restrict__ gsum) {
  const int lane = threadIdx.x & 31;
  const int64_t i0 = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (i0 >= g.E || (i0 > 0 && skey[i0 - 1] == skey[i0])) return;
  const int64_t key = skey[i0];
  if (key < 0) return;
  const int64_t e_first = eperm[i0], k = g.src[e_first], r = g.row[e_first];
  A* dst = static_cast<A*>(t.grad[k]);
  if (dst == nullptr) return;
  int64_t i1 = i0 + 1;
  while (i1 < g.E && skey[i1] == key) ++i1;
  const int64_t D = g.D;
  for (int64_t c0 = 0; c0 < D; c0 += 32 * kUnroll) {
    A acc[kUnroll] = {};
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t e = eperm[i], grp = grp_of_bag[bag_of_entry[e]];
      if (grp < 0 || !grp_ok[grp]) continue;
      const A cf = sw[k] * ew[e] * grp_inv[grp];
      const A* gs = gsum + grp * D;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t col = c0 + u * 32 + lane;
        if (col < D) acc[u] += cf * gs[col];
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t col = c0 + u * 32 + lane;
      if (col < D) dst[r * D + col] = acc[u];
    }
  }
}

// ---- host side ----------------------------------------------------------------------------------------------

struct Prepared {
  GatherShape c;
  Tables t{};
  Bags g{};
  at::Tensor off, src, row, sw, ew, ids;
  int vec = 1;
};

Prepared prepare(const char* op, at::TensorList tables, const at::Tensor& source_weight,
                 const at::Tensor& bag_offsets, const at::Tensor& entry_source, const at::Tensor& entry_row,
                 const at::Tensor& entry_weight, const at::Tensor& ids) {
  TORCH_CHECK_VALUE(!tables.empty(), op, ": argument 'tables' must hold at least one table, got none");
  TORCH_CHECK_VALUE(tables[0].is_cuda(), op, ": argument 'tables[0]' must be a CUDA tensor here, got ",
                    tables[0].device());
  Prepared p;
  p.c = check_gather_structure(op, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids,
                               tables[0].device());
  TORCH_CHECK_VALUE(p.c.K <= kMaxTablesCuda, op, ": the CUDA kernel takes at most ", kMaxTablesCuda,
                    " tables, got ", p.c.K);
  p.off = bag_offsets.contiguous();
  p.src = entry_source.contiguous();
  p.row = entry_row.contiguous();
  p.sw = source_weight.contiguous();
  p.ew = entry_weight.contiguous();
  p.ids = ids.contiguous();
  const int64_t es = int64_t(c10::elementSize(p.c.dtype));
  bool aligned = (p.c.D * es) % 16 == 0;
  p.t.base[0] = 0;
  for (int64_t k = 0; k < p.c.K; ++k) {
    const auto& tk = p.c.tables[k];
    p.t.ptr[k] = tk.data_ptr();
    p.t.stride[k] = tk.stride(0);
    p.t.rows[k] = tk.size(0);
    p.t.base[k + 1] = p.t.base[k] + tk.size(0);
    p.t.grad[k] = nullptr;
    aligned = aligned && reinterpret_cast<uintptr_t>(tk.data_ptr()) % 16 == 0 && (tk.stride(0) * es) % 16 == 0;
  }
  p.vec = aligned ? int(16 / es) : 1;
  p.g = Bags{p.off.data_ptr<int64_t>(), p.src.data_ptr<int64_t>(), p.row.data_ptr<int64_t>(), p.c.B, p.c.E, p.c.K,
             p.c.D};
  return p;
}

// The value checks of the CPU kernel, from device reductions and the kernels' bad-entry flag, read back once.
void check_values(const char* op, const Prepared& p, const at::Tensor& bad) {
  if (stream_capturing()) return;
  const auto& off = p.off;
  const int64_t B = p.c.B;
  const auto lopt = off.options();
  const auto dec_mask = B > 0 ? off.slice(0, 1).lt(off.slice(0, 0, B)) : at::zeros({0}, lopt.dtype(at::kBool));
  const auto id_mask = (p.ids < 0).logical_or_(p.ids >= B);
  const auto none = at::full({1}, int64_t(-1), lopt);
  auto first = [&](const at::Tensor& m) {  // first true position (on the device), -1 if none
    if (m.numel() == 0) return none;
    const auto pos = at::arange(m.numel(), lopt);
    const auto big = at::full({}, std::numeric_limits<int64_t>::max(), lopt);
    const auto v = at::where(m, pos, big).min().reshape({1});
    return at::where(v == std::numeric_limits<int64_t>::max(), none, v);
  };
  const auto h = at::cat({off.slice(0, 0, 1), off.slice(0, B, B + 1), first(dec_mask), first(id_mask),
                          bad.to(at::kLong).reshape({1})}).cpu();
  const int64_t* v = h.data_ptr<int64_t>();
  const int64_t dec = v[2] >= 0 ? v[2] + 1 : -1, bid = v[3];
  if (v[0] != 0 || v[1] != p.c.E || dec >= 0 || bid >= 0)
    raise_bag_errors(op, p.c, v[0], v[1], dec, dec >= 0 ? off[dec].item<int64_t>() : 0,
                     dec >= 0 ? off[dec - 1].item<int64_t>() : 0, bid, bid >= 0 ? p.ids[bid].item<int64_t>() : 0);
  const int64_t e = v[4];
  if (e != std::numeric_limits<int64_t>::max())
    raise_bad_entry(op, e, p.src[e].item<int64_t>(), p.row[e].item<int64_t>(), p.c);
}

at::Tensor new_flag(const at::Tensor& like) {
  return at::full({1}, std::numeric_limits<int64_t>::max(), like.options().dtype(at::kLong));
}

template <typename T>
void launch_forward(const Prepared& p, at::Tensor& out, bool renormalize, const at::Tensor& bad) {
  using A = acc_t<T>;
  const unsigned blocks = blocks_for(p.c.N * 32, kThreads);
  auto stream = at::cuda::getCurrentCUDAStream();
  auto* flag = reinterpret_cast<unsigned long long*>(bad.data_ptr<int64_t>());
  auto args = [&](auto kernel) {
    kernel<<<blocks, kThreads, 0, stream>>>(out.data_ptr<T>(), p.t, p.g, p.sw.data_ptr<A>(), p.ew.data_ptr<A>(),
                                            p.ids.data_ptr<int64_t>(), p.c.N, renormalize, flag);
  };
  constexpr int kVec = int(16 / sizeof(T));
  if (p.vec == kVec) args(gather_fwd_kernel<T, kVec>);
  else args(gather_fwd_kernel<T, 1>);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

at::Tensor gather_bags_cuda(at::TensorList tables, const at::Tensor& source_weight, const at::Tensor& bag_offsets,
                            const at::Tensor& entry_source, const at::Tensor& entry_row,
                            const at::Tensor& entry_weight, const at::Tensor& ids, bool renormalize,
                            bool sparse_grad) {
  (void)sparse_grad;  // only the backward uses it
  const char* op = "gather_bags";
  Prepared p = prepare(op, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids);
  const c10::cuda::CUDAGuard guard(p.c.tables[0].device());
  auto out = at::empty({p.c.N, p.c.D}, p.c.tables[0].options().memory_format(at::MemoryFormat::Contiguous));
  auto bad = new_flag(out);
  if (p.c.N > 0 && p.c.D > 0) {
    switch (p.c.dtype) {
      case at::kFloat: launch_forward<float>(p, out, renormalize, bad); break;
      case at::kDouble: launch_forward<double>(p, out, renormalize, bad); break;
      case at::kHalf: launch_forward<at::Half>(p, out, renormalize, bad); break;
      default: launch_forward<at::BFloat16>(p, out, renormalize, bad); break;
    }
  }
  check_values(op, p, bad);
  return out;
}

using BackwardResult = std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>>;

template <typename T>
BackwardResult backward_impl(Prepared& p, const at::Tensor& grad, bool renormalize, bool weights_grad,
                             const std::vector<bool>& tg, bool entry_weight_grad, const at::Tensor& bad) {
  using A = acc_t<T>;
  const int64_t K = p.c.K, D = p.c.D, N = p.c.N, E = p.c.E;
  const auto wopt = p.sw.options();
  const auto topt = p.c.tables[0].options();
  const auto lopt = p.off.options();
  bool any_table = false;
  for (bool x : tg) any_table = any_table || x;
  const bool want_gew = weights_grad && entry_weight_grad;
  auto gew = want_gew ? at::zeros({E}, wopt) : at::empty({0}, wopt);
  at::Tensor gsw = weights_grad ? at::zeros({K}, wopt) : at::empty({0}, wopt);
  std::vector<at::Tensor> tgrads(K), trows(K), accs(K);
  for (int64_t k = 0; k < K; ++k) {
    trows[k] = at::empty({0}, lopt);
    if (tg[k]) {
      accs[k] = at::zeros({p.c.rows[k], D}, std::is_same_v<T, A> ? topt : wopt);
      p.t.grad[k] = accs[k].data_ptr();
    } else {
      tgrads[k] = at::empty({0, D}, topt);
    }
  }
  if (N > 0 && D > 0 && (weights_grad || any_table)) {
    auto stream = at::cuda::getCurrentCUDAStream();
    auto* flag = reinterpret_cast<unsigned long long*>(bad.data_ptr<int64_t>());
    const auto g = grad.to(p.c.wdtype).contiguous();
    const auto sorted = at::sort(p.ids, /*stable=*/true, 0, false);
    const auto sid = std::get<0>(sorted).contiguous(), perm = std::get<1>(sorted).contiguous();
    auto gsum = at::empty({N, D}, wopt);
    auto grp_inv = at::zeros({N}, wopt);
    auto grp_ok = at::zeros({N}, lopt.dtype(at::kByte));
    at::Tensor grp_of_bag = at::full({std::max<int64_t>(p.c.B, 1)}, -1, lopt);
    auto gsw_part = weights_grad ? at::zeros({N, K}, wopt) : at::empty({0}, wopt);
    auto dtmp = weights_grad ? at::empty({std::max<int64_t>(E, 1)}, wopt) : at::empty({0}, wopt);
    gather_group_kernel<T><<<blocks_for(N * 32, kThreads), kThreads, 0, stream>>>(
        gsum.data_ptr<A>(), grp_inv.data_ptr<A>(), grp_ok.data_ptr<uint8_t>(), grp_of_bag.data_ptr<int64_t>(),
        want_gew ? gew.data_ptr<A>() : nullptr, weights_grad ? gsw_part.data_ptr<A>() : nullptr,
        weights_grad ? dtmp.data_ptr<A>() : nullptr, g.data_ptr<A>(), p.t, p.g, p.sw.data_ptr<A>(),
        p.ew.data_ptr<A>(), sid.data_ptr<int64_t>(), perm.data_ptr<int64_t>(), N, renormalize, weights_grad,
        want_gew, flag);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (weights_grad) gsw = gsw_part.sum(0);
    if (any_table && E > 0) {
      auto key = at::empty({E}, lopt);
      entry_key_kernel<<<blocks_for(E, kThreads), kThreads, 0, stream>>>(key.data_ptr<int64_t>(), p.t, p.g);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      const auto ks = at::sort(key, /*stable=*/true, 0, false);
      const auto skey = std::get<0>(ks).contiguous(), eperm = std::get<1>(ks).contiguous();
      // the bag of every entry: the last b with bag_offsets[b] <= e
      const auto bag_of_entry =
          (at::searchsorted(p.off, at::arange(E, lopt), /*out_int32=*/false, /*right=*/true) - 1)
              .clamp_(0, std::max<int64_t>(p.c.B - 1, 0))
              .contiguous();
      table_grad_kernel<A><<<blocks_for(E * 32, kThreads), kThreads, 0, stream>>>(
          p.t, p.g, p.sw.data_ptr<A>(), p.ew.data_ptr<A>(), skey.data_ptr<int64_t>(), eperm.data_ptr<int64_t>(),
          bag_of_entry.data_ptr<int64_t>(), grp_of_bag.data_ptr<int64_t>(), grp_inv.data_ptr<A>(),
          grp_ok.data_ptr<uint8_t>(), gsum.data_ptr<A>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  }
  for (int64_t k = 0; k < K; ++k)
    if (tg[k]) tgrads[k] = std::is_same_v<T, A> ? accs[k] : accs[k].to(p.c.dtype);
  return {gsw, gew, tgrads, trows};
}

BackwardResult gather_bags_backward_cuda(const at::Tensor& grad, at::TensorList tables, const at::Tensor& source_weight,
                                         const at::Tensor& bag_offsets, const at::Tensor& entry_source,
                                         const at::Tensor& entry_row, const at::Tensor& entry_weight,
                                         const at::Tensor& ids, bool renormalize, bool weights_grad,
                                         const c10::List<bool>& tables_grad, bool sparse, bool entry_weight_grad) {
  const char* op = "gather_bags_backward";
  Prepared p = prepare(op, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids);
  const c10::cuda::CUDAGuard guard(p.c.tables[0].device());
  check_device(grad, p.c.tables[0].device(), op, "grad");
  TORCH_CHECK_VALUE(grad.dim() == 2 && grad.size(0) == p.c.N && grad.size(1) == p.c.D, op,
                    ": argument 'grad' must have shape [", p.c.N, ", ", p.c.D, "], got ", grad.sizes());
  TORCH_CHECK_VALUE(at::isFloatingType(grad.scalar_type()), op, ": argument 'grad' must be floating, got ",
                    grad.scalar_type());
  TORCH_CHECK_VALUE(static_cast<int64_t>(tables_grad.size()) == p.c.K, op,
                    ": argument 'tables_grad' must have one flag per table (", p.c.K, "), got ", tables_grad.size());
  std::vector<bool> tg;
  bool any_table = false;
  for (size_t i = 0; i < tables_grad.size(); ++i) {
    tg.push_back(tables_grad.get(i));
    any_table = any_table || tg.back();
  }
  TORCH_CHECK_VALUE(!(sparse && any_table), op, ": sparse table gradients (sparse_grad=True) are not implemented "
                    "by the CUDA kernel; use dense gradients or backend='triton'");
  auto bad = new_flag(p.off);
  BackwardResult r;
  switch (p.c.dtype) {
    case at::kFloat: r = backward_impl<float>(p, grad, renormalize, weights_grad, tg, entry_weight_grad, bad); break;
    case at::kDouble: r = backward_impl<double>(p, grad, renormalize, weights_grad, tg, entry_weight_grad, bad); break;
    case at::kHalf: r = backward_impl<at::Half>(p, grad, renormalize, weights_grad, tg, entry_weight_grad, bad); break;
    default: r = backward_impl<at::BFloat16>(p, grad, renormalize, weights_grad, tg, entry_weight_grad, bad); break;
  }
  check_values(op, p, bad);
  return r;
}

}  // namespace

TORCH_LIBRARY_IMPL(embedfast, CUDA, m) {
  m.impl("gather_bags", &gather_bags_cuda);
  m.impl("gather_bags_backward", &gather_bags_backward_cuda);
}

}  // namespace embedfast
