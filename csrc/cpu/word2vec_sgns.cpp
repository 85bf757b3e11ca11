// embedfast SGNS (word2vec skip-gram with negative sampling) on the CPU.
//
// sgns_train: the fused training op. Over a chunk of the encoded corpus (a slice of sentence offsets into the
// int32 ids) it does, in one pass per sentence: frequent-word sub-sampling, the randomly shrunk window,
// negative draws (alias sampling from unigram^ns_exponent), sigmoid, gradient and the in-place update of
// w_in and w_out. The sentences are split into parts of about equal token count (train_parts: one part with one
// thread, more parts than threads otherwise), which the `num_threads` threads take as they become free (Hogwild:
// rows are updated without locks); each part has its own random stream stream_key(seed, chunk, part)
// (embedfast/rng.h).
//
// Order of random draws in one part (the reference in tests/test_sgns.py replays it):
//   for each sentence:      for each token w with keep_prob[w] < 1: one draw u, keep when uniform(u) < keep_prob[w]
//                           then for each kept position i (center c):
//                             one draw r: reduced window b = window - (r % window)   (1..window)
//                             shared_negatives: `negative` draws (alias), shared by all contexts of c
//                             per context j in [i-b, i+b], j != i, in increasing order:
//                               not shared: `negative` draws (alias) for this pair
// A negative equal to c is skipped (counted in stats), as in word2vec.
// Update per (context word x, center c, negatives n_k), word2vec's direction: the input row is w_in[x] and the
// targets are w_out[c] (label 1) and w_out[n_k] (label 0):
//   not shared (word2vec): for each target t in order: g = alpha * (label - sigmoid(w_in[x].w_out[t]));
//       e += g * w_out[t]; w_out[t] += g * w_in[x]; after the targets: w_in[x] += e.
//   shared (HogBatch, Ji et al. 2016): for the center, all contexts x_j and targets t_k at once, from the values
//       before the update: G = alpha * (labels - sigmoid(X T^T)); T += G^T X; X += G T_old.
// Learning rate: alpha_s = alpha - (alpha - min_alpha) * min(1, done_s / total_words), recomputed per sentence,
// where done_s = words_done + chunk_tokens * (start of s - start of the part) / (tokens of the part): every part
// advances through the run's schedule at the same rate, so the schedule does not depend on thread timing.
//
// Divergence: the loss of the call is the sum of the log-sigmoids of every score, and those are non-finite for
// every non-finite score (embedfast/sigmoid.h), so a NaN/inf score anywhere (too large a learning rate, or
// non-finite weights passed in) makes the loss non-finite. The op then raises (ValueError "sgns_train: training
// diverged ...") instead of returning stats: no check in the hot loop, one test per call. A row that turns
// non-finite after its last read in a call is caught by the first later call that reads it.
//
// Sizes: window, negative and num_threads are bounded (kMaxWindow, kMaxNegative, kMaxThreads); the per-thread
// buffers are sized by min(2 * window, longest sentence of the chunk), and their total is checked against the
// machine's memory before anything is allocated.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "embedfast/common.h"
#include "embedfast/parallel.h"
#include "embedfast/rng.h"
#include "embedfast/sgns_args.h"
#include "embedfast/sgns_train.h"
#include "embedfast/sigmoid.h"
#include "embedfast/vecops.h"

