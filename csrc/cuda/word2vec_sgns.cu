// embedfast SGNS on CUDA: the fused training op sgns_train and the differentiable loss sgns_loss (forward and
// backward), registered for the CUDA dispatch key with the schemas of csrc/ops.cpp and the semantics of the CPU
// kernels (csrc/cpu/word2vec_sgns.cpp), launched on the current stream.
//
// sgns_train: one warp per sentence of the chunk (kWarpsPerBlock sentences per block; Hogwild across warps, as the
// CPU kernel is across threads). Sentence s (0-based in the chunk) draws from stream_key(seed, chunk, s) in the
// order of the CPU kernel (csrc/include/embedfast/rng.h): so a chunk of one sentence gives the CPU kernel's update
// with num_threads=1, and every sentence gives the Triton kernel's (embedfast/word2vec/triton_kernels.py), whose
// streams are the same. num_threads is checked and otherwise ignored. Learning rate of sentence s: alpha - (alpha
// - min_alpha) * min(1, (words_done + tokens of the chunk before s) / total_words) (the CPU kernel with one part).
// A warp
//   1. sub-samples its sentence 32 tokens at a time (a ballot ranks the tokens that need a draw, so draw k of the
//      stream goes to the k-th such token, as on the CPU) and compacts the kept ids into a scratch buffer;
//   2. walks the kept positions in order, with the input rows of the window's context words cached in shared
//      memory (FULL-W2V, Ji et al.): a row is read from w_in when its position enters the window [i - window,
//      i + window] and written back once when it leaves; a word at several positions of the window shares one
//      cache slot (reference counted), so within a sentence every read sees every earlier update, exactly as the
//      sequential CPU kernel. Output rows (center and negatives) are read and written in global memory.
//      Dot products: each lane owns the columns lane, lane + 32, ... of every row and the warp adds the 32 partial
//      sums with shuffles; a lane only ever writes its own columns, so no update within a warp races.
//   shared_negatives (HogBatch): scores of all contexts x targets from the values before the update, then
//      T += G^T X (global rows, one lane per column in slot order: repeated targets add up) and X += G T_old.
//   per-pair negatives (word2vec): targets one after the other (w_out[t] updated at once, a repeated target sees
//      the update), w_in[x] += sum_t g_t w_out[t] after the pair's targets.
// Sigmoid: the CPU's table (copied once per device into constant memory; every lane of a warp reads the same
// entry) or the exact functions, the same code as on the CPU (csrc/include/embedfast/sigmoid.h).
// Checks: the CPU's structural checks (check_sgns_train_structure) and its value checks, computed on the device
// with one read-back before training (so bad input never touches the tables); the divergence check reads the
// loss back after training. Both are skipped while a CUDA graph is being captured; the kernel stays in bounds on
// any input (a sentence with bad offsets is skipped, a bad id or alias entry is dropped).
// Limits beyond the CPU's: the cache and the target rows must fit in the GPU's shared memory (checked, with the
// sizes in the message).
//
// sgns_loss: one warp per example (dot products as above). sgns_loss_backward: the coefficients per (example,
// target) in one kernel, then each gradient row is reduced once, deterministically and without atomics: the
// contributions are sorted by row (stable), and one warp per run of equal rows adds them in their original order.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <string>

#include "embedfast/common.h"
#include "embedfast/cuda.cuh"
#include "embedfast/rng.h"
#include "embedfast/sgns_args.h"
#include "embedfast/sigmoid.h"

