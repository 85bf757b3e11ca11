// embedfast::gather_bags — multi-source weighted gather over bags, forward and backward (CPU).
//
// Bag b owns the entries e in [bag_offsets[b], bag_offsets[b+1]); entry e names a source k = entry_source[e],
// a row r = entry_row[e] of tables[k] and a weight w_e = entry_weight[e]. With s_e = source_weight[k] * w_e:
//   out[n] = sum_{e in bag(ids[n])} s_e * tables[k_e][r_e]            (renormalize = false)
//   out[n] = sum_e s_e * tables[k_e][r_e] / sum_e s_e                  (renormalize = true)
// and zeros for an empty bag (or, renormalised, a bag whose s_e sum to exactly zero). Accumulation is in
// float32 (float64 for float64 tables); the output has the tables' dtype.
//
// Forward: per block of ids, the chain ids -> bag_offsets -> entries is resolved first (independent loads, many
// misses in flight), then the table rows are streamed into the output, which lives on huge pages (alloc.h).
// Backward (one op, no sort): a token pass computes the weight-gradient terms per id and lists the table-gradient
// contributions; table gradients are then accumulated by row range, one range per thread, in id order.
// Every sum runs in a fixed order, so results do not depend on the thread count (see backward_impl).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <new>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "embedfast/alloc.h"
#include "embedfast/common.h"
#include "embedfast/gather_args.h"
#include "embedfast/parallel.h"
#include "embedfast/vecops.h"