namespace embedfast {

namespace {

template <bool kExact, bool kShared>
void train_part(const TrainArgs& a, int64_t s_begin, int64_t s_end, int part, PartResult& res) {
  const SigmoidTable& tab = sigmoid_table();
  CounterRng rng(stream_key(a.seed, a.chunk, uint64_t(part)));
  const int64_t D = a.dim;
  const int64_t part_first = a.offsets[s_begin];
  const double part_tokens = double(a.offsets[s_end] - part_first);
  // work buffers (their total is checked against the machine's memory by sgns_train before the parts start)
  std::vector<int32_t> sent;
  std::vector<float> neu1e;
  // HogBatch buffers: up to max_ctx contexts x (1 + negative) targets
  const int64_t max_ctx = kShared ? a.max_ctx : 0;
  std::vector<float> G, dX;
  std::vector<int32_t> ctx;
  std::vector<float*> xrow;
  std::vector<const float*> trow;
  std::vector<int32_t> cur_targets, nxt_targets;
  try {
    sent.reserve(size_t(a.max_sentence));
    if constexpr (kShared) {
      G.resize(size_t(max_ctx * (a.negative + 1)));
      dX.resize(size_t(max_ctx * D));
      ctx.resize(size_t(max_ctx));
      xrow.resize(size_t(max_ctx));
      trow.resize(size_t(a.negative + 1));
      cur_targets.resize(size_t(a.negative + 1));
      nxt_targets.resize(size_t(a.negative + 1));
    } else {
      neu1e.resize(size_t(D));
    }
  } catch (const std::bad_alloc&) {
    TORCH_CHECK_WITH(OutOfMemoryError, false, "sgns_train: cannot allocate the work buffers of part ", part,
                     " (", max_ctx, " contexts x ", a.negative + 1, " targets, dim ", D, ")");
  }
  int64_t cur_b = 0, cur_nt = 0;
  float alpha = float(a.alpha);
  double nskip_draw = 0;
  // shared mode: the window draw and the negatives of the center at position i of `sent`
  auto draw_center = [&](int64_t i, int64_t& b, std::vector<int32_t>& targets, int64_t& nt) {
    b = a.window - int64_t(rng.next() % uint64_t(a.window));
    const int32_t c = sent[i];
    targets[0] = c;
    nt = 1;
    for (int64_t k = 0; k < a.negative; ++k) {
      const int32_t t = alias_pick(rng.next(), a.vocab, a.neg_threshold, a.neg_alias);
      if (t == c) {
        nskip_draw += 1;
        continue;
      }
      targets[nt++] = t;
    }
  };
  double loss = 0, pairs = 0, nneg = 0, nskip = 0, kept = 0;
  for (int64_t s = s_begin; s < s_end; ++s) {
    const int64_t b0 = a.offsets[s], b1 = a.offsets[s + 1];
    {
      const double done = a.words_done + a.chunk_tokens * (double(b0 - part_first) / part_tokens);
      const double progress = std::min(1.0, done / a.total_words);
      alpha = float(a.alpha - (a.alpha - a.min_alpha) * progress);
    }
    sent.clear();
    for (int64_t p = b0; p < b1; ++p) {
      const int32_t w = a.ids[p];
      const double kp = a.keep[w];
      if (kp < 1.0 && rng.uniform() >= kp) continue;
      sent.push_back(w);
    }
    kept += double(sent.size());
    const int64_t n = int64_t(sent.size());
    for (int64_t i = 0; i < n; ++i) {
      if constexpr (kShared) {
        // draws of this center were made (and its rows prefetched) one center ahead; the stream order is
        // unchanged: [b_i, negatives_i, b_{i+1}, negatives_{i+1}, ...]
        if (i == 0) draw_center(0, cur_b, cur_targets, cur_nt);
        int64_t nxt_b = 0, nxt_nt = 0;
        if (i + 1 < n) {
          draw_center(i + 1, nxt_b, nxt_targets, nxt_nt);
          for (int64_t t = 0; t < nxt_nt; ++t) prefetch_row(a.w_out + int64_t(nxt_targets[t]) * D, D);
        }
        const int64_t b_s = cur_b, nt = cur_nt;
        const int32_t* targets_p = cur_targets.data();
        const int64_t js0 = std::max<int64_t>(0, i - b_s), js1 = std::min<int64_t>(n, i + b_s + 1);
        int64_t nc = 0;
        for (int64_t j = js0; j < js1; ++j)
          if (j != i) ctx[nc++] = sent[j];
        std::swap(cur_targets, nxt_targets);
        cur_b = nxt_b;
        cur_nt = nxt_nt;
        if (nc == 0) continue;
        const int32_t* targets = targets_p;
        // HogBatch as small matrix products, all from the values before this update:
        //   F = X T^T (nc x nt), G = alpha (labels - sigmoid(F)), dX = G T, T += G^T X, X += dX
        for (int64_t t = 0; t < nt; ++t) trow[t] = a.w_out + int64_t(targets[t]) * D;
        for (int64_t x = 0; x < nc; ++x) xrow[x] = a.w_in + int64_t(ctx[x]) * D;
        for (int64_t x = 0; x < nc; ++x) {
          float* g = G.data() + x * nt;
          multi_dot_f32(xrow[x], trow.data(), nt, D, g);
          for (int64_t t = 0; t < nt; ++t) {
            const float f = g[t];
            float sf, lsf;  // sigmoid(f), log sigmoid(f); log sigmoid(-f) = log sigmoid(f) - f
            sig_logsig<kExact>(f, tab, sf, lsf);
            if (t == 0) {
              loss -= lsf;
              g[t] = alpha * (1.0f - sf);
            } else {
              loss -= lsf - f;
              g[t] = -alpha * sf;
            }
          }
        }
        for (int64_t x = 0; x < nc; ++x) combine_rows_f32(dX.data() + x * D, false, G.data() + x * nt, 1, trow.data(), nt, D);
        for (int64_t t = 0; t < nt; ++t) combine_rows_f32(const_cast<float*>(trow[t]), true, G.data() + t, nt, xrow.data(), nc, D);
        for (int64_t x = 0; x < nc; ++x) axpy_f32(1.0f, dX.data() + x * D, xrow[x], D);
        pairs += double(nc);
        nneg += double(nc * (nt - 1));
      } else {
        const int32_t c = sent[i];
        const int64_t b = a.window - int64_t(rng.next() % uint64_t(a.window));
        float* out_c = a.w_out + int64_t(c) * D;
        const int64_t j0 = std::max<int64_t>(0, i - b), j1 = std::min<int64_t>(n, i + b + 1);
        for (int64_t j = j0; j < j1; ++j) {
          if (j == i) continue;
          float* in_x = a.w_in + int64_t(sent[j]) * D;
          std::fill(neu1e.begin(), neu1e.end(), 0.0f);
          for (int64_t k = -1; k < a.negative; ++k) {
            int32_t t;
            float label;
            if (k < 0) {
              t = c;
              label = 1.0f;
            } else {
              t = alias_pick(rng.next(), a.vocab, a.neg_threshold, a.neg_alias);
              if (t == c) {
                nskip += 1;
                continue;
              }
              label = 0.0f;
              nneg += 1;
            }
            float* out_t = (k < 0) ? out_c : a.w_out + int64_t(t) * D;
            const float f = dot_f32(in_x, out_t, D);
            loss -= logsig<kExact>(k < 0 ? f : -f, tab);
            const float g = alpha * (label - sig<kExact>(f, tab));
            axpy_f32(g, out_t, neu1e.data(), D);
            axpy_f32(g, in_x, out_t, D);
          }
          axpy_f32(1.0f, neu1e.data(), in_x, D);
          pairs += 1;
        }
      }
    }
  }
  res.loss = loss;
  res.pairs = pairs;
  res.negatives = nneg;
  res.neg_skipped = nskip + nskip_draw;
  res.tokens = double(a.offsets[s_end] - part_first);
  res.kept = kept;
  res.sentences = double(s_end - s_begin);
  res.alpha = alpha;
}

at::Tensor sgns_train(at::Tensor& w_in, at::Tensor& w_out, const at::Tensor& ids, const at::Tensor& sentence_offsets,
                      const at::Tensor& keep_prob, const at::Tensor& neg_threshold, const at::Tensor& neg_alias,
                      int64_t window, int64_t negative, double alpha, double min_alpha, int64_t words_done,
                      int64_t total_words, int64_t seed, int64_t chunk, int64_t num_threads, bool shared_negatives,
                      bool exact_sigmoid) {
  const char* op = "sgns_train";
  TrainArgs a;
  check_train_args(a, op, w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                   alpha, min_alpha, words_done, total_words, seed, chunk, num_threads);
  a.shared = shared_negatives;
  a.exact = exact_sigmoid;
  const double per_part =
      4.0 * double(a.max_sentence) +
      (shared_negatives ? double(a.max_ctx) * (4.0 * double(negative + 1) + 4.0 * double(a.dim) + 12.0) +
                              16.0 * double(negative + 1)
                        : 4.0 * double(a.dim));
  auto fn = shared_negatives ? (exact_sigmoid ? &train_part<true, true> : &train_part<false, true>)
                             : (exact_sigmoid ? &train_part<true, false> : &train_part<false, false>);
  return run_train_parts(a, int(num_threads), per_part, negative, op, sgns_mode(shared_negatives, exact_sigmoid),
                         [&](int64_t s0, int64_t s1, int p, PartResult& res) { fn(a, s0, s1, p, res); });
}

// ---- CBOW and hierarchical softmax (word2vec_train) --------------------------------------------------------
//
// Skip-gram with hierarchical softmax (kCbow false, kHs true), CBOW with negative sampling (kCbow true, kHs
// false) and CBOW with hierarchical softmax (both true); skip-gram with negative sampling is train_part above.
// Sub-sampling, the schedule and the window draw are those of train_part. Per kept center c at position i,
// after its window draw b:
//   skip-gram HS: per context j in [i-b, i+b], j != i, in increasing order: input x = w_in[sent[j]], targets the
//       inner nodes n_d of c's Huffman path (root first) with label 1 - code_d, updated in order as word2vec's
//       pairs (e += g w_out[n_d]; w_out[n_d] += g x), then x += e.
//   CBOW: h = the mean of w_in[sent[j]] over the same contexts (none: nothing trained, no draws); targets c
//       (label 1) and `negative` alias draws (a draw equal to c is skipped) for NS, or c's path for HS, updated
//       in order with h as the input (e += g w_out[t]; w_out[t] += g h); then every context row gets += e
//       (not divided by their number: word2vec's -cbow 1 and gensim's cbow_mean=1 do the same).
// So the random stream holds, per center, the window draw and (CBOW NS only) the negatives; HS draws nothing more.
// Stats: "pairs" counts the trained (context, center) pairs of skip-gram and the trained centers of CBOW;
// "negatives" the negatives used (0 for HS); the loss sums -log sigmoid(+-score) of every target.
//
// The arithmetic is that sequence of updates, regrouped (no approximation; only float rounding differs): while
// one input row stays fixed (CBOW's h; skip-gram HS's context row until its path is done) its targets run in
// fixed_input_targets (embedfast/sgns_train.h): runs of distinct targets (a Huffman path is distinct), each
// score from the rows before its run, then e and the rows in one pass. Skip-gram HS takes its contexts one at a
// time, so a context word repeated in the window sees its own earlier update, as in word2vec; the pass that
// trains one context's path also scores the next context against the rows it leaves (sg_hs_center).
// The next center's window draw, negatives and target rows are prepared one center ahead (prefetched); the
// stream order is unchanged.
constexpr int64_t kHsCachedLevels = 4;  // of a Huffman path, not prefetched (see train_part_w2v's draw)

// Hierarchical softmax with several threads: the inner nodes nearest the root are on (nearly) every path, so
// shared they would move between the cores' caches at every center. Each thread trains the rows of the n nodes
// created last by word2vec_huffman (the root is V - 2; a Huffman tree creates its nodes in order of count, so
// these are the n most used) in its own copy, and adds what it changed to w_out every kHotMerge centers and at
// the end of its part, under one lock (no change is lost); it then continues from w_out's rows, so it sees the
// other threads' changes of those rows that many centers late (Hogwild's delays, bounded). One thread trains
// w_out itself, unchanged.
constexpr int64_t kHotMerge = 64;
constexpr int64_t kHotBytes = 32768;  // of one copy (n = kHotBytes / (4 D), between 1 and 64)

class HotRows {
 public:
  // Nothing is copied unless `on`.
  void init(bool on, float* w_out, int64_t V, int64_t D) {
    out_ = OutRows{w_out, D};
    if (!on || V < 2) return;
    n_ = std::min<int64_t>(V - 1, std::clamp<int64_t>(kHotBytes / (4 * D), 1, 64));
    local_.resize(size_t(n_ * D));
    out_.hot_lo = (V - 1) - n_;
    out_.hot = local_.data();
    const float* w = w_out + out_.hot_lo * D;
    std::copy(w, w + n_ * D, local_.begin());
    base_ = local_;
  }
  const OutRows& rows() const { return out_; }
  // After each trained center: merges every kHotMerge centers.
  void center_done(std::mutex& lock) {
    if (n_ > 0 && ++since_ >= kHotMerge) merge(lock);
  }
  // w_out += local - base; local = base = w_out.
  void merge(std::mutex& lock) {
    if (n_ == 0) return;
    std::lock_guard<std::mutex> g(lock);
    float* w = out_.w_out + out_.hot_lo * out_.D;
    for (int64_t k = 0; k < n_ * out_.D; ++k) {
      w[k] += local_[k] - base_[k];
      local_[k] = base_[k] = w[k];
    }
    since_ = 0;
  }