namespace embedfast {

namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kPartStats = 5;  // per sentence: loss, pairs, negatives, negatives skipped, kept tokens

// The CPU's sigmoid table, one copy per device (SigmoidTable has a constructor, so it is kept as raw words).
__constant__ float c_sigmoid_table[sizeof(SigmoidTable) / sizeof(float)];
static_assert(sizeof(SigmoidTable) % sizeof(float) == 0, "SigmoidTable is made of floats");

void upload_sigmoid_table(int device) {
  static std::array<std::once_flag, 64> once;
  TORCH_CHECK(device >= 0 && device < 64, "sgns_train: CUDA device index ", device, " is out of range");
  std::call_once(once[device], [] {
    C10_CUDA_CHECK(cudaMemcpyToSymbol(c_sigmoid_table, &sigmoid_table(), sizeof(SigmoidTable)));
  });
}

__device__ __forceinline__ const SigmoidTable& device_table() {
  return *reinterpret_cast<const SigmoidTable*>(c_sigmoid_table);
}

template <bool kExact>
__device__ __forceinline__ void sig_logsig(float f, float& s, float& ls) {
  if constexpr (kExact) {
    s = sigmoid_exact(f);
    ls = log_sigmoid_exact_flagged(f);
  } else {
    device_table().both(f, s, ls);
  }
}
template <bool kExact>
__device__ __forceinline__ float sig(float f) {
  if constexpr (kExact) return sigmoid_exact(f);
  else return device_table().sigmoid(f);
}
template <bool kExact>
__device__ __forceinline__ float logsig(float f) {
  if constexpr (kExact) return log_sigmoid_exact_flagged(f);
  else return device_table().log_sigmoid(f);
}

struct TrainParams {
  float* w_in;
  float* w_out;
  const int32_t* ids;
  const int64_t* off;
  const double* keep;
  const int64_t* thr;
  const int32_t* alias;
  int32_t* scratch;
  double* part;
  int64_t S, n_ids, V, D, window, negative;
  uint64_t seed, chunk;
  double alpha, min_alpha, words_done, total_words;
};

// Shared memory of one warp: floats, then ints (the layout of train_kernel).
struct WarpSmem {
  int64_t floats, ints;
  int64_t bytes() const { return ((floats * 4 + ints * 4) + 15) / 16 * 16; }
};

WarpSmem warp_smem(int64_t D, int64_t window, int64_t negative, bool shared) {
  const int64_t R = 2 * window + 1, NT = negative + 1;
  WarpSmem w;
  w.floats = R * D + (shared ? NT * D + 2 * window * NT : D);
  w.ints = 3 * R + NT + 2 * window;
  return w;
}

// The targets of one (center, draws ctr .. ctr + NEG) in order: tids[0] = c, then the negatives not equal to c.
// Returns the number of targets; adds the skipped draws to nskip (lane 0's count is the one kept).
__device__ __forceinline__ int draw_targets(const TrainParams& p, uint64_t key, uint64_t ctr, int32_t c,
                                            int32_t* tids, int lane, int64_t& nskip) {
  if (lane == 0) tids[0] = c;
  int nt = 1;
  for (int64_t k0 = 0; k0 < p.negative; k0 += 32) {
    const int64_t k = k0 + lane;
    const bool act = k < p.negative;
    int32_t t = c;
    if (act) {
      t = alias_pick(draw_at(key, ctr + uint64_t(k)), uint32_t(p.V), p.thr, p.alias);
      if (uint32_t(t) >= uint32_t(p.V)) t = c;  // a bad alias entry (only reachable unchecked, under capture)
    }
    const bool ok = act && t != c;
    const unsigned okm = __ballot_sync(kFullMask, ok);
    const unsigned actm = __ballot_sync(kFullMask, act);
    if (ok) tids[nt + __popc(okm & lanes_below(lane))] = t;
    nt += __popc(okm);
    nskip += __popc(actm) - __popc(okm);
  }
  __syncwarp();
  return nt;
}

template <bool kShared, bool kExact>
__global__ void train_kernel(TrainParams p, int64_t smem_floats_per_warp, int64_t smem_bytes_per_warp) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t s = int64_t(blockIdx.x) * (blockDim.x >> 5) + warp;
  if (s >= p.S) return;
  const int64_t first = p.off[0], b0 = p.off[s], b1 = p.off[s + 1];
  double* out = p.part + s * kPartStats;
  if (b0 < first || b1 < b0 || b1 > p.n_ids || first < 0) {  // unchecked bad offsets (capture): skip
    if (lane == 0)
      for (int q = 0; q < kPartStats; ++q) out[q] = 0;
    return;
  }
  const int64_t D = p.D, W = p.window, R = 2 * W + 1, NT = p.negative + 1;
  float* base = reinterpret_cast<float*>(smem_raw + warp * smem_bytes_per_warp);
  float* cache = base;                       // R rows of D: the window's context rows
  float* Ts = cache + R * D;                 // shared: NT target rows
  float* G = Ts + NT * D;                    // shared: 2W x NT gradients
  float* neu1e = cache + R * D;              // per pair: D
  int32_t* ib = reinterpret_cast<int32_t*>(base + smem_floats_per_warp);
  int32_t* slot_word = ib;                   // R
  int32_t* slot_cnt = slot_word + R;         // R
  int32_t* pos_slot = slot_cnt + R;          // R: slot of kept position j at j % R
  int32_t* tids = pos_slot + R;              // NT
  int32_t* xs = tids + NT;                   // 2W: slots of the contexts of the current center

