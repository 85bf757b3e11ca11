// embedfast::gather_bags — multi-source weighted gather over bags, forward and backward (CPU).
//
// Bag b owns the entries e in [bag_offsets[b], bag_offsets[b+1]); entry e names a source k = entry_source[e],
// a row r = entry_row[e] of tables[k] and a weight w_e = entry_weight[e]. With s_e = source_weight[k] * w_e:
//   out[n] = sum_{e in bag(ids[n])} s_e * tables[k_e][r_e]            (renormalize = false)
//   out[n] = sum_e s_e * tables[k_e][r_e] / sum_e s_e                  (renormalize = true)
// and zeros for an empty bag (or, renormalised, a bag whose s_e sum to exactly zero). Accumulation is in
// float32 (float64 for float64 tables); the output has the tables' dtype.
//
// Backward (one op): the rows of `grad` are first summed per distinct bag (ids sorted, stable), since every
// gradient is linear in grad and the coefficients depend only on the bag. Then
//   - weight gradients: per distinct bag, d_e = <G_b, x_e>; ds_e = d_e (or (d_e - sum_e' c_e' d_e') / S);
//     grad_entry_weight[e] = ds_e * source_weight[k]; grad_source_weight[k] += ds_e * w_e (per fixed-size block
//     of bags, blocks summed in order: the result does not depend on the thread count);
//   - table gradients (only for tables that need them): the (row, bag, coefficient) contributions are sorted by
//     row (stable) and each row is summed by one thread: race-free and deterministic, no [N, K, D] tensor.
//     Dense: a [V_k, D] gradient; sparse: the distinct rows (sorted) and their summed gradient rows.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <tuple>
#include <type_traits>
#include <vector>

#include "embedfast/common.h"
#include "embedfast/parallel.h"