 private:
  OutRows out_{nullptr, 0};
  int64_t n_ = 0, since_ = 0;
  std::vector<float> local_, base_;
};

// Per-thread state of train_part_w2v: the targets of the current and next center, the block buffers.
struct W2vWork {
  HotRows hot;  // HS: where w_out's rows are (OutRows)
  std::vector<int32_t> sent, ctx, cur_t, nxt_t;
  std::vector<float> h, e;         // CBOW: the input; the gradient of the fixed input (D each)
  std::vector<float*> crow, trow;  // CBOW's context rows; a run's target rows (kTargetRun)
  float g[kTargetRun];             // a run's scores, then gradients
  // skip-gram HS: a path's rows; the scores (then gradients) of the current and the next context; the partial sums
  // of exchange_dot_rows_f32 (sized by the longest path)
  std::vector<float*> path;
  std::vector<float> score, next_score, partial;
};

// Skip-gram HS for one center: each context w.ctx[0..nc) in order against the path points / codes [h0, h1) as
// one fixed input (its row does not change while its targets train), then its row += e. The pass that trains a
// context's targets also scores the next context against the rows it leaves (exchange_dot_rows_f32), unless the
// next context is the same word, whose row changes first.
template <bool kExact>
void sg_hs_center(const TrainArgs& a, W2vWork& w, int64_t nc, int64_t h0, int64_t h1, float alpha,
                  const SigmoidTable& tab, double& loss) {
  const int64_t D = a.dim, L = h1 - h0;
  if (L == 0) return;
  float** rows = w.path.data();
  for (int64_t d = 0; d < L; ++d) rows[d] = w.hot.rows()(a.hs_points[h0 + d]);
  const uint8_t* codes = a.hs_codes + h0;
  float *g = w.score.data(), *gn = w.next_score.data(), *e = w.e.data();
  float* x = a.w_in + int64_t(w.ctx[0]) * D;
  multi_dot_f32(x, rows, L, D, g);
  for (int64_t j = 0; j < nc; ++j) {
    target_grads<kExact>(g, L, codes, false, alpha, tab, loss);
    float* xn = j + 1 < nc ? a.w_in + int64_t(w.ctx[j + 1]) * D : nullptr;
    const bool fused = xn != nullptr && xn != x;
    if (fused) {
      exchange_dot_rows_f32(e, false, g, x, rows, L, D, xn, gn, w.partial.data());
      std::swap(g, gn);
    } else {
      exchange_rows_f32(e, false, g, x, rows, L, D);
    }
    axpy_f32(1.0f, e, x, D);
    if (xn != nullptr && !fused) multi_dot_f32(xn, rows, L, D, g);  // the same word: its updated row
    x = xn;
  }
}

template <bool kExact, bool kCbow, bool kHs>
void train_part_w2v(const TrainArgs& a, int64_t s_begin, int64_t s_end, int part, bool hot, std::mutex& hot_lock,
                    PartResult& res) {
  static_assert(kCbow || kHs, "skip-gram with negative sampling is train_part");
  const SigmoidTable& tab = sigmoid_table();
  CounterRng rng(stream_key(a.seed, a.chunk, uint64_t(part)));
  const int64_t D = a.dim;
  const int64_t part_first = a.offsets[s_begin];
  const double part_tokens = double(a.offsets[s_end] - part_first);
  W2vWork w;
  const int64_t max_t = kHs ? 0 : a.negative + 1;
  try {
    w.sent.reserve(size_t(a.max_sentence));
    w.ctx.resize(size_t(a.max_ctx));
    w.cur_t.resize(size_t(max_t));
    w.nxt_t.resize(size_t(max_t));
    w.h.resize(size_t(D));
    w.e.resize(size_t(D));
    w.crow.resize(size_t(kCbow ? std::max<int64_t>(a.max_ctx, 1) : 0));
    w.trow.resize(size_t(kTargetRun));
    if (kHs && !kCbow) {
      w.path.resize(size_t(a.hs_max_path));
      w.score.resize(size_t(a.hs_max_path));
      w.next_score.resize(size_t(a.hs_max_path));
      w.partial.resize(size_t(kDotPartialLanes * a.hs_max_path));
    }
    w.hot.init(kHs && hot, a.w_out, int64_t(a.vocab), D);
  } catch (const std::bad_alloc&) {
    TORCH_CHECK_WITH(OutOfMemoryError, false, "word2vec_train: cannot allocate the work buffers of part ", part,
                     " (dim ", D, ", longest sentence ", a.max_sentence, " tokens)");
  }
  float alpha = float(a.alpha);
  double loss = 0, pairs = 0, nneg = 0, nskip = 0, kept = 0;
  std::vector<int32_t>& sent = w.sent;
  int64_t n = 0;
  // the draws of the center at position i: window b, its context span [j0, j1); CBOW NS: the targets (c first,
  // then the negatives not equal to c) when it has a context; their rows are prefetched
  struct Center {
    int64_t b = 0, j0 = 0, j1 = 0, nt = 0;
  };
  auto draw = [&](int64_t i, Center& ce, std::vector<int32_t>& t) {
    ce.b = a.window - int64_t(rng.next() % uint64_t(a.window));
    ce.j0 = std::max<int64_t>(0, i - ce.b);
    ce.j1 = std::min<int64_t>(n, i + ce.b + 1);
    const int32_t c = sent[i];
    ce.nt = 0;
    if constexpr (kHs) {
      // the nodes nearest the root are on nearly every path (in cache already): not prefetched
      for (int64_t d = a.hs_offsets[c] + kHsCachedLevels; d < a.hs_offsets[c + 1]; ++d)
        prefetch_row(w.hot.rows()(a.hs_points[d]), D);
    } else if (ce.j1 - ce.j0 > 1) {
      t[0] = c;
      ce.nt = 1;
      for (int64_t k = 0; k < a.negative; ++k) {
        const int32_t x = alias_pick(rng.next(), a.vocab, a.neg_threshold, a.neg_alias);
        if (x == c) {
          nskip += 1;
          continue;
        }
        t[ce.nt++] = x;
      }
      for (int64_t k = 0; k < ce.nt; ++k) prefetch_row(a.w_out + int64_t(t[k]) * D, D);
    }
  };
  for (int64_t s = s_begin; s < s_end; ++s) {
    alpha = start_sentence(a, rng, s, part_first, part_tokens, sent, kept);
    n = int64_t(sent.size());
    Center cur, nxt;
    if (n > 0) draw(0, cur, w.cur_t);
    for (int64_t i = 0; i < n; ++i) {
      if (i + 1 < n) draw(i + 1, nxt, w.nxt_t);
      const int32_t c = sent[i];
      const int64_t nc = (cur.j1 - cur.j0) - 1;
      if (nc > 0) {
        int64_t q = 0;
        for (int64_t j = cur.j0; j < cur.j1; ++j)
          if (j != i) w.ctx[q++] = sent[j];
        if constexpr (kCbow) {
          for (int64_t r = 0; r < nc; ++r) w.crow[r] = a.w_in + int64_t(w.ctx[r]) * D;
          const float inv = 1.0f / float(nc);
          combine_rows_f32(w.h.data(), false, &inv, 0, w.crow.data(), nc, D);  // the mean of the contexts
          if constexpr (kHs) {
            const int64_t h0 = a.hs_offsets[c];
            fixed_input_targets<kExact>(w.hot.rows(), w.h.data(), w.e.data(), false, a.hs_points + h0,
                                        a.hs_codes + h0, a.hs_offsets[c + 1] - h0, true, alpha, tab, loss, w.g,
                                        w.trow.data());
          } else {
            fixed_input_targets<kExact>(OutRows{a.w_out, D}, w.h.data(), w.e.data(), false, w.cur_t.data(), nullptr,
                                        cur.nt, false, alpha, tab, loss, w.g, w.trow.data());
            nneg += double(cur.nt - 1);
          }
          for (int64_t r = 0; r < nc; ++r) axpy_f32(1.0f, w.e.data(), w.crow[r], D);
          pairs += 1;
        } else {
          sg_hs_center<kExact>(a, w, nc, a.hs_offsets[c], a.hs_offsets[c + 1], alpha, tab, loss);
          pairs += double(nc);
        }
        if constexpr (kHs) w.hot.center_done(hot_lock);
      }
      std::swap(cur, nxt);
      std::swap(w.cur_t, w.nxt_t);
    }
  }
  w.hot.merge(hot_lock);
  finish_part(res, a, s_begin, s_end, loss, pairs, nneg, nskip, kept, alpha);
}

// Checks the Huffman tables of word2vec_train (hs true): offsets [V + 1] from 0 to len(points), points in
// [0, V - 1) (the inner nodes; w_out's last row is unused), codes 0 or 1.
void check_hs_tables(TrainArgs& a, const char* op, const at::Tensor& hs_offsets, const at::Tensor& hs_points,
                     const at::Tensor& hs_codes, int64_t V) {
  check_dtype(hs_offsets, at::kLong, op, "hs_offsets");
  check_dtype(hs_points, at::kInt, op, "hs_points");
  check_dtype(hs_codes, at::kByte, op, "hs_codes");
  for (auto [t, name] : {std::pair{&hs_offsets, "hs_offsets"}, {&hs_points, "hs_points"}, {&hs_codes, "hs_codes"}}) {
    check_cpu(*t, op, name);
    check_dim(*t, 1, op, name);
    TORCH_CHECK_VALUE(t->is_contiguous(), op, ": argument '", name, "' must be contiguous");
  }
  TORCH_CHECK_VALUE(hs_offsets.size(0) == V + 1, op, ": argument 'hs_offsets' must have shape [", V + 1,
                    "] (vocabulary size + 1), got ", hs_offsets.sizes());
  const int64_t N = hs_points.size(0);
  TORCH_CHECK_VALUE(hs_codes.size(0) == N, op, ": 'hs_points' ", hs_points.sizes(), " and 'hs_codes' ",
                    hs_codes.sizes(), " must have the same length");
  const auto* ho = hs_offsets.data_ptr<int64_t>();
  TORCH_CHECK_VALUE(ho[0] == 0 && ho[V] == N, op, ": 'hs_offsets' must start at 0 and end at len(hs_points)=", N,
                    ", got ", ho[0], " ... ", ho[V]);
  a.hs_max_path = 0;
  for (int64_t v = 0; v < V; ++v) {
    TORCH_CHECK_VALUE(ho[v + 1] >= ho[v], op, ": 'hs_offsets' must be non-decreasing, but [", v + 1, "] = ",
                      ho[v + 1], " < [", v, "] = ", ho[v]);
    a.hs_max_path = std::max(a.hs_max_path, ho[v + 1] - ho[v]);
  }
  const auto* hp = hs_points.data_ptr<int32_t>();
  const auto* hc = hs_codes.data_ptr<uint8_t>();
  for (int64_t k = 0; k < N; ++k) {
    TORCH_CHECK_INDEX(hp[k] >= 0 && int64_t(hp[k]) < V - 1, op, ": hs_points[", k, "] = ", hp[k],
                      " is outside the inner nodes [0, ", V - 1, ")");
    TORCH_CHECK_VALUE(hc[k] <= 1, op, ": hs_codes[", k, "] = ", int(hc[k]), " must be 0 or 1");
  }
  // a path from the root to a leaf passes every node at most once (train_part_w2v's blocks rely on it)
  std::vector<int64_t> seen(size_t(std::max<int64_t>(V - 1, 0)), -1);  // inner node -> last position in a path
  for (int64_t v = 0; v < V; ++v)
    for (int64_t k = ho[v]; k < ho[v + 1]; ++k) {
      TORCH_CHECK_VALUE(seen[hp[k]] < ho[v], op, ": the path of word ", v, " (hs_points[", ho[v], ":", ho[v + 1],
                        "]) passes inner node ", hp[k], " twice (at ", seen[hp[k]], " and ", k, ")");
      seen[hp[k]] = k;
    }
  a.hs_offsets = ho;
  a.hs_points = hp;
  a.hs_codes = hc;
}

at::Tensor word2vec_train(at::Tensor& w_in, at::Tensor& w_out, const at::Tensor& ids,
                          const at::Tensor& sentence_offsets, const at::Tensor& keep_prob,
                          const at::Tensor& neg_threshold, const at::Tensor& neg_alias, const at::Tensor& hs_offsets,
                          const at::Tensor& hs_points, const at::Tensor& hs_codes, int64_t window, int64_t negative,
                          double alpha, double min_alpha, int64_t words_done, int64_t total_words, int64_t seed,
                          int64_t chunk, int64_t num_threads, bool cbow, bool hs, bool shared_negatives,
                          bool exact_sigmoid) {
  if (!cbow && !hs)  // skip-gram with negative sampling: the sgns_train op itself
    return sgns_train(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                      alpha, min_alpha, words_done, total_words, seed, chunk, num_threads, shared_negatives,
                      exact_sigmoid);
  const char* op = "word2vec_train";
  TrainArgs a;
  check_train_args(a, op, w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                   alpha, min_alpha, words_done, total_words, seed, chunk, num_threads);
  TORCH_CHECK_VALUE(!hs || negative == 0, op, ": hierarchical softmax uses w_out for the inner nodes of the "
                    "Huffman tree; negative sampling at the same time is not supported: pass negative=0 with hs, got "
                    "negative=", negative);
  TORCH_CHECK_VALUE(!shared_negatives || (!cbow && !hs), op, ": shared_negatives (HogBatch) applies only to "
                    "skip-gram with negative sampling (cbow=False, hs=False)");
  if (hs) check_hs_tables(a, op, hs_offsets, hs_points, hs_codes, w_in.size(0));
  a.shared = false;
  a.exact = exact_sigmoid;
  const int T = int(num_threads);
  // per part (train_part_w2v's W2vWork): sentence and contexts (int32), CBOW's context row pointers, NS's
  // targets of two centers, h and e, skip-gram HS's path buffers, HS with T > 1: the two copies of the hot rows
  const double per_part =
      4.0 * double(a.max_sentence) + (cbow ? 12.0 : 4.0) * double(a.max_ctx) + 8.0 * double(negative + 1) +
      8.0 * double(a.dim) + (hs && !cbow ? (16.0 + 4.0 * kDotPartialLanes) * double(a.hs_max_path) : 0.0) +
      (hs && T > 1 ? 2.0 * std::max(double(kHotBytes), 4.0 * double(a.dim)) : 0.0);
  using Fn = void (*)(const TrainArgs&, int64_t, int64_t, int, bool, std::mutex&, PartResult&);
  Fn fn;
  if (cbow)
    fn = hs ? (exact_sigmoid ? &train_part_w2v<true, true, true> : &train_part_w2v<false, true, true>)
            : (exact_sigmoid ? &train_part_w2v<true, true, false> : &train_part_w2v<false, true, false>);
  else
    fn = exact_sigmoid ? &train_part_w2v<true, false, true> : &train_part_w2v<false, false, true>;
  std::mutex hot_lock;  // HS with T > 1: the merges of the threads' copies of the hot rows (HotRows)
  return run_train_parts(a, T, per_part, negative, op,
                         std::string(exact_sigmoid ? "exact" : "table") + " sigmoid, " +
                             (cbow ? "CBOW" : "skip-gram") + (hs ? ", hierarchical softmax" : ", negative sampling"),
                         [&](int64_t s0, int64_t s1, int p, PartResult& res) {
                           fn(a, s0, s1, p, T > 1, hot_lock, res);
                         });
}

// A binary min-heap of node ids ordered by count alone, with the sift steps of Python's heapq (heapify,
// heappop, heappush), so that nodes of equal count come out in the same order as from gensim's heap of
// Heapitems, which compare by count only.
class CountHeap {
 public:
  CountHeap(const std::vector<double>& count, int64_t n) : cnt_(count), heap_(size_t(n)) {
    for (int64_t i = 0; i < n; ++i) heap_[size_t(i)] = i;
    for (size_t i = heap_.size() / 2; i-- > 0;) sift_up(i);
  }
  int64_t pop() {
    const int64_t last = heap_.back();
    heap_.pop_back();
    if (heap_.empty()) return last;
    const int64_t top = heap_[0];
    heap_[0] = last;
    sift_up(0);
    return top;
  }
  void push(int64_t node) {
    heap_.push_back(node);
    sift_down(0, heap_.size() - 1);
  }