  const uint64_t key = stream_key(p.seed, p.chunk, uint64_t(s));
  uint64_t ctr = 0;
  float alpha;
  {
    const double done = p.words_done + double(b0 - first);
    const double progress = fmin(1.0, done / p.total_words);
    alpha = float(p.alpha - (p.alpha - p.min_alpha) * progress);
  }
  // 1. sub-sampling
  int32_t* sent = p.scratch + (b0 - first);
  int64_t nk = 0;
  for (int64_t t0 = b0; t0 < b1; t0 += 32) {
    const int64_t q = t0 + lane;
    const bool in = q < b1;
    const int32_t w = in ? p.ids[q] : 0;
    const bool valid = in && uint32_t(w) < uint32_t(p.V);
    const double kp = valid ? p.keep[w] : 1.0;
    const bool need = valid && kp < 1.0;
    const unsigned needm = __ballot_sync(kFullMask, need);
    bool kept = valid;
    if (need) {
      const uint64_t r = draw_at(key, ctr + uint64_t(__popc(needm & lanes_below(lane))));
      kept = double(r >> 11) * (1.0 / 9007199254740992.0) < kp;
    }
    ctr += uint64_t(__popc(needm));
    const unsigned keptm = __ballot_sync(kFullMask, kept);
    if (kept) sent[nk + __popc(keptm & lanes_below(lane))] = w;
    nk += __popc(keptm);
  }
  __syncwarp();

  // 2. centers in order, context rows cached
  for (int64_t r = lane; r < R; r += 32) slot_cnt[r] = 0;
  __syncwarp();
  auto enter = [&](int64_t j) {
    const int32_t w = sent[j];
    int found = -1, free_slot = -1;
    for (int64_t r0 = 0; r0 < R && found < 0; r0 += 32) {
      const int64_t r = r0 + lane;
      const bool in = r < R;
      const int cnt = in ? slot_cnt[r] : 1;
      const unsigned same = __ballot_sync(kFullMask, in && cnt > 0 && slot_word[r] == w);
      const unsigned fr = __ballot_sync(kFullMask, in && cnt == 0);
      if (same) found = int(r0) + __ffs(same) - 1;
      else if (fr && free_slot < 0) free_slot = int(r0) + __ffs(fr) - 1;
    }
    int f = found;
    if (f < 0) {
      f = free_slot;  // at most R positions are cached at once, so a slot is free
      const float* src = p.w_in + int64_t(w) * D;
      float* dst = cache + int64_t(f) * D;
      for (int64_t col = lane; col < D; col += 32) dst[col] = src[col];
    }
    __syncwarp();
    if (lane == 0) {
      if (found < 0) {
        slot_word[f] = w;
        slot_cnt[f] = 1;
      } else {
        slot_cnt[f] += 1;
      }
      pos_slot[j % R] = f;
    }
    __syncwarp();
  };
  auto leave = [&](int64_t j) {
    const int f = pos_slot[j % R];
    const int cnt = slot_cnt[f] - 1;
    __syncwarp();
    if (cnt == 0) {
      float* dst = p.w_in + int64_t(slot_word[f]) * D;
      const float* src = cache + int64_t(f) * D;
      for (int64_t col = lane; col < D; col += 32) dst[col] = src[col];
    }
    __syncwarp();
    if (lane == 0) slot_cnt[f] = cnt;
    __syncwarp();
  };