namespace embedfast {
namespace {

constexpr int64_t kBlock = 256;
constexpr int64_t kPrefetchBag = 8;  // ids ahead whose bag entries are prefetched
constexpr int64_t kPrefetchRow = 2;  // ids ahead whose table rows are prefetched  // fixed block of distinct bags for the deterministic source-weight sum

template <typename T>
using acc_type_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

// acc[0:D] += c * x[0:D]
template <typename T, typename A>
inline void axpy(A* __restrict acc, A c, const T* __restrict x, int64_t D) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
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

// <g, x>
template <typename T, typename A>
inline A dot(const A* __restrict g, const T* __restrict x, int64_t D) {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    // explicit vectors and 4 accumulators: a plain loop is a serial chain (no reassociation without -ffast-math)
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

template <typename T, typename A>
inline void store_row(T* __restrict out, const A* __restrict acc, int64_t D) {
  if constexpr (std::is_same_v<T, A>) {
    std::copy(acc, acc + D, out);
  } else {
    at::vec::convert(acc, out, D);
  }
}

struct Checked {
  int64_t K, D, B, E, N;
  at::ScalarType dtype, wdtype;
  std::vector<at::Tensor> tables;  // row-contiguous
  std::vector<int64_t> rows;       // V_k
};

// Checks every argument except the per-entry values (those are checked where they are read).
Checked check_args(const char* op, at::TensorList tables, const at::Tensor& source_weight,
                   const at::Tensor& bag_offsets, const at::Tensor& entry_source, const at::Tensor& entry_row,
                   const at::Tensor& entry_weight, const at::Tensor& ids) {
  Checked c;
  TORCH_CHECK_VALUE(!tables.empty(), op, ": argument 'tables' must hold at least one table, got none");
  c.K = static_cast<int64_t>(tables.size());
  c.dtype = tables[0].scalar_type();
  TORCH_CHECK_VALUE(c.dtype == at::kFloat || c.dtype == at::kHalf || c.dtype == at::kBFloat16 ||
                        c.dtype == at::kDouble,
                    op, ": argument 'tables[0]' must be float32, float16, bfloat16 or float64, got ", c.dtype);
  for (int64_t k = 0; k < c.K; ++k) {
    const auto& t = tables[k];
    TORCH_CHECK_VALUE(t.device().is_cpu(), op, ": argument 'tables[", k, "]' must be a CPU tensor here, got ",
                      t.device());
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
  check_cpu(source_weight, op, "source_weight");
  check_dtype(source_weight, c.wdtype, op, "source_weight");
  check_dim(source_weight, 1, op, "source_weight");
  TORCH_CHECK_VALUE(source_weight.numel() == c.K, op, ": argument 'source_weight' must have one weight per table (",
                    c.K, "), got shape ", source_weight.sizes());
  for (auto [t, name] : {std::pair{&bag_offsets, "bag_offsets"}, {&entry_source, "entry_source"},
                         {&entry_row, "entry_row"}, {&ids, "ids"}}) {
    check_cpu(*t, op, name);
    check_dtype(*t, at::kLong, op, name);
    check_dim(*t, 1, op, name);
  }
  check_cpu(entry_weight, op, "entry_weight");
  check_dtype(entry_weight, c.wdtype, op, "entry_weight");
  check_dim(entry_weight, 1, op, "entry_weight");
  TORCH_CHECK_VALUE(bag_offsets.numel() >= 1, op, ": argument 'bag_offsets' must have B+1 >= 1 elements, got 0");
  c.B = bag_offsets.numel() - 1;
  c.E = entry_source.numel();
  TORCH_CHECK_VALUE(entry_row.numel() == c.E && entry_weight.numel() == c.E, op,
                    ": arguments 'entry_source' ", entry_source.sizes(), ", 'entry_row' ", entry_row.sizes(),
                    " and 'entry_weight' ", entry_weight.sizes(), " must have the same length");
  c.N = ids.numel();
  // bag_offsets: 0, nondecreasing, ends at E
  auto off = bag_offsets.contiguous();
  const int64_t* o = off.data_ptr<int64_t>();
  TORCH_CHECK_VALUE(o[0] == 0, op, ": argument 'bag_offsets' must start at 0, got ", o[0]);
  TORCH_CHECK_VALUE(o[c.B] == c.E, op, ": argument 'bag_offsets' must end at the number of entries (", c.E,
                    "), got ", o[c.B]);
  for (int64_t b = 0; b < c.B; ++b) {
    TORCH_CHECK_VALUE(o[b + 1] >= o[b], op, ": argument 'bag_offsets' must be nondecreasing, but bag_offsets[",
                      b + 1, "] = ", o[b + 1], " < bag_offsets[", b, "] = ", o[b]);
  }
  {
    auto idc = ids.contiguous();
    const int64_t* ip = idc.data_ptr<int64_t>();
    for (int64_t n = 0; n < c.N; ++n) {
      TORCH_CHECK_INDEX(ip[n] >= 0 && ip[n] < c.B, op, ": argument 'ids' has value ", ip[n], " at flat position ",
                        n, ", outside the valid range [0, ", c.B, ") of bags");
    }
  }
  return c;
}

// Records the first (smallest) bad entry position seen by any thread; raised after the parallel region.
struct BadEntry {
  std::atomic<int64_t> pos{std::numeric_limits<int64_t>::max()};
  void note(int64_t e) {
    int64_t cur = pos.load(std::memory_order_relaxed);
    while (e < cur && !pos.compare_exchange_weak(cur, e, std::memory_order_relaxed)) {
    }
  }
  void raise_if_any(const char* op, const int64_t* src, const int64_t* row, const Checked& c) const {
    const int64_t e = pos.load();
    if (e == std::numeric_limits<int64_t>::max()) return;
    const int64_t k = src[e];
    TORCH_CHECK_INDEX(k >= 0 && k < c.K, op, ": argument 'entry_source' has value ", k, " at position ", e,
                      ", outside the valid range of sources [0, ", c.K, ")");
    TORCH_CHECK_INDEX(false, op, ": argument 'entry_row' has value ", row[e], " at position ", e,
                      ", outside the rows of its source ", k, " (tables[", k, "] has ", c.rows[k], " rows)");
  }
};

inline bool entry_ok(int64_t k, int64_t r, const Checked& c) {
  return k >= 0 && k < c.K && r >= 0 && r < c.rows[k];
}

template <typename A>
inline void prefetch_row(const A* p, int64_t D) {
  const char* c = reinterpret_cast<const char*>(p);
  for (int64_t x = 0; x < D * static_cast<int64_t>(sizeof(A)); x += 64) __builtin_prefetch(c + x);
}

// Prefetch (the cache lines of) the table rows of bag b; entries with bad indices are skipped here and reported
// where they are used.
template <typename T>
inline void prefetch_bag_rows(int64_t b, const int64_t* off, const int64_t* src, const int64_t* row,
                              const std::vector<const T*>& tab, const std::vector<int64_t>& tstride, const Checked& c,
                              int64_t D) {
  const int64_t e1 = std::min(off[b + 1], off[b] + 8);
  for (int64_t e = off[b]; e < e1; ++e) {
    const int64_t k = src[e], r = row[e];
    if (!entry_ok(k, r, c)) continue;
    const char* p = reinterpret_cast<const char*>(tab[k] + r * tstride[k]);
    const int64_t bytes = D * static_cast<int64_t>(sizeof(T));
    for (int64_t x = 0; x < bytes; x += 64) __builtin_prefetch(p + x);
  }
}

template <typename T>
at::Tensor forward_impl(const Checked& c, const at::Tensor& source_weight, const at::Tensor& bag_offsets,
                        const at::Tensor& entry_source, const at::Tensor& entry_row, const at::Tensor& entry_weight,
                        const at::Tensor& ids, bool renormalize) {
  using A = acc_type_t<T>;
  const char* op = "gather_bags";
  auto out = at::empty({c.N, c.D}, c.tables[0].options());
  auto sw_t = source_weight.contiguous();
  auto off_t = bag_offsets.contiguous(), src_t = entry_source.contiguous(), row_t = entry_row.contiguous();
  auto ew_t = entry_weight.contiguous(), ids_t = ids.contiguous();
  const A* sw = sw_t.data_ptr<A>();
  const int64_t *off = off_t.data_ptr<int64_t>(), *src = src_t.data_ptr<int64_t>(), *row = row_t.data_ptr<int64_t>();
  const A* ew = ew_t.data_ptr<A>();
  const int64_t* idp = ids_t.data_ptr<int64_t>();
  std::vector<const T*> tab(c.K);
  std::vector<int64_t> tstride(c.K);
  for (int64_t k = 0; k < c.K; ++k) {
    tab[k] = c.tables[k].data_ptr<T>();
    tstride[k] = c.tables[k].stride(0);
  }
  T* o = out.data_ptr<T>();
  const int64_t D = c.D;
  BadEntry bad;
  parallel_for(0, c.N, 64, [&](int64_t n0, int64_t n1) {
    std::vector<A> acc(D);
    for (int64_t n = n0; n < n1; ++n) {
      // software prefetch: the bag of a later id, and the first rows of the next id's bag (the chain
      // ids -> bag_offsets -> entries -> table row is dependent, so the hardware cannot run ahead by itself)
      if (n + kPrefetchBag < n1) {
        const int64_t bb = idp[n + kPrefetchBag];
        __builtin_prefetch(off + bb);
        const int64_t ee = off[bb];  // usually in cache by now from an earlier prefetch of a nearby bag
        __builtin_prefetch(src + ee);
        __builtin_prefetch(row + ee);
        __builtin_prefetch(ew + ee);
      }
      if (n + kPrefetchRow < n1) prefetch_bag_rows(idp[n + kPrefetchRow], off, src, row, tab, tstride, c, D);
      const int64_t b = idp[n], e0 = off[b], e1 = off[b + 1];
      T* orow = o + n * D;
      A S = 1;
      bool ok = true;
      if (renormalize) {
        S = 0;
        for (int64_t e = e0; e < e1; ++e) {
          const int64_t k = src[e];
          if (!entry_ok(k, row[e], c)) { bad.note(e); ok = false; break; }
          S += sw[k] * ew[e];
        }
      }
      if (!ok || e0 == e1 || S == A(0)) {
        std::fill(orow, orow + D, T(0));
        continue;
      }
      const A inv = A(1) / S;
      std::fill(acc.begin(), acc.end(), A(0));
      for (int64_t e = e0; e < e1; ++e) {
        const int64_t k = src[e], r = row[e];
        if (!renormalize && !entry_ok(k, r, c)) { bad.note(e); break; }
        axpy<T, A>(acc.data(), sw[k] * ew[e] * inv, tab[k] + r * tstride[k], D);
      }
      store_row<T, A>(orow, acc.data(), D);
    }
  });
  bad.raise_if_any(op, src, row, c);
  return out;
}

at::Tensor gather_bags_cpu(at::TensorList tables, const at::Tensor& source_weight, const at::Tensor& bag_offsets,
                           const at::Tensor& entry_source, const at::Tensor& entry_row,
                           const at::Tensor& entry_weight, const at::Tensor& ids, bool renormalize, bool sparse_grad) {
  (void)sparse_grad;  // only the backward uses it
  Checked c = check_args("gather_bags", tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids);
  switch (c.dtype) {
    case at::kFloat: return forward_impl<float>(c, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize);
    case at::kDouble: return forward_impl<double>(c, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize);
    case at::kHalf: return forward_impl<at::Half>(c, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize);
    default: return forward_impl<at::BFloat16>(c, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize);
  }
}

// Stable LSD radix sort of (key, position) pairs by key (keys in [0, 2^63)): returns the positions in sorted
// order and the sorted keys. Serial, O(n * passes) with 11-bit digits; deterministic.
void radix_sort_keys(const int64_t* keys, int64_t n, std::vector<int64_t>& sorted_keys, std::vector<int64_t>& order) {
  order.resize(n);
  sorted_keys.resize(n);
  int64_t maxk = 0;
  for (int64_t i = 0; i < n; ++i) maxk = std::max(maxk, keys[i]);
  int bits = 0;
  while (bits < 63 && (maxk >> bits) != 0) ++bits;
  constexpr int kDigit = 11;
  constexpr int64_t kBuckets = int64_t(1) << kDigit;
  std::vector<int64_t> k0(keys, keys + n), k1(n), o0(n), o1(n);
  for (int64_t i = 0; i < n; ++i) o0[i] = i;
  std::vector<int64_t> hist(kBuckets);
  for (int shift = 0; shift < bits; shift += kDigit) {
    std::fill(hist.begin(), hist.end(), 0);
    for (int64_t i = 0; i < n; ++i) ++hist[(k0[i] >> shift) & (kBuckets - 1)];
    int64_t sum = 0;
    for (int64_t b = 0; b < kBuckets; ++b) {
      const int64_t h = hist[b];
      hist[b] = sum;
      sum += h;
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t pos = hist[(k0[i] >> shift) & (kBuckets - 1)]++;
      k1[pos] = k0[i];
      o1[pos] = o0[i];
    }
    k0.swap(k1);
    o0.swap(o1);
  }
  sorted_keys.swap(k0);
  order.swap(o0);
}

using BackwardResult = std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>>;

template <typename T>
BackwardResult backward_impl(const Checked& c, const at::Tensor& grad, const at::Tensor& source_weight,
                             const at::Tensor& bag_offsets, const at::Tensor& entry_source,
                             const at::Tensor& entry_row, const at::Tensor& entry_weight, const at::Tensor& ids,
                             bool renormalize, bool weights_grad, const std::vector<bool>& table_grad, bool sparse) {
  using A = acc_type_t<T>;
  const char* op = "gather_bags_backward";
  const int64_t D = c.D, K = c.K;
  auto wopt = at::TensorOptions().dtype(c.wdtype);
  auto topt = c.tables[0].options();
  auto sw_t = source_weight.contiguous();
  auto off_t = bag_offsets.contiguous(), src_t = entry_source.contiguous(), row_t = entry_row.contiguous();
  auto ew_t = entry_weight.contiguous();
  const A* sw = sw_t.data_ptr<A>();
  const int64_t *off = off_t.data_ptr<int64_t>(), *src = src_t.data_ptr<int64_t>(), *row = row_t.data_ptr<int64_t>();
  const A* ew = ew_t.data_ptr<A>();
  std::vector<const T*> tab(K);
  std::vector<int64_t> tstride(K);
  for (int64_t k = 0; k < K; ++k) {
    tab[k] = c.tables[k].data_ptr<T>();
    tstride[k] = c.tables[k].stride(0);
  }
  bool any_table = false;
  for (int64_t k = 0; k < K; ++k) any_table = any_table || table_grad[k];

  at::Tensor gsw = weights_grad ? at::zeros({K}, wopt) : at::empty({0}, wopt);
  at::Tensor gew = weights_grad ? at::zeros({c.E}, wopt) : at::empty({0}, wopt);
  std::vector<at::Tensor> tgrads(K), trows(K);
  for (int64_t k = 0; k < K; ++k) {
    tgrads[k] = at::empty({0, D}, topt);
    trows[k] = at::empty({0}, at::kLong);
  }
  if (c.N == 0 || (!weights_grad && !any_table)) {
    for (int64_t k = 0; k < K; ++k)
      if (table_grad[k] && !sparse) tgrads[k] = at::zeros({c.rows[k], D}, topt);
    return {gsw, gew, tgrads, trows};
  }

  // 1. distinct bags and the summed gradient row of each (G_u).
  auto g = grad.to(c.wdtype).contiguous();
  const A* gp = g.data_ptr<A>();
  auto ids_c = ids.contiguous();
  std::vector<int64_t> sids_v, perm_v;
  radix_sort_keys(ids_c.data_ptr<int64_t>(), c.N, sids_v, perm_v);
  const int64_t *sids = sids_v.data(), *perm = perm_v.data();
  std::vector<int64_t> seg;  // segment starts into the sorted ids; U+1 entries
  seg.reserve(c.N + 1);
  for (int64_t i = 0; i < c.N; ++i)
    if (i == 0 || sids[i] != sids[i - 1]) seg.push_back(i);
  const int64_t U = static_cast<int64_t>(seg.size());
  seg.push_back(c.N);
  std::vector<int64_t> multi_slot(U, -1);  // slot in `gbuf` of a bag seen more than once
  int64_t n_multi = 0;
  for (int64_t u = 0; u < U; ++u)
    if (seg[u + 1] - seg[u] > 1) multi_slot[u] = n_multi++;
  // G_u: the gradient row itself for a bag seen once, else the sum (in id order) written to `dst`.
  auto bag_grad = [&](int64_t u, A* dst) -> const A* {
    if (seg[u + 1] - seg[u] == 1) return gp + perm[seg[u]] * D;
    std::fill(dst, dst + D, A(0));
    for (int64_t i = seg[u]; i < seg[u + 1]; ++i) {
      const A* gr = gp + perm[i] * D;
      for (int64_t j = 0; j < D; ++j) dst[j] += gr[j];
    }
    return dst;
  };
  // The table pass needs every G_u at once; the weight pass alone makes them on the fly (one parallel region
  // fewer).
  std::vector<A> gbuf(any_table ? static_cast<size_t>(n_multi) * D : 0);
  std::vector<const A*> G(any_table ? U : 0);
  if (any_table) {
    parallel_for(0, U, 64, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u)
        G[u] = bag_grad(u, multi_slot[u] < 0 ? nullptr : gbuf.data() + multi_slot[u] * D);
    });
  }
  BadEntry bad;

  // 2. weight gradients.
  if (weights_grad) {
    A* gswp = gsw.data_ptr<A>();
    A* gewp = gew.data_ptr<A>();
    const int64_t nblocks = (U + kBlock - 1) / kBlock;
    const int64_t KP = (K + 15) / 16 * 16;  // per-block stride padded to whole cache lines
    std::vector<A> partial(static_cast<size_t>(nblocks) * KP, A(0));
    parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
      std::vector<A> d, gtmp(any_table ? 0 : D);
      for (int64_t blk = b0; blk < b1; ++blk) {
        A* part = partial.data() + blk * KP;
        const int64_t uend = std::min(U, (blk + 1) * kBlock);
        for (int64_t u = blk * kBlock; u < uend; ++u) {
          if (u + kPrefetchRow < uend) {
            prefetch_bag_rows(sids[seg[u + kPrefetchRow]], off, src, row, tab, tstride, c, D);
            prefetch_row(gp + perm[seg[u + kPrefetchRow]] * D, D);  // gradient rows come in id order: random
          }
          const int64_t b = sids[seg[u]], e0 = off[b], e1 = off[b + 1];
          if (e0 == e1) continue;
          d.resize(e1 - e0);
          const A* Gu = any_table ? G[u] : bag_grad(u, gtmp.data());
          A S = 0, t = 0;
          bool ok = true;
          for (int64_t e = e0; e < e1; ++e) {
            const int64_t k = src[e], r = row[e];
            if (!entry_ok(k, r, c)) { bad.note(e); ok = false; break; }
            d[e - e0] = dot<T, A>(Gu, tab[k] + r * tstride[k], D);
            S += sw[k] * ew[e];
          }
          if (!ok) continue;
          A inv = 1;
          if (renormalize) {
            if (S == A(0)) continue;  // constant zero output: zero gradients
            inv = A(1) / S;
            for (int64_t e = e0; e < e1; ++e) t += sw[src[e]] * ew[e] * inv * d[e - e0];
          }
          for (int64_t e = e0; e < e1; ++e) {
            const int64_t k = src[e];
            const A ds = (d[e - e0] - t) * inv;
            gewp[e] = ds * sw[k];
            part[k] += ds * ew[e];
          }
        }
      }
    });
    for (int64_t blk = 0; blk < nblocks; ++blk)
      for (int64_t k = 0; k < K; ++k) gswp[k] += partial[blk * KP + k];
  }