 private:
  bool less(int64_t a, int64_t b) const { return cnt_[size_t(a)] < cnt_[size_t(b)]; }
  // heapq._siftdown: the item at pos moves up while it is smaller than its parent
  void sift_down(size_t start, size_t pos) {
    const int64_t item = heap_[pos];
    while (pos > start) {
      const size_t parent = (pos - 1) >> 1;
      if (!less(item, heap_[parent])) break;
      heap_[pos] = heap_[parent];
      pos = parent;
    }
    heap_[pos] = item;
  }
  // heapq._siftup: the smaller child (the right one on a tie) moves up to a leaf, then the item sifts down
  void sift_up(size_t pos) {
    const size_t end = heap_.size(), start = pos;
    const int64_t item = heap_[pos];
    for (size_t child = 2 * pos + 1; child < end; child = 2 * pos + 1) {
      if (child + 1 < end && !less(heap_[child], heap_[child + 1])) ++child;
      heap_[pos] = heap_[child];
      pos = child;
    }
    heap_[pos] = item;
    sift_down(start, pos);
  }
  const std::vector<double>& cnt_;
  std::vector<int64_t> heap_;
};

// word2vec's Huffman tree over counts (word2vec.c's CreateBinaryTree: repeatedly merge the two nodes of smallest
// count). `ties` says which of two nodes of equal count is taken first: "gensim" as gensim's heap takes them
// (CountHeap), so that for the same vocabulary the tree is gensim's; "word2vec" as word2vec.c's two queues do
// (leaves in order of count, the largest index first among equal counts; an inner node before a leaf of equal
// count). Inner node k (0-based, in order of creation) is row k of w_out; the root is V - 2. Returns (offsets
// [V + 1], points, codes): word w's path is points / codes[offsets[w] .. offsets[w + 1]), root first, code 1 for
// the branch of the second-smallest of a merge (word2vec's binary[] = 1).
std::tuple<at::Tensor, at::Tensor, at::Tensor> word2vec_huffman(const at::Tensor& counts, c10::string_view ties) {
  const char* op = "word2vec_huffman";
  check_cpu_arg(counts, at::kLong, 1, op, "counts");
  TORCH_CHECK_VALUE(ties == "gensim" || ties == "word2vec", op, ": argument 'ties' must be 'gensim' or 'word2vec', got '",
                    std::string(ties), "'");
  const int64_t V = counts.numel();
  TORCH_CHECK_VALUE(V >= 1 && V < (int64_t(1) << 31), op, ": need 1 <= len(counts) < 2^31, got ", V);
  const auto c = counts.contiguous();
  const auto* cp = c.data_ptr<int64_t>();
  for (int64_t v = 0; v < V; ++v)
    TORCH_CHECK_VALUE(cp[v] >= 1, op, ": counts must be >= 1, got counts[", v, "] = ", cp[v]);
  // nodes 0..V-1: the words; V..2V-2: inner nodes (inner node k is V + k)
  std::vector<double> cnt(size_t(2 * V), 0.0);  // sums of int64 counts can exceed int64: compare as doubles
  std::vector<int64_t> parent(size_t(2 * V), -1);
  std::vector<uint8_t> binary(size_t(2 * V), 0);
  for (int64_t v = 0; v < V; ++v) cnt[v] = double(cp[v]);
  auto merge = [&](int64_t k, int64_t m1, int64_t m2) {
    cnt[V + k] = cnt[m1] + cnt[m2];
    parent[m1] = V + k;
    parent[m2] = V + k;
    binary[m2] = 1;
  };
  if (ties == "gensim") {
    CountHeap heap(cnt, V);
    for (int64_t k = 0; k + 1 < V; ++k) {
      const int64_t m1 = heap.pop();
      merge(k, m1, heap.pop());
      heap.push(V + k);
    }
  } else {
    std::vector<int64_t> leaves(V);  // in order of count (descending, ties by index), taken from the end
    for (int64_t v = 0; v < V; ++v) leaves[v] = v;
    std::stable_sort(leaves.begin(), leaves.end(), [&](int64_t x, int64_t y) { return cp[x] > cp[y]; });
    int64_t leaf = V - 1, inner = V;  // the next of each queue; inner nodes V .. V + k - 1 exist at merge k
    for (int64_t k = 0; k + 1 < V; ++k) {
      int64_t m[2];
      for (int64_t& x : m)
        x = leaf >= 0 && (inner >= V + k || cnt[leaves[leaf]] < cnt[inner]) ? leaves[leaf--] : inner++;
      merge(k, m[0], m[1]);
    }
  }
  auto offsets = at::empty({V + 1}, at::kLong);
  auto* op_ = offsets.data_ptr<int64_t>();
  op_[0] = 0;
  for (int64_t v = 0; v < V; ++v) {
    int64_t d = 0;
    for (int64_t b = v; parent[b] >= 0; b = parent[b]) ++d;
    op_[v + 1] = op_[v] + d;
  }
  auto points = at::empty({op_[V]}, at::kInt);
  auto codes = at::empty({op_[V]}, at::kByte);
  auto* pp = points.data_ptr<int32_t>();
  auto* cc = codes.data_ptr<uint8_t>();
  for (int64_t w = 0; w < V; ++w) {
    // walk leaf -> root, writing from the end of w's slot so that the root comes first
    int64_t at_ = op_[w + 1];
    for (int64_t b = w; parent[b] >= 0; b = parent[b]) {
      --at_;
      cc[at_] = binary[b];
      pp[at_] = int32_t(parent[b] - V);
    }
  }
  return {offsets, points, codes};
}

// Vose's alias method over p_v proportional to counts[v]^exponent; thresholds scaled to 2^32.
std::tuple<at::Tensor, at::Tensor> sgns_unigram_table(const at::Tensor& counts, double exponent) {
  const char* op = "sgns_unigram_table";
  check_cpu_arg(counts, at::kLong, 1, op, "counts");
  const int64_t V = counts.numel();
  TORCH_CHECK_VALUE(V >= 1 && V < (int64_t(1) << 31), op, ": need 1 <= len(counts) < 2^31, got ", V);
  TORCH_CHECK_VALUE(std::isfinite(exponent), op, ": exponent must be finite, got ", exponent);
  const auto c = counts.contiguous();
  const auto* cp = c.data_ptr<int64_t>();
  std::vector<double> p(V);
  double total = 0;
  for (int64_t v = 0; v < V; ++v) {
    TORCH_CHECK_VALUE(cp[v] >= 1, op, ": counts must be >= 1, got counts[", v, "] = ", cp[v]);
    p[v] = std::pow(double(cp[v]), exponent);
    total += p[v];
  }
  TORCH_CHECK_VALUE(std::isfinite(total) && total > 0, op, ": counts^exponent overflows (exponent ", exponent, ")");
  for (auto& x : p) x = x * double(V) / total;
  auto threshold = at::empty({V}, at::kLong);
  auto alias = at::empty({V}, at::kInt);
  auto* th = threshold.data_ptr<int64_t>();
  auto* al = alias.data_ptr<int32_t>();
  std::vector<int32_t> small, large;
  for (int64_t v = V - 1; v >= 0; --v) (p[v] < 1.0 ? small : large).push_back(int32_t(v));
  const double scale = 4294967296.0;
  while (!small.empty() && !large.empty()) {
    const int32_t s = small.back(), l = large.back();
    small.pop_back();
    th[s] = std::llround(p[s] * scale);
    al[s] = l;
    p[l] = (p[l] + p[s]) - 1.0;
    if (p[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  for (int32_t v : large) th[v] = int64_t(1) << 32, al[v] = v;
  for (int32_t v : small) th[v] = int64_t(1) << 32, al[v] = v;  // rounding leftovers
  return {threshold, alias};
}

// ---- differentiable loss --------------------------------------------------------------------------------

template <typename T>
inline T dot_t(const T* a, const T* b, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    return dot_f32(a, b, n);
  } else {
    T r = 0;
    for (int64_t i = 0; i < n; ++i) r += a[i] * b[i];
    return r;
  }
}
template <typename T>
inline void axpy_t(T alpha, const T* x, T* y, int64_t n) {
  if constexpr (std::is_same_v<T, float>) {
    axpy_f32(alpha, x, y, n);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
  }
}

at::Tensor sgns_loss(const at::Tensor& w_in, const at::Tensor& w_out, const at::Tensor& centers,
                     const at::Tensor& contexts, const at::Tensor& negatives) {
  check_sgns_loss_args(w_in, w_out, centers, contexts, negatives, "sgns_loss", at::kCPU);
  const auto wi = w_in.contiguous(), wo = w_out.contiguous();
  const auto ce = centers.to(at::kLong).contiguous(), co = contexts.to(at::kLong).contiguous(),
             ne = negatives.to(at::kLong).contiguous();
  const int64_t B = ce.numel(), K = ne.size(1), D = wi.size(1);
  auto loss = at::empty({B}, wi.options());
  AT_DISPATCH_FLOATING_TYPES(wi.scalar_type(), "sgns_loss", [&] {
    const auto* pi = wi.data_ptr<scalar_t>();
    const auto* po = wo.data_ptr<scalar_t>();
    const auto* pc = ce.data_ptr<int64_t>();
    const auto* px = co.data_ptr<int64_t>();
    const auto* pn = ne.data_ptr<int64_t>();
    auto* pl = loss.data_ptr<scalar_t>();
    parallel_for(0, B, 256, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* u = pi + pc[b] * D;
        scalar_t l = -log_sigmoid_exact<scalar_t>(dot_t(u, po + px[b] * D, D));
        for (int64_t k = 0; k < K; ++k) l -= log_sigmoid_exact<scalar_t>(-dot_t(u, po + pn[b * K + k] * D, D));
        pl[b] = l;
      }
    });
  });
  return loss;
}

std::tuple<at::Tensor, at::Tensor> sgns_loss_backward(const at::Tensor& grad, const at::Tensor& w_in,
                                                      const at::Tensor& w_out, const at::Tensor& centers,
                                                      const at::Tensor& contexts, const at::Tensor& negatives) {
  const char* op = "sgns_loss_backward";
  check_sgns_loss_args(w_in, w_out, centers, contexts, negatives, op, at::kCPU);
  check_cpu(grad, op, "grad");
  check_dtype(grad, w_in.scalar_type(), op, "grad");
  TORCH_CHECK_VALUE(grad.dim() == 1 && grad.size(0) == centers.size(0), op, ": 'grad' must have shape [",
                    centers.size(0), "], got ", grad.sizes());
  const auto wi = w_in.contiguous(), wo = w_out.contiguous(), gr = grad.contiguous();
  const auto ce = centers.to(at::kLong).contiguous(), co = contexts.to(at::kLong).contiguous(),
             ne = negatives.to(at::kLong).contiguous();
  const int64_t B = ce.numel(), K = ne.size(1), D = wi.size(1);
  auto g_in = at::zeros_like(wi);
  auto g_out = at::zeros_like(wo);
  AT_DISPATCH_FLOATING_TYPES(wi.scalar_type(), "sgns_loss_backward", [&] {
    const auto* pi = wi.data_ptr<scalar_t>();
    const auto* po = wo.data_ptr<scalar_t>();
    const auto* pg = gr.data_ptr<scalar_t>();
    const auto* pc = ce.data_ptr<int64_t>();
    const auto* px = co.data_ptr<int64_t>();
    const auto* pn = ne.data_ptr<int64_t>();
    auto* gi = g_in.data_ptr<scalar_t>();
    auto* go = g_out.data_ptr<scalar_t>();
    // coefficients in parallel: coef[b, 0] for the context (d loss / d score = sigmoid(s) - 1), coef[b, 1 + k]
    // for the negatives (sigmoid(s_k)), times the incoming gradient; then the row scatter runs serially.
    std::vector<scalar_t> coef(size_t(B * (K + 1)));
    parallel_for(0, B, 256, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const scalar_t* u = pi + pc[b] * D;
        coef[b * (K + 1)] = pg[b] * (sigmoid_exact(dot_t(u, po + px[b] * D, D)) - scalar_t(1));
        for (int64_t k = 0; k < K; ++k)
          coef[b * (K + 1) + 1 + k] = pg[b] * sigmoid_exact(dot_t(u, po + pn[b * K + k] * D, D));
      }
    });
    for (int64_t b = 0; b < B; ++b) {
      const scalar_t* u = pi + pc[b] * D;
      scalar_t* gu = gi + pc[b] * D;
      for (int64_t k = -1; k < K; ++k) {
        const int64_t row = k < 0 ? px[b] : pn[b * K + k];
        const scalar_t cf = coef[b * (K + 1) + 1 + k];
        axpy_t(cf, po + row * D, gu, D);
        axpy_t(cf, u, go + row * D, D);
      }
    }
  });
  return {g_in, g_out};
}

}  // namespace

TORCH_LIBRARY_IMPL(embedfast, CPU, m) {
  m.impl("sgns_train", &sgns_train);
  m.impl("sgns_unigram_table", &sgns_unigram_table);
  m.impl("sgns_loss", &sgns_loss);
  m.impl("sgns_loss_backward", &sgns_loss_backward);
  m.impl("word2vec_train", &word2vec_train);
  m.impl("word2vec_huffman", &word2vec_huffman);
}

}  // namespace embedfast