  double loss = 0;
  int64_t pairs = 0, nneg = 0, nskip = 0;
  for (int64_t j = 0; j < nk && j <= W; ++j) enter(j);
  for (int64_t i = 0; i < nk; ++i) {
    if (i > 0) {
      if (i - W - 1 >= 0) leave(i - W - 1);
      if (i + W < nk) enter(i + W);
    }
    const uint64_t rb = draw_at(key, ctr);
    ctr += 1;
    const int64_t b = W - int64_t(rb % uint64_t(W));
    const int32_t c = sent[i];
    const int64_t lo = i - b > 0 ? i - b : 0, hi = i + b + 1 < nk ? i + b + 1 : nk;
    if constexpr (kShared) {
      const int nt = draw_targets(p, key, ctr, c, tids, lane, nskip);
      ctr += uint64_t(p.negative);
      const int64_t nc = hi - lo - 1;
      if (nc <= 0) continue;
      for (int64_t q = lane; q < nc; q += 32) {
        const int64_t j = lo + q + (lo + q >= i ? 1 : 0);
        xs[q] = pos_slot[j % R];
      }
      for (int t = 0; t < nt; ++t) {
        const float* src = p.w_out + int64_t(tids[t]) * D;
        for (int64_t col = lane; col < D; col += 32) Ts[t * D + col] = src[col];
      }
      __syncwarp();
      for (int64_t x = 0; x < nc; ++x) {
        const float* xr = cache + int64_t(xs[x]) * D;
        for (int t = 0; t < nt; ++t) {
          float acc = 0.f;
          for (int64_t col = lane; col < D; col += 32) acc += xr[col] * Ts[t * D + col];
          const float f = warp_sum(acc);
          float sf, lsf;
          sig_logsig<kExact>(f, sf, lsf);
          if (lane == 0) {
            if (t == 0) {
              loss -= lsf;
              G[x * nt + t] = alpha * (1.0f - sf);
            } else {
              loss -= lsf - f;
              G[x * nt + t] = -alpha * sf;
            }
          }
        }
      }
      __syncwarp();
      // T += G^T X (X before the update), one lane per column, targets in slot order
      for (int t = 0; t < nt; ++t) {
        float* dst = p.w_out + int64_t(tids[t]) * D;
        for (int64_t col = lane; col < D; col += 32) {
          float acc = 0.f;
          for (int64_t x = 0; x < nc; ++x) acc += G[x * nt + t] * cache[int64_t(xs[x]) * D + col];
          dst[col] += acc;
        }
      }
      // X += G T_old
      for (int64_t x = 0; x < nc; ++x) {
        float* xr = cache + int64_t(xs[x]) * D;
        for (int64_t col = lane; col < D; col += 32) {
          float acc = 0.f;
          for (int t = 0; t < nt; ++t) acc += G[x * nt + t] * Ts[t * D + col];
          xr[col] += acc;
        }
      }
      __syncwarp();
      pairs += nc;
      nneg += nc * (nt - 1);
    } else {
      float* out_c = p.w_out + int64_t(c) * D;
      for (int64_t j = lo; j < hi; ++j) {
        if (j == i) continue;
        float* in_x = cache + int64_t(pos_slot[j % R]) * D;
        const int nt = draw_targets(p, key, ctr, c, tids, lane, nskip);
        ctr += uint64_t(p.negative);
        for (int64_t col = lane; col < D; col += 32) neu1e[col] = 0.f;
        for (int t = 0; t < nt; ++t) {
          float* out_t = t == 0 ? out_c : p.w_out + int64_t(tids[t]) * D;
          float acc = 0.f;
          for (int64_t col = lane; col < D; col += 32) acc += in_x[col] * out_t[col];
          const float f = warp_sum(acc);
          if (lane == 0) loss -= logsig<kExact>(t == 0 ? f : -f);
          const float g = alpha * ((t == 0 ? 1.0f : 0.0f) - sig<kExact>(f));
          for (int64_t col = lane; col < D; col += 32) {
            neu1e[col] += g * out_t[col];
            out_t[col] += g * in_x[col];
          }
        }
        for (int64_t col = lane; col < D; col += 32) in_x[col] += neu1e[col];
        __syncwarp();
        pairs += 1;
        nneg += nt - 1;
      }
    }
  }
  for (int64_t j = nk - 1 - W > 0 ? nk - 1 - W : 0; j < nk; ++j) leave(j);
  if (lane == 0) {
    out[0] = loss;
    out[1] = double(pairs);
    out[2] = double(nneg);
    out[3] = double(nskip);
    out[4] = double(nk);
  }
}