  // 3. table gradients: contributions (global row key, distinct bag, coefficient), sorted by key.
  if (any_table) {
    std::vector<int64_t> base(K + 1, 0);
    for (int64_t k = 0; k < K; ++k) base[k + 1] = base[k] + c.rows[k];
    std::vector<int64_t> count(U + 1, 0);  // contributions per distinct bag (prefix sums below)
    parallel_for(0, U, 1024, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t b = sids[seg[u]];
        int64_t m = 0;
        for (int64_t e = off[b]; e < off[b + 1]; ++e) {
          const int64_t k = src[e];
          if (k >= 0 && k < K && table_grad[k]) ++m;
        }
        count[u + 1] = m;
      }
    });
    for (int64_t u = 0; u < U; ++u) count[u + 1] += count[u];
    const int64_t C = count[U];
    std::vector<int64_t> keys_v(C);
    std::vector<int64_t> cbag(C);
    std::vector<A> coef(C);
    int64_t* keys = keys_v.data();
    parallel_for(0, U, 256, [&](int64_t u0, int64_t u1) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t b = sids[seg[u]], e0 = off[b], e1 = off[b + 1];
        A S = 1;
        bool ok = true;
        if (renormalize) {
          S = 0;
          for (int64_t e = e0; e < e1; ++e) {
            if (!entry_ok(src[e], row[e], c)) { bad.note(e); ok = false; break; }
            S += sw[src[e]] * ew[e];
          }
        }
        const A inv = (ok && S != A(0)) ? A(1) / S : A(0);
        int64_t i = count[u];
        for (int64_t e = e0; e < e1; ++e) {
          const int64_t k = src[e], r = row[e];
          if (!(k >= 0 && k < K && table_grad[k])) continue;
          if (!entry_ok(k, r, c)) { bad.note(e); keys[i] = base[k]; cbag[i] = u; coef[i++] = 0; continue; }
          keys[i] = base[k] + r;
          cbag[i] = u;
          coef[i++] = sw[k] * ew[e] * inv;
        }
      }
    });
    bad.raise_if_any(op, src, row, c);
    std::vector<int64_t> skeys_v, kperm_v;
    radix_sort_keys(keys, C, skeys_v, kperm_v);
    const int64_t *skeys = skeys_v.data(), *kperm = kperm_v.data();
    std::vector<int64_t> rseg;
    rseg.reserve(C + 1);
    for (int64_t i = 0; i < C; ++i)
      if (i == 0 || skeys[i] != skeys[i - 1]) rseg.push_back(i);
    const int64_t R = static_cast<int64_t>(rseg.size());
    rseg.push_back(C);
    // per table: first segment and count (segments are ordered by key, so by table then row)
    std::vector<int64_t> tfirst(K + 1, R);
    {
      int64_t s = 0;
      for (int64_t k = 0; k <= K; ++k) {
        while (s < R && skeys[rseg[s]] < base[k]) ++s;
        tfirst[k] = s;
      }
    }
    std::vector<T*> dst(K, nullptr);
    std::vector<int64_t*> dst_rows(K, nullptr);
    for (int64_t k = 0; k < K; ++k) {
      if (!table_grad[k]) continue;
      if (sparse) {
        const int64_t M = tfirst[k + 1] - tfirst[k];
        tgrads[k] = at::empty({M, D}, topt);
        trows[k] = at::empty({M}, at::kLong);
        dst_rows[k] = trows[k].data_ptr<int64_t>();
      } else {
        tgrads[k] = at::zeros({c.rows[k], D}, topt);
      }
      dst[k] = tgrads[k].data_ptr<T>();
    }
    parallel_for(0, R, 64, [&](int64_t s0, int64_t s1) {
      std::vector<A> acc(D);
      int64_t k = std::upper_bound(tfirst.begin(), tfirst.end(), s0) - tfirst.begin() - 1;
      for (int64_t s = s0; s < s1; ++s) {
        while (s >= tfirst[k + 1]) ++k;
        std::fill(acc.begin(), acc.end(), A(0));
        for (int64_t i = rseg[s]; i < rseg[s + 1]; ++i) {
          if (i + 4 < C) prefetch_row(G[cbag[kperm[i + 4]]], D);
          const int64_t ci = kperm[i];
          const A cf = coef[ci];
          const A* gr = G[cbag[ci]];
          for (int64_t j = 0; j < D; ++j) acc[j] += cf * gr[j];
        }
        const int64_t r = skeys[rseg[s]] - base[k];
        if (sparse) {
          const int64_t m = s - tfirst[k];
          dst_rows[k][m] = r;
          store_row<T, A>(dst[k] + m * D, acc.data(), D);
        } else {
          store_row<T, A>(dst[k] + r * D, acc.data(), D);
        }
      }
    });
  }
  bad.raise_if_any(op, src, row, c);
  return {gsw, gew, tgrads, trows};
}