namespace embedfast {

namespace {

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

struct Checked : GatherShape {
  int64_t max_bag = 0;  // entries of the largest bag
};

// Checks every argument except the per-entry values (those are checked where they are read).
Checked check_args(const char* op, at::TensorList tables, const at::Tensor& source_weight,
                   const at::Tensor& bag_offsets, const at::Tensor& entry_source, const at::Tensor& entry_row,
                   const at::Tensor& entry_weight, const at::Tensor& ids) {
  Checked c;
  static_cast<GatherShape&>(c) = check_gather_structure(op, tables, source_weight, bag_offsets, entry_source,
                                                        entry_row, entry_weight, ids, at::kCPU);
  // bag_offsets: 0, nondecreasing, ends at E; ids in [0, B) (raise_bag_errors: the messages)
  auto off = bag_offsets.contiguous();
  const int64_t* o = off.data_ptr<int64_t>();
  int64_t dec = -1;
  c.max_bag = 0;
  for (int64_t b = 0; b < c.B && dec < 0; ++b) {
    if (o[b + 1] < o[b]) dec = b + 1;
    c.max_bag = std::max(c.max_bag, o[b + 1] - o[b]);
  }
  int64_t bad_id = -1;
  auto idc = ids.contiguous();
  const int64_t* ip = idc.data_ptr<int64_t>();
  for (int64_t n = 0; n < c.N && bad_id < 0; ++n)
    if (ip[n] < 0 || ip[n] >= c.B) bad_id = n;
  raise_bag_errors(op, c, o[0], o[c.B], dec, dec > 0 ? o[dec] : 0, dec > 0 ? o[dec - 1] : 0, bad_id,
                   bad_id >= 0 ? ip[bad_id] : 0);
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
    raise_bad_entry(op, e, src[e], row[e], c);
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

// The forward runs over blocks of kTokBlock ids in two phases. Phase 1 resolves the dependent chain
// ids -> bag_offsets -> entries (source, row, weight) of the whole block into a flat list of (row pointer,
// coefficient), one independent-load loop per link so many misses are in flight at once; phase 2 streams over
// that list like a plain embedding-bag kernel, combining rows straight into the output and prefetching the
// table rows a fixed number of entries ahead. (A per-id chain with software prefetch is slower: every id waits on
// 2 dependent misses before its rows can even be prefetched; benchmarks/RESULTS.md.)
constexpr int64_t kTokBlock = 256;
constexpr int64_t kRowAhead = 8;  // entries ahead whose table rows are prefetched in phase 2
// The forward's blocks hold fewer ids when bags are large, so that one block lists at most
// max(kBlockEntries, largest bag) entries (a few ids naming a huge bag must not list it hundreds of times).
constexpr int64_t kBlockEntries = int64_t(1) << 16;

inline int64_t forward_block(const Checked& c) {
  return std::clamp<int64_t>(kBlockEntries / std::max<int64_t>(c.max_bag, 1), 1, kTokBlock);
}

inline std::string shape_str(int64_t a, int64_t b) {
  return "[" + std::to_string(a) + ", " + std::to_string(b) + "]";
}

// The bag arguments as contiguous tensors (kept alive here) and raw pointers, and each table's rows.
template <typename T>
struct BagView {
  using A = acc_type_t<T>;
  at::Tensor sw_t, off_t, src_t, row_t, ew_t, ids_t;
  const A* sw;
  const int64_t *off, *src, *row, *idp;
  const A* ew;
  std::vector<const T*> tab;
  std::vector<int64_t> tstride;
  BagView(const Checked& c, const at::Tensor& source_weight, const at::Tensor& bag_offsets,
          const at::Tensor& entry_source, const at::Tensor& entry_row, const at::Tensor& entry_weight,
          const at::Tensor& ids)
      : sw_t(source_weight.contiguous()), off_t(bag_offsets.contiguous()), src_t(entry_source.contiguous()),
        row_t(entry_row.contiguous()), ew_t(entry_weight.contiguous()), ids_t(ids.contiguous()),
        sw(sw_t.data_ptr<A>()), off(off_t.data_ptr<int64_t>()), src(src_t.data_ptr<int64_t>()),
        row(row_t.data_ptr<int64_t>()), idp(ids_t.data_ptr<int64_t>()), ew(ew_t.data_ptr<A>()), tab(c.K),
        tstride(c.K) {
    for (int64_t k = 0; k < c.K; ++k) {
      tab[k] = c.tables[k].data_ptr<T>();
      tstride[k] = c.tables[k].stride(0);
    }
  }
};

// Phase 1 for ids [n0, n1): ptrs/coefs get the block's entries in order, start[i]..start[i+1] those of id n0+i
// (none for an empty bag, a renormalised bag with zero weight sum or a bag with a bad entry, noted in `bad`).
template <typename T, typename A>
void resolve_block(int64_t n0, int64_t n1, const BagView<T>& v, const Checked& c, bool renormalize, BadEntry& bad,
                   int64_t* e0s, int64_t* e1s, std::vector<const T*>& ptrs, std::vector<A>& coefs,
                   std::vector<int64_t>& start, std::vector<int64_t>* ents = nullptr,
                   std::vector<A>* invs = nullptr) {
  const A* sw = v.sw;
  const int64_t *off = v.off, *src = v.src, *row = v.row, *idp = v.idp;
  const A* ew = v.ew;
  const auto& tab = v.tab;
  const auto& tstride = v.tstride;
  const int64_t m = n1 - n0;
  for (int64_t i = 0; i < m; ++i) __builtin_prefetch(off + idp[n0 + i]);
  for (int64_t i = 0; i < m; ++i) {
    const int64_t b = idp[n0 + i];
    e0s[i] = off[b];
    e1s[i] = off[b + 1];
    __builtin_prefetch(src + e0s[i]);
    __builtin_prefetch(row + e0s[i]);
    __builtin_prefetch(ew + e0s[i]);
  }
  ptrs.clear();
  coefs.clear();
  if (ents) ents->clear();
  if (invs) invs->assign(m, A(0));
  start.resize(m + 1);
  for (int64_t i = 0; i < m; ++i) {
    start[i] = static_cast<int64_t>(ptrs.size());
    const int64_t e0 = e0s[i], e1 = e1s[i];
    A S = 0;
    bool ok = true;
    for (int64_t e = e0; e < e1; ++e) {
      const int64_t k = src[e];
      if (!entry_ok(k, row[e], c)) { bad.note(e); ok = false; break; }
      S += sw[k] * ew[e];
    }
    if (!ok || e0 == e1 || (renormalize && S == A(0))) continue;
    const A inv = renormalize ? A(1) / S : A(1);
    if (invs) (*invs)[i] = inv;
    for (int64_t e = e0; e < e1; ++e) {
      const int64_t k = src[e];
      ptrs.push_back(tab[k] + row[e] * tstride[k]);
      coefs.push_back(sw[k] * ew[e] * inv);
      if (ents) ents->push_back(e);
    }
  }
  start[m] = static_cast<int64_t>(ptrs.size());
}

template <typename T>
at::Tensor forward_impl(const Checked& c, const at::Tensor& source_weight, const at::Tensor& bag_offsets,
                        const at::Tensor& entry_source, const at::Tensor& entry_row, const at::Tensor& entry_weight,
                        const at::Tensor& ids, bool renormalize) {
  using A = acc_type_t<T>;
  const char* op = "gather_bags";
  const double out_bytes = double(c.N) * double(c.D) * double(c10::elementSize(c.dtype));
  if (out_bytes > machine_memory_bytes())
    raise_too_large(out_bytes, op, "the output " + shape_str(c.N, c.D) + " (len(ids) x D)");
  // a large output on huge pages: with 4 KiB pages the faults of a fresh [N, D] block cost more than the gather
  auto out = empty_large({c.N, c.D}, c.tables[0].options());
  const BagView<T> v(c, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids);
  T* o = out.data_ptr<T>();
  const int64_t D = c.D;
  const int64_t row_bytes = D * static_cast<int64_t>(sizeof(T));
  BadEntry bad;
  const int64_t blk = forward_block(c);
  parallel_for(0, c.N, 64, [&](int64_t n0, int64_t n1) {
    std::vector<A> acc(std::is_same_v<T, float> ? 0 : D);
    int64_t e0s[kTokBlock], e1s[kTokBlock];
    std::vector<const T*> ptrs;
    std::vector<A> coefs;
    std::vector<int64_t> start;
    for (int64_t nb = n0; nb < n1; nb += blk) {
      const int64_t nbe = std::min(n1, nb + blk);
      resolve_block<T, A>(nb, nbe, v, c, renormalize, bad, e0s, e1s, ptrs,
                          coefs, start);
      const int64_t P = static_cast<int64_t>(ptrs.size());
      for (int64_t j = 0; j < std::min(P, kRowAhead); ++j) {
        const char* p = reinterpret_cast<const char*>(ptrs[j]);
        for (int64_t x = 0; x < row_bytes; x += 64) __builtin_prefetch(p + x);
      }
      for (int64_t n = nb; n < nbe; ++n) {
        const int64_t s0 = start[n - nb], s1 = start[n - nb + 1];
        T* orow = o + n * D;
        for (int64_t j = s0 + kRowAhead; j < std::min(P, s1 + kRowAhead); ++j) {
          const char* p = reinterpret_cast<const char*>(ptrs[j]);
          for (int64_t x = 0; x < row_bytes; x += 64) __builtin_prefetch(p + x);
        }
        if (s0 == s1) {
          std::fill(orow, orow + D, T(0));
          continue;
        }
        if constexpr (std::is_same_v<T, float>) {
          // accumulate straight into the output row, up to 8 table rows per pass over it
          for (int64_t s = s0; s < s1; s += 8)
            combine_rows_f32(orow, s > s0, coefs.data() + s, 1, ptrs.data() + s, std::min<int64_t>(8, s1 - s), D);
        } else {
          std::fill(acc.begin(), acc.end(), A(0));
          for (int64_t s = s0; s < s1; ++s) axpy<T, A>(acc.data(), coefs[s], ptrs[s], D);
          store_row<T, A>(orow, acc.data(), D);
        }
      }
    }
  });
  bad.raise_if_any(op, v.src, v.row, c);
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

using BackwardResult = std::tuple<at::Tensor, at::Tensor, std::vector<at::Tensor>, std::vector<at::Tensor>>;

// One table-gradient contribution: coef * grad[n] goes to row r of table k.
template <typename A>
struct Contribution {
  int64_t k, r, n;
  A coef;
};

// Backward without sorting. Every gradient is a sum over ids n of terms that depend on n's bag and grad[n], so
//   1. a token pass (parallel over fixed blocks of kTokBlock ids, the same chain resolution as the forward)
//      computes, per id, the dot products d_e = <grad[n], x_e> and from them the entry-weight terms (kept per
//      block as (entry, value) lists) and the source-weight terms (summed per block), and lists the
//      table-gradient contributions (table, row, id, coefficient) of the block;
//   2. grad_entry_weight adds the per-block lists in id order; grad_source_weight adds the block sums in order;
//   3. table gradients: the global row space sum_k V_k is cut into one range per thread; each thread walks all
//      contributions in id order and applies those of its range (race-free). Dense gradients accumulate straight
//      into a fresh zero block (rows never written stay untouched zero pages); sparse gradients first mark the
//      touched rows, number them in row order, then accumulate into their [M_k, D] values.
// Every sum is taken in id order (or block order), whatever the thread count: the results are deterministic.
// Repeated ids are not merged first (a sort would cost more than it saves: a repeated id's rows are in cache).
template <typename T>
BackwardResult backward_impl(const Checked& c, const at::Tensor& grad, const at::Tensor& source_weight,
                             const at::Tensor& bag_offsets, const at::Tensor& entry_source,
                             const at::Tensor& entry_row, const at::Tensor& entry_weight, const at::Tensor& ids,
                             bool renormalize, bool weights_grad, const std::vector<bool>& table_grad, bool sparse,
                             bool entry_weight_grad) {
  using A = acc_type_t<T>;
  const char* op = "gather_bags_backward";
  const int64_t D = c.D, K = c.K, N = c.N;
  auto wopt = at::TensorOptions().dtype(c.wdtype);
  auto topt = c.tables[0].options();
  const BagView<T> v(c, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids);
  const A* sw = v.sw;
  const int64_t *off = v.off, *src = v.src, *row = v.row, *idp = v.idp;
  const A* ew = v.ew;
  bool any_table = false;
  for (int64_t k = 0; k < K; ++k) any_table = any_table || table_grad[k];

  at::Tensor gsw = weights_grad ? at::zeros({K}, wopt) : at::empty({0}, wopt);
  const bool want_gew = weights_grad && entry_weight_grad;
  at::Tensor gew = want_gew ? zeros_large({c.E}, wopt) : at::empty({0}, wopt);
  std::vector<at::Tensor> tgrads(K), trows(K);
  for (int64_t k = 0; k < K; ++k) {
    tgrads[k] = at::empty({0, D}, topt);
    trows[k] = at::empty({0}, at::kLong);
  }
  if (N == 0 || (!weights_grad && !any_table)) {
    for (int64_t k = 0; k < K; ++k)
      if (table_grad[k] && !sparse) tgrads[k] = zeros_large({c.rows[k], D}, topt);
    return {gsw, gew, tgrads, trows};
  }

  {
    // the token pass keeps one contribution per (id, entry of its bag): check their total first (an upper
    // bound from the largest bag, the exact count only when that bound is too large)
    const double per_entry = double(sizeof(const T*) + sizeof(A) + sizeof(int64_t)) +
                             (any_table ? double(sizeof(Contribution<A>)) : 0.0) +
                             (want_gew ? double(sizeof(std::pair<int64_t, A>)) : 0.0);
    const double mem = machine_memory_bytes();
    if (double(N) * double(c.max_bag) * per_entry > mem) {
      double touched = 0;
      for (int64_t n = 0; n < N; ++n) touched += double(off[idp[n] + 1] - off[idp[n]]);
      if (touched * per_entry > mem)
        raise_too_large(touched * per_entry, op,
                        "the backward's lists of the " + std::to_string(int64_t(touched)) +
                            " (id, bag entry) pairs of 'ids'");
    }
  }
  auto g = grad.to(c.wdtype).contiguous();
  const A* gp = g.data_ptr<A>();
  const int64_t row_bytes = D * static_cast<int64_t>(sizeof(T));
  const int64_t nblocks = (N + kTokBlock - 1) / kTokBlock;
  const int64_t KP = (K + 15) / 16 * 16;  // per-block stride of the source-weight sums, whole cache lines
  std::vector<A> part(weights_grad ? static_cast<size_t>(nblocks) * KP : 0, A(0));
  std::vector<std::vector<std::pair<int64_t, A>>> gew_terms(want_gew ? nblocks : 0);
  std::vector<std::vector<Contribution<A>>> contrib(any_table ? nblocks : 0);
  BadEntry bad;

  // 1. token pass
  parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
    int64_t e0s[kTokBlock], e1s[kTokBlock];
    std::vector<const T*> ptrs;
    std::vector<A> coefs, invs, d;
    std::vector<int64_t> start, ents;
    for (int64_t blk = b0; blk < b1; ++blk) {
      const int64_t nb = blk * kTokBlock, nbe = std::min(N, nb + kTokBlock);
      resolve_block<T, A>(nb, nbe, v, c, renormalize, bad, e0s, e1s, ptrs,
                          coefs, start, &ents, &invs);
      const int64_t P = static_cast<int64_t>(ptrs.size());
      if (any_table) {
        auto& cb = contrib[blk];
        cb.reserve(P);
        for (int64_t n = nb; n < nbe; ++n)
          for (int64_t s = start[n - nb]; s < start[n - nb + 1]; ++s) {
            const int64_t e = ents[s], k = src[e];
            if (table_grad[k]) cb.push_back({k, row[e], n, coefs[s]});
          }
      }
      if (!weights_grad) continue;
      A* pb = part.data() + blk * KP;
      std::vector<std::pair<int64_t, A>>* terms = want_gew ? &gew_terms[blk] : nullptr;
      if (terms) terms->reserve(P);
      for (int64_t j = 0; j < std::min(P, kRowAhead); ++j) {
        const char* p = reinterpret_cast<const char*>(ptrs[j]);
        for (int64_t x = 0; x < row_bytes; x += 64) __builtin_prefetch(p + x);
      }
      for (int64_t n = nb; n < nbe; ++n) {
        const int64_t s0 = start[n - nb], s1 = start[n - nb + 1];
        for (int64_t j = s0 + kRowAhead; j < std::min(P, s1 + kRowAhead); ++j) {
          const char* p = reinterpret_cast<const char*>(ptrs[j]);
          for (int64_t x = 0; x < row_bytes; x += 64) __builtin_prefetch(p + x);
        }
        if (s0 == s1) continue;
        const A* gr = gp + n * D;
        d.resize(s1 - s0);
        if constexpr (std::is_same_v<T, float>) {
          multi_dot_f32(gr, ptrs.data() + s0, s1 - s0, D, d.data());
        } else {
          for (int64_t s = s0; s < s1; ++s) d[s - s0] = dot<T, A>(gr, ptrs[s], D);
        }
        const A inv = invs[n - nb];
        A t = 0;
        if (renormalize)
          for (int64_t s = s0; s < s1; ++s) t += coefs[s] * d[s - s0];
        for (int64_t s = s0; s < s1; ++s) {
          const int64_t e = ents[s], k = src[e];
          const A ds = renormalize ? (d[s - s0] - t) * inv : d[s - s0];
          if (terms) terms->emplace_back(e, ds * sw[k]);
          pb[k] += ds * ew[e];
        }
      }
    }
  });
  bad.raise_if_any(op, src, row, c);

  // 2. weight gradients, summed in id order
  if (weights_grad) {
    A* gswp = gsw.data_ptr<A>();
    A* gewp = want_gew ? gew.data_ptr<A>() : nullptr;
    for (int64_t blk = 0; blk < nblocks; ++blk) {
      for (int64_t k = 0; k < K; ++k) gswp[k] += part[blk * KP + k];
      if (want_gew)
        for (const auto& [e, v] : gew_terms[blk]) gewp[e] += v;
    }
  }
  if (!any_table) return {gsw, gew, tgrads, trows};

  // 3. table gradients
  std::vector<int64_t> base(K + 1, 0);
  for (int64_t k = 0; k < K; ++k) base[k + 1] = base[k] + (table_grad[k] ? c.rows[k] : 0);
  const int64_t R = base[K];
  // sparse: slot[key] = position of a touched row among its table's touched rows (a zero block: 1 marks a
  // touched row, then the numbering pass turns marks into positions)
  at::Tensor slot_t;
  int32_t* slot = nullptr;
  std::vector<int64_t> M(K, 0);
  if (sparse) {
    slot_t = zeros_large({R}, at::TensorOptions().dtype(at::kInt));
    slot = slot_t.data_ptr<int32_t>();
    for (const auto& cb : contrib)
      for (const auto& x : cb) slot[base[x.k] + x.r] = 1;
    for (int64_t k = 0; k < K; ++k) {
      if (!table_grad[k]) continue;
      int64_t m = 0;
      for (int64_t key = base[k]; key < base[k + 1]; ++key) m += slot[key];
      M[k] = m;
      trows[k] = at::empty({m}, at::kLong);
      int64_t* rp = trows[k].data_ptr<int64_t>();
      int32_t pos = 0;
      for (int64_t key = base[k]; key < base[k + 1]; ++key) {
        if (slot[key] == 0) continue;
        *rp++ = key - base[k];
        slot[key] = pos++;
      }
    }
  }
  // accumulation targets: the gradient itself for float32 / float64 tables, a float32 block otherwise
  std::vector<at::Tensor> accs(K);
  std::vector<A*> dst(K, nullptr);
  for (int64_t k = 0; k < K; ++k) {
    if (!table_grad[k]) continue;
    const int64_t rows_k = sparse ? M[k] : c.rows[k];
    accs[k] = std::is_same_v<T, A> ? zeros_large({rows_k, D}, topt) : zeros_large({rows_k, D}, wopt);
    dst[k] = accs[k].data_ptr<A>();
  }
  const int parts = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), R / 64)));
  run_parts(parts, [&](int p) {
    const int64_t lo = R * p / parts, hi = R * (p + 1) / parts;
    for (const auto& cb : contrib) {
      const int64_t C = static_cast<int64_t>(cb.size());
      for (int64_t i = 0; i < C; ++i) {
        if (i + 8 < C) {
          const auto& y = cb[i + 8];
          const int64_t ky = base[y.k] + y.r;
          if (ky >= lo && ky < hi)
            prefetch_row(dst[y.k] + (sparse ? static_cast<int64_t>(slot[ky]) : y.r) * D, D);
        }
        const auto& x = cb[i];
        const int64_t key = base[x.k] + x.r;
        if (key < lo || key >= hi) continue;
        A* out = dst[x.k] + (sparse ? static_cast<int64_t>(slot[key]) : x.r) * D;
        const A* gr = gp + x.n * D;
        if constexpr (std::is_same_v<A, float>) {
          axpy_f32(x.coef, gr, out, D);
        } else {
          for (int64_t j = 0; j < D; ++j) out[j] += x.coef * gr[j];
        }
      }
    }
  });
  for (int64_t k = 0; k < K; ++k)
    if (table_grad[k]) tgrads[k] = std::is_same_v<T, A> ? accs[k] : accs[k].to(c.dtype);
  return {gsw, gew, tgrads, trows};
}

BackwardResult gather_bags_backward_cpu(const at::Tensor& grad, at::TensorList tables, const at::Tensor& source_weight,
                                        const at::Tensor& bag_offsets, const at::Tensor& entry_source,
                                        const at::Tensor& entry_row, const at::Tensor& entry_weight,
                                        const at::Tensor& ids, bool renormalize, bool weights_grad,
                                        const c10::List<bool>& tables_grad, bool sparse,
                                        bool entry_weight_grad) {
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
    case at::kFloat: return backward_impl<float>(c, grad, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize, weights_grad, tg, sparse, entry_weight_grad);
    case at::kDouble: return backward_impl<double>(c, grad, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize, weights_grad, tg, sparse, entry_weight_grad);
    case at::kHalf: return backward_impl<at::Half>(c, grad, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize, weights_grad, tg, sparse, entry_weight_grad);
    default: return backward_impl<at::BFloat16>(c, grad, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize, weights_grad, tg, sparse, entry_weight_grad);
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(embedfast, CPU, m) {
  m.impl("gather_bags", &gather_bags_cpu);
  m.impl("gather_bags_backward", &gather_bags_backward_cpu);
}

}  // namespace embedfast