// The CPU op's value checks (csrc/cpu/word2vec_sgns.cpp), on the device, with the CPU's messages and order.
void check_train_values(const char* op, const at::Tensor& ids, const at::Tensor& off, const at::Tensor& keep,
                        const at::Tensor& thr, const at::Tensor& alias, int64_t V) {
  const int64_t n = ids.numel(), S = off.numel() - 1;
  const auto off_bad = (off < 0).logical_or_(off > n);
  const auto dec = S > 0 ? at::cat({at::zeros({1}, off.options().dtype(at::kBool)),
                                    off.slice(0, 1).lt(off.slice(0, 0, S))})
                         : at::zeros({1}, off.options().dtype(at::kBool));
  const auto s_range = first_true(off_bad), s_dec = first_true(dec);
  if (s_range >= 0 && (s_dec < 0 || s_range <= s_dec))
    TORCH_CHECK_INDEX(false, op, ": sentence_offsets[", s_range, "] = ", off[s_range].item<int64_t>(),
                      " is outside [0, len(ids)=", n, "]");
  if (s_dec >= 0)
    TORCH_CHECK_VALUE(false, op, ": 'sentence_offsets' must be non-decreasing, but [", s_dec, "] = ",
                      off[s_dec].item<int64_t>(), " < [", s_dec - 1, "] = ", off[s_dec - 1].item<int64_t>());
  const auto pos = at::arange(n, off.options());
  const auto inside = pos.ge(off[0]).logical_and_(pos.lt(off[S]));
  const auto p = first_true(inside.logical_and_((ids < 0).logical_or_(ids >= V)));
  if (p >= 0)
    TORCH_CHECK_INDEX(false, op, ": 'ids' has value ", ids[p].item<int32_t>(), " at position ", p,
                      ", outside the vocabulary [0, ", V, ")");
  const auto v_keep = first_true(keep.ge(0).logical_not_());
  const auto v_thr = first_true((thr < 0).logical_or_(thr > (int64_t(1) << 32)));
  const auto v_alias = first_true((alias < 0).logical_or_(alias >= V));
  auto before = [](int64_t a, int64_t b) { return a >= 0 && (b < 0 || a <= b); };
  if (before(v_keep, v_thr) && before(v_keep, v_alias))
    TORCH_CHECK_VALUE(false, op, ": keep_prob[", v_keep, "] = ", keep[v_keep].item<double>(),
                      " must be a probability >= 0 (values >= 1 keep every occurrence)");
  if (before(v_thr, v_alias))
    TORCH_CHECK_VALUE(false, op, ": neg_threshold[", v_thr, "] = ", thr[v_thr].item<int64_t>(),
                      " is outside [0, 2^32]");
  if (v_alias >= 0)
    TORCH_CHECK_INDEX(false, op, ": neg_alias[", v_alias, "] = ", alias[v_alias].item<int32_t>(),
                      " is outside [0, ", V, ")");
}