BackwardResult gather_bags_backward_cpu(const at::Tensor& grad, at::TensorList tables, const at::Tensor& source_weight,
                                        const at::Tensor& bag_offsets, const at::Tensor& entry_source,
                                        const at::Tensor& entry_row, const at::Tensor& entry_weight,
                                        const at::Tensor& ids, bool renormalize, bool weights_grad,
                                        const c10::List<bool>& tables_grad, bool sparse) {
  const char* op = "gather_bags_backward";
  Checked c = check_args(op, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids);
  check_cpu(grad, op, "grad");
  TORCH_CHECK_VALUE(grad.dim() == 2 && grad.size(0) == c.N && grad.size(1) == c.D, op,
                    ": argument 'grad' must have shape [", c.N, ", ", c.D, "], got ", grad.sizes());
  TORCH_CHECK_VALUE(at::isFloatingType(grad.scalar_type()), op, ": argument 'grad' must be floating, got ",
                    grad.scalar_type());
  TORCH_CHECK_VALUE(static_cast<int64_t>(tables_grad.size()) == c.K, op,
                    ": argument 'tables_grad' must have one flag per table (", c.K, "), got ", tables_grad.size());
  std::vector<bool> tg;
  for (size_t i = 0; i < tables_grad.size(); ++i) tg.push_back(tables_grad.get(i));
  switch (c.dtype) {
    case at::kFloat: return backward_impl<float>(c, grad, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize, weights_grad, tg, sparse);
    case at::kDouble: return backward_impl<double>(c, grad, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize, weights_grad, tg, sparse);
    case at::kHalf: return backward_impl<at::Half>(c, grad, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize, weights_grad, tg, sparse);
    default: return backward_impl<at::BFloat16>(c, grad, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize, weights_grad, tg, sparse);
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(embedfast, CPU, m) {
  m.impl("gather_bags", &gather_bags_cpu);
  m.impl("gather_bags_backward", &gather_bags_backward_cpu);
}

}  // namespace embedfast