at::Tensor sgns_train_cuda(at::Tensor& w_in, at::Tensor& w_out, const at::Tensor& ids,
                           const at::Tensor& sentence_offsets, const at::Tensor& keep_prob,
                           const at::Tensor& neg_threshold, const at::Tensor& neg_alias, int64_t window,
                           int64_t negative, double alpha, double min_alpha, int64_t words_done, int64_t total_words,
                           int64_t seed, int64_t chunk, int64_t num_threads, bool shared_negatives,
                           bool exact_sigmoid) {
  const char* op = "sgns_train";
  TORCH_CHECK_VALUE(w_in.is_cuda(), op, ": argument 'w_in' must be a CUDA tensor here, got ", w_in.device());
  check_sgns_train_structure(op, w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window,
                             negative, alpha, min_alpha, words_done, total_words, num_threads, w_in.device());
  const c10::cuda::CUDAGuard guard(w_in.device());
  const int64_t V = w_in.size(0), D = w_in.size(1), S = sentence_offsets.numel() - 1;
  const WarpSmem ws = warp_smem(D, window, negative, shared_negatives);
  const int device = w_in.get_device();
  int max_smem = 0;
  C10_CUDA_CHECK(cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  TORCH_CHECK_VALUE(ws.bytes() <= max_smem, op, ": the CUDA kernel keeps 2 * window + 1 context rows",
                    shared_negatives ? " and negative + 1 target rows" : "", " of dim ", D,
                    " in shared memory: window=", window, ", negative=", negative, ", dim=", D, " need ", ws.bytes(),
                    " bytes per sentence, more than this GPU's ", max_smem, " (use a smaller window or the CPU "
                    "backend)");
  const bool capturing = stream_capturing();
  int64_t n_tok = ids.numel();
  if (!capturing) {
    check_train_values(op, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, V);
    n_tok = S > 0 ? (sentence_offsets[S] - sentence_offsets[0]).item<int64_t>() : 0;
  }
  const auto dopt = w_in.options().dtype(at::kDouble);
  auto part = at::zeros({std::max<int64_t>(S, 1), kPartStats}, dopt);
  if (S > 0) {
    upload_sigmoid_table(device);
    auto scratch = at::empty({std::max<int64_t>(n_tok, 1)}, ids.options());
    TrainParams prm{w_in.data_ptr<float>(), w_out.data_ptr<float>(), ids.data_ptr<int32_t>(),
                    sentence_offsets.data_ptr<int64_t>(), keep_prob.data_ptr<double>(),
                    neg_threshold.data_ptr<int64_t>(), neg_alias.data_ptr<int32_t>(), scratch.data_ptr<int32_t>(),
                    part.data_ptr<double>(), S, ids.numel(), V, D, window, negative, uint64_t(seed), uint64_t(chunk),
                    alpha, min_alpha, double(words_done), double(total_words)};
    const int64_t per_warp = ws.bytes();
    // kWarpsPerBlock sentences per block, fewer when their shared memory does not fit (at least one: checked)
    const int warps = int(std::min<int64_t>(kWarpsPerBlock, max_smem / per_warp));
    const size_t smem = size_t(per_warp) * warps;
    auto kernel = shared_negatives ? (exact_sigmoid ? &train_kernel<true, true> : &train_kernel<true, false>)
                                   : (exact_sigmoid ? &train_kernel<false, true> : &train_kernel<false, false>);
    if (smem > 48 * 1024)
      C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    kernel<<<unsigned((S + warps - 1) / warps), 32 * warps, smem, at::cuda::getCurrentCUDAStream()>>>(
        prm, ws.floats, per_warp);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  // stats, on the device (no read-back under capture)
  const auto sums = part.sum(0);
  const auto first = sentence_offsets[0];
  const auto tokens = (sentence_offsets[S] - first).to(at::kDouble);
  at::Tensor last_alpha;
  if (S > 0) {
    const auto progress = ((double(words_done) + (sentence_offsets[S - 1] - first).to(at::kDouble)) /
                           double(total_words)).clamp_max(1.0);
    last_alpha = (alpha - (alpha - min_alpha) * progress).to(at::kFloat).to(at::kDouble);
  } else {
    last_alpha = at::full({}, alpha, dopt);
  }
  auto stats = at::stack({sums[0], sums[1], sums[2], sums[3], tokens, sums[4], at::full({}, double(S), dopt),
                          last_alpha});
  if (!capturing && S > 0) {
    const auto host = stats.slice(0, 0, 2).cpu();
    const double loss = host[0].item<double>();
    if (!std::isfinite(loss))
      raise_diverged(op, loss, host[1].item<double>(), alpha, min_alpha, sgns_mode(shared_negatives, exact_sigmoid));
  }
  return stats;
}

// ---- differentiable loss ------------------------------------------------------------------------------

template <typename T>
__global__ void loss_fwd_kernel(T* __restrict__ loss, const T* __restrict__ wi, const T* __restrict__ wo,
                                const int64_t* __restrict__ ce, const int64_t* __restrict__ co,
                                const int64_t* __restrict__ ne, int64_t B, int64_t K, int64_t D, int64_t Vi,
                                int64_t Vo) {
  const int lane = threadIdx.x & 31;
  const int64_t b = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (b >= B) return;
  const int64_t c = ce[b];
  bool ok = c >= 0 && c < Vi;
  for (int64_t k = -1; k < K; ++k) {
    const int64_t row = k < 0 ? co[b] : ne[b * K + k];
    ok = ok && row >= 0 && row < Vo;
  }
  if (!ok) {  // an unchecked bad index (under capture): NaN
    if (lane == 0) loss[b] = T(NAN);
    return;
  }
  const T* u = wi + c * D;
  T l = 0;
  for (int64_t k = -1; k < K; ++k) {
    const int64_t row = k < 0 ? co[b] : ne[b * K + k];
    const T* v = wo + row * D;
    T acc = 0;
    for (int64_t col = lane; col < D; col += 32) acc += u[col] * v[col];
    const T f = warp_sum(acc);
    l -= log_sigmoid_exact<T>(k < 0 ? f : -f);
  }
  if (lane == 0) loss[b] = l;
}

// coef[b, 0] = grad[b] (sigmoid(s) - 1) for the context, coef[b, 1 + k] = grad[b] sigmoid(s_k) for the negatives
template <typename T>
__global__ void loss_coef_kernel(T* __restrict__ coef, const T* __restrict__ grad, const T* __restrict__ wi,
                                 const T* __restrict__ wo, const int64_t* __restrict__ ce,
                                 const int64_t* __restrict__ co, const int64_t* __restrict__ ne, int64_t B, int64_t K,
                                 int64_t D, int64_t Vi, int64_t Vo) {
  const int lane = threadIdx.x & 31;
  const int64_t b = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (b >= B) return;
  const int64_t c = ce[b];
  for (int64_t k = -1; k < K; ++k) {
    const int64_t row = k < 0 ? co[b] : ne[b * K + k];
    T cf = 0;
    if (c >= 0 && c < Vi && row >= 0 && row < Vo) {
      T acc = 0;
      for (int64_t col = lane; col < D; col += 32) acc += wi[c * D + col] * wo[row * D + col];
      const T f = warp_sum(acc);
      cf = grad[b] * (sigmoid_exact(f) - (k < 0 ? T(1) : T(0)));
    }
    if (lane == 0) coef[b * (K + 1) + 1 + k] = cf;
  }
}

// One warp per run of equal keys in `keys` (sorted): dst[keys[i]] = sum over the run, in order, of
// coef[perm[i]] * src[src_row(perm[i])]. Contribution q = b * (K + 1) + j (j = 0: context, 1 + k: negative k).
// to_in: the w_in gradient (key = centers[b], source row w_out[target]); else the w_out gradient (key = target,
// source row w_in[centers[b]]).
template <typename T>
__global__ void loss_reduce_kernel(T* __restrict__ dst, const int64_t* __restrict__ keys,
                                   const int64_t* __restrict__ perm, const T* __restrict__ coef,
                                   const T* __restrict__ src, const int64_t* __restrict__ ce,
                                   const int64_t* __restrict__ co, const int64_t* __restrict__ ne, int64_t P,
                                   int64_t K, int64_t D, int64_t Vdst, int64_t Vsrc, bool to_in) {
  const int lane = threadIdx.x & 31;
  const int64_t i0 = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  if (i0 >= P || (i0 > 0 && keys[i0 - 1] == keys[i0])) return;
  const int64_t key = keys[i0];
  if (key < 0 || key >= Vdst) return;
  int64_t i1 = i0 + 1;
  while (i1 < P && keys[i1] == key) ++i1;
  for (int64_t col0 = 0; col0 < D; col0 += 32 * 4) {
    T acc[4] = {0, 0, 0, 0};
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t q = perm[i], b = q / (K + 1), j = q % (K + 1);
      const int64_t target = j == 0 ? co[b] : ne[b * K + j - 1];
      const int64_t srow = to_in ? target : ce[b];
      if (srow < 0 || srow >= Vsrc) continue;
      const T cf = coef[q];
      const T* s = src + srow * D;
#pragma unroll
      for (int u = 0; u < 4; ++u) {
        const int64_t col = col0 + u * 32 + lane;
        if (col < D) acc[u] += cf * s[col];
      }
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int64_t col = col0 + u * 32 + lane;
      if (col < D) dst[key * D + col] = acc[u];
    }
  }
}

struct LossInputs {
  at::Tensor wi, wo, ce, co, ne;
  int64_t B, K, D;
};

LossInputs loss_inputs(const at::Tensor& w_in, const at::Tensor& w_out, const at::Tensor& centers,
                       const at::Tensor& contexts, const at::Tensor& negatives, const char* op) {
  TORCH_CHECK_VALUE(w_in.is_cuda(), op, ": argument 'w_in' must be a CUDA tensor here, got ", w_in.device());
  // no read-back under capture: the structural checks only (the kernels give NaN / skip out-of-range rows)
  check_sgns_loss_args(w_in, w_out, centers, contexts, negatives, op, w_in.device(), !stream_capturing());
  LossInputs r{w_in.contiguous(), w_out.contiguous(), centers.to(at::kLong).contiguous(),
               contexts.to(at::kLong).contiguous(), negatives.to(at::kLong).contiguous(), 0, 0, 0};
  r.B = r.ce.numel();
  r.K = r.ne.size(1);
  r.D = r.wi.size(1);
  return r;
}

at::Tensor sgns_loss_cuda(const at::Tensor& w_in, const at::Tensor& w_out, const at::Tensor& centers,
                          const at::Tensor& contexts, const at::Tensor& negatives) {
  const c10::cuda::CUDAGuard guard(w_in.device());
  const LossInputs a = loss_inputs(w_in, w_out, centers, contexts, negatives, "sgns_loss");
  auto loss = at::empty({a.B}, a.wi.options());
  if (a.B == 0) return loss;
  AT_DISPATCH_FLOATING_TYPES(a.wi.scalar_type(), "sgns_loss_cuda", [&] {
    loss_fwd_kernel<scalar_t><<<blocks_for(a.B * 32, 256), 256, 0, at::cuda::getCurrentCUDAStream()>>>(
        loss.data_ptr<scalar_t>(), a.wi.data_ptr<scalar_t>(), a.wo.data_ptr<scalar_t>(), a.ce.data_ptr<int64_t>(),
        a.co.data_ptr<int64_t>(), a.ne.data_ptr<int64_t>(), a.B, a.K, a.D, a.wi.size(0), a.wo.size(0));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return loss;
}

std::tuple<at::Tensor, at::Tensor> sgns_loss_backward_cuda(const at::Tensor& grad, const at::Tensor& w_in,
                                                           const at::Tensor& w_out, const at::Tensor& centers,
                                                           const at::Tensor& contexts, const at::Tensor& negatives) {
  const char* op = "sgns_loss_backward";
  const c10::cuda::CUDAGuard guard(w_in.device());
  const LossInputs a = loss_inputs(w_in, w_out, centers, contexts, negatives, op);
  check_device(grad, w_in.device(), op, "grad");
  check_dtype(grad, w_in.scalar_type(), op, "grad");
  TORCH_CHECK_VALUE(grad.dim() == 1 && grad.size(0) == centers.size(0), op, ": 'grad' must have shape [",
                    centers.size(0), "], got ", grad.sizes());
  auto g_in = at::zeros_like(a.wi);
  auto g_out = at::zeros_like(a.wo);
  if (a.B == 0) return {g_in, g_out};
  const auto gr = grad.contiguous();
  const int64_t P = a.B * (a.K + 1);
  auto coef = at::empty({P}, a.wi.options());
  // the rows each contribution goes to: centers[b] for w_in, the target for w_out (stable sorts keep the order)
  const auto in_keys = a.ce.unsqueeze(1).expand({a.B, a.K + 1}).reshape({P});
  const auto out_keys = at::cat({a.co.unsqueeze(1), a.ne}, 1).reshape({P});
  const auto in_sorted = at::sort(in_keys, /*stable=*/true, 0, false);
  const auto out_sorted = at::sort(out_keys, /*stable=*/true, 0, false);
  auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(a.wi.scalar_type(), "sgns_loss_backward_cuda", [&] {
    loss_coef_kernel<scalar_t><<<blocks_for(a.B * 32, 256), 256, 0, stream>>>(
        coef.data_ptr<scalar_t>(), gr.data_ptr<scalar_t>(), a.wi.data_ptr<scalar_t>(), a.wo.data_ptr<scalar_t>(),
        a.ce.data_ptr<int64_t>(), a.co.data_ptr<int64_t>(), a.ne.data_ptr<int64_t>(), a.B, a.K, a.D, a.wi.size(0),
        a.wo.size(0));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    for (const bool to_in : {true, false}) {
      const auto& sorted = to_in ? in_sorted : out_sorted;
      const auto keys = std::get<0>(sorted).contiguous(), perm = std::get<1>(sorted).contiguous();
      auto& dst = to_in ? g_in : g_out;
      loss_reduce_kernel<scalar_t><<<blocks_for(P * 32, 256), 256, 0, stream>>>(
          dst.data_ptr<scalar_t>(), keys.data_ptr<int64_t>(), perm.data_ptr<int64_t>(), coef.data_ptr<scalar_t>(),
          (to_in ? a.wo : a.wi).data_ptr<scalar_t>(), a.ce.data_ptr<int64_t>(), a.co.data_ptr<int64_t>(),
          a.ne.data_ptr<int64_t>(), P, a.K, a.D, dst.size(0), (to_in ? a.wo : a.wi).size(0), to_in);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return {g_in, g_out};
}

}  // namespace

TORCH_LIBRARY_IMPL(embedfast, CUDA, m) {
  m.impl("sgns_train", &sgns_train_cuda);
  m.impl("sgns_loss", &sgns_loss_cuda);
  m.impl("sgns_loss_backward", &sgns_loss_backward_cuda);
}

}  // namespace embedfast
