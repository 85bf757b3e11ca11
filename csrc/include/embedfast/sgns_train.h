// The CPU training ops of the word2vec family share these pieces: the arguments of a call (TrainArgs), the
// per-thread results and the stats layout, the checks of every argument (check_train_args), the split of a
// chunk into parts and their run on the threads (run_train_parts: part_bounds, check_buffers, and sum_stats, the
// stats and divergence check of a call), the small sigmoid / prefetch helpers of the inner loops, and the update of
// a fixed input against its targets (fixed_input_targets: CBOW and the sub-word skip-gram). Used by
// csrc/cpu/word2vec_sgns.cpp (sgns_train, word2vec_train) and csrc/cpu/word2vec_subword.cpp
// (word2vec_subword_train); defined in csrc/sgns_train.cpp.
//
// The learning-rate schedule of every op: alpha_s = alpha - (alpha - min_alpha) * min(1, done_s / total_words)
// per sentence s, done_s = words_done + chunk_tokens * (start of s - start of the part) / (tokens of the part)
// (sentence_alpha below; train_part of word2vec_sgns.cpp writes it, the sub-sampling and the results inline, as its
// layout is kept as measured: moving its per-sentence lines into helpers cost 20 % of its speed).
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "embedfast/parallel.h"
#include "embedfast/rng.h"
#include "embedfast/sigmoid.h"
#include "embedfast/vecops.h"

namespace embedfast {

// Order must match TRAIN_STATS in embedfast/ops.py.
enum TrainStat {
  kLoss, kPairs, kNegatives, kNegSkipped, kTokens, kKeptTokens, kSentences, kLastAlpha, kNumTrainStats
};

struct TrainArgs {
  float* w_in;
  float* w_out;
  int64_t dim;
  const int32_t* ids;
  const int64_t* offsets;  // of the chunk's sentences
  const double* keep;
  const int64_t* neg_threshold;
  const int32_t* neg_alias;
  uint32_t vocab;
  int64_t window, negative;
  int64_t max_sentence;  // tokens of the chunk's longest sentence
  int64_t max_ctx;       // most contexts of one center: min(2 * window, max_sentence - 1)
  double alpha, min_alpha;
  double words_done, total_words, chunk_tokens;
  uint64_t seed, chunk;
  int64_t num_sentences;  // of the chunk
  bool shared, exact;
  // hierarchical softmax (word2vec_train): the Huffman path of word w is hs_points / hs_codes[hs_offsets[w] ..
  // hs_offsets[w + 1]), root first
  const int64_t* hs_offsets = nullptr;
  const int32_t* hs_points = nullptr;
  const uint8_t* hs_codes = nullptr;
  int64_t hs_max_path = 0;  // the longest path
};

struct PartResult {
  double loss = 0, pairs = 0, negatives = 0, neg_skipped = 0, tokens = 0, kept = 0, sentences = 0, alpha = 0;
};

inline void prefetch_row(const float* p, int64_t D) {
  for (int64_t k = 0; k < D; k += 16) __builtin_prefetch(p + k, 1, 3);
  // a row that does not start on a cache line ends in one more line than the loop above reaches
  if (D > 0) __builtin_prefetch(p + D - 1, 1, 3);
}

template <bool kExact>
inline void sig_logsig(float f, const SigmoidTable& tab, float& s, float& ls) {
  if constexpr (kExact) {
    s = sigmoid_exact(f);
    ls = log_sigmoid_exact_flagged(f);
  } else {
    tab.both(f, s, ls);
  }
}

template <bool kExact>
inline float sig(float f, const SigmoidTable& tab) {
  return kExact ? sigmoid_exact(f) : tab.sigmoid(f);
}
template <bool kExact>
inline float logsig(float f, const SigmoidTable& tab) {
  return kExact ? log_sigmoid_exact_flagged(f) : tab.log_sigmoid(f);
}

// The loss term and gradient of one target with score f and label 0 / 1: adds -log sigmoid(+-f) to `loss`,
// returns alpha * (label - sigmoid(f)).
template <bool kExact>
inline float target_grad(float f, float label, float alpha, const SigmoidTable& tab, double& loss) {
  float s, ls;  // sigmoid(f), log sigmoid(f); log sigmoid(-f) = log sigmoid(f) - f
  sig_logsig<kExact>(f, tab, s, ls);
  loss -= label > 0.5f ? ls : ls - f;
  return alpha * (label - s);
}

#if defined(__AVX512F__)
// target_grads' table path, 16 targets at a time: the same operations per lane as SigmoidTable::both (the table's
// entries gathered, the interpolation as one fused multiply-add). The maskz forms with full masks are vecops.h's
// convention (GCC 12 warns about the plain forms' undefined upper lanes).
inline void target_grads_table16(float* g, int64_t n, const uint8_t* codes, bool first_positive, float alpha,
                                 const SigmoidTable& tab, double& loss) {
  const __m512 lo = _mm512_set1_ps(-kSigmoidMax), hi = _mm512_set1_ps(kSigmoidMax), one = _mm512_set1_ps(1.0f);
  const __m512 scale = _mm512_set1_ps(SigmoidTable::kScale), va = _mm512_set1_ps(alpha);
  const __m512i ione = _mm512_set1_epi32(1);
  __m512d acc = _mm512_setzero_pd();
  for (int64_t k = 0; k < n; k += 16) {
    const __mmask16 live = n - k >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n - k)) - 1u);
    const __m512 f = _mm512_maskz_loadu_ps(live, g + k);
    __m512 label;
    if (codes) {
      alignas(16) uint8_t tail[16] = {};
      const uint8_t* cp = codes + k;
      if (n - k < 16) cp = static_cast<const uint8_t*>(std::memcpy(tail, cp, size_t(n - k)));
      const __m512i c = _mm512_maskz_cvtepu8_epi32(0xFFFF, _mm_loadu_si128(reinterpret_cast<const __m128i*>(cp)));
      label = _mm512_sub_ps(one, _mm512_maskz_cvtepi32_ps(0xFFFF, c));
    } else {
      label = _mm512_maskz_mov_ps(__mmask16(first_positive && k == 0 ? 1u : 0u), one);
    }
    const __mmask16 above_lo = _mm512_cmp_ps_mask(f, lo, _CMP_GT_OQ);  // false for NaN, as !(x > -max)
    const __mmask16 upper = _mm512_mask_cmp_ps_mask(above_lo, f, hi, _CMP_GE_OQ);
    const __mmask16 mid = above_lo & ~upper & live;
    const __m512 p = _mm512_mul_ps(_mm512_add_ps(f, hi), scale);
    const __m512i i = _mm512_maskz_cvttps_epi32(mid, p);
    const __m512 t = _mm512_sub_ps(p, _mm512_maskz_cvtepi32_ps(0xFFFF, i));
    const __m512i i1 = _mm512_add_epi32(i, ione);
    const __m512 z = _mm512_setzero_ps();
    const __m512 s0 = _mm512_mask_i32gather_ps(z, mid, i, tab.sig, 4);
    const __m512 s1 = _mm512_mask_i32gather_ps(z, mid, i1, tab.sig, 4);
    const __m512 l0 = _mm512_mask_i32gather_ps(z, mid, i, tab.logsig, 4);
    const __m512 l1 = _mm512_mask_i32gather_ps(z, mid, i1, tab.logsig, 4);
    // lower branch (and NaN): s = 0, ls = x; upper: s = 1, ls = x - x
    __m512 s = _mm512_maskz_mov_ps(upper, one);
    s = _mm512_mask_mov_ps(s, mid, _mm512_fmadd_ps(t, _mm512_sub_ps(s1, s0), s0));
    __m512 ls = _mm512_mask_sub_ps(f, upper, f, f);
    ls = _mm512_mask_mov_ps(ls, mid, _mm512_fmadd_ps(t, _mm512_sub_ps(l1, l0), l0));
    // -log sigmoid(f) for label 1, -log sigmoid(-f) = -(ls - f) for label 0
    const __mmask16 neg = _mm512_cmp_ps_mask(label, _mm512_set1_ps(0.5f), _CMP_LE_OQ);
    const __m512 term = _mm512_maskz_mov_ps(live, _mm512_mask_sub_ps(ls, neg, ls, f));
    const __m512d term_pd = _mm512_castps_pd(term);
    const __m256 term_lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, term_pd, 0));
    const __m256 term_hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, term_pd, 1));
    acc = _mm512_add_pd(acc, _mm512_add_pd(_mm512_maskz_cvtps_pd(0xFF, term_lo), _mm512_maskz_cvtps_pd(0xFF, term_hi)));
    _mm512_mask_storeu_ps(g + k, live, _mm512_mul_ps(va, _mm512_sub_ps(label, s)));
  }
  const __m256d a4 = _mm256_add_pd(_mm512_maskz_extractf64x4_pd(0xF, acc, 0), _mm512_maskz_extractf64x4_pd(0xF, acc, 1));
  const __m128d a2 = _mm_add_pd(_mm256_castpd256_pd128(a4), _mm256_extractf128_pd(a4, 1));
  loss -= _mm_cvtsd_f64(_mm_add_sd(a2, _mm_unpackhi_pd(a2, a2)));
}
#elif defined(__AVX2__) && defined(__FMA__)
// target_grads' table path with AVX2 for n a multiple of 8, 8 targets at a time: target_grads_table16's operations
// on 8 lanes (blends for its masks).
inline void target_grads_table8(float* g, int64_t n, const uint8_t* codes, bool first_positive, float alpha,
                                const SigmoidTable& tab, double& loss) {
  const __m256 lo = _mm256_set1_ps(-kSigmoidMax), hi = _mm256_set1_ps(kSigmoidMax), one = _mm256_set1_ps(1.0f);
  const __m256 scale = _mm256_set1_ps(SigmoidTable::kScale), va = _mm256_set1_ps(alpha), z = _mm256_setzero_ps();
  const __m256i ione = _mm256_set1_epi32(1);
  __m256d acc = _mm256_setzero_pd();
  for (int64_t k = 0; k + 8 <= n; k += 8) {
    const __m256 f = _mm256_loadu_ps(g + k);
    __m256 label;
    if (codes) {
      const __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(codes + k)));
      label = _mm256_sub_ps(one, _mm256_cvtepi32_ps(c));
    } else {
      label = first_positive && k == 0 ? _mm256_setr_ps(1, 0, 0, 0, 0, 0, 0, 0) : z;
    }
    const __m256 above_lo = _mm256_cmp_ps(f, lo, _CMP_GT_OQ);  // false for NaN, as !(x > -max)
    const __m256 upper = _mm256_and_ps(above_lo, _mm256_cmp_ps(f, hi, _CMP_GE_OQ));
    const __m256 mid = _mm256_andnot_ps(upper, above_lo);
    const __m256 p = _mm256_mul_ps(_mm256_add_ps(f, hi), scale);
    const __m256i i = _mm256_and_si256(_mm256_cvttps_epi32(p), _mm256_castps_si256(mid));  // 0 outside mid
    const __m256 t = _mm256_sub_ps(p, _mm256_cvtepi32_ps(i));
    const __m256i i1 = _mm256_add_epi32(i, ione);
    const __m256 s0 = _mm256_mask_i32gather_ps(z, tab.sig, i, mid, 4);
    const __m256 s1 = _mm256_mask_i32gather_ps(z, tab.sig, i1, mid, 4);
    const __m256 l0 = _mm256_mask_i32gather_ps(z, tab.logsig, i, mid, 4);
    const __m256 l1 = _mm256_mask_i32gather_ps(z, tab.logsig, i1, mid, 4);
    // lower branch (and NaN): s = 0, ls = x; upper: s = 1, ls = x - x
    __m256 s = _mm256_blendv_ps(z, one, upper);
    s = _mm256_blendv_ps(s, _mm256_fmadd_ps(t, _mm256_sub_ps(s1, s0), s0), mid);
    __m256 ls = _mm256_blendv_ps(f, _mm256_sub_ps(f, f), upper);
    ls = _mm256_blendv_ps(ls, _mm256_fmadd_ps(t, _mm256_sub_ps(l1, l0), l0), mid);
    // -log sigmoid(f) for label 1, -log sigmoid(-f) = -(ls - f) for label 0
    const __m256 neg = _mm256_cmp_ps(label, _mm256_set1_ps(0.5f), _CMP_LE_OQ);
    const __m256 term = _mm256_blendv_ps(ls, _mm256_sub_ps(ls, f), neg);
    acc = _mm256_add_pd(acc, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(term)),
                                           _mm256_cvtps_pd(_mm256_extractf128_ps(term, 1))));
    _mm256_storeu_ps(g + k, _mm256_mul_ps(va, _mm256_sub_ps(label, s)));
  }
  const __m128d a2 = _mm_add_pd(_mm256_castpd256_pd128(acc), _mm256_extractf128_pd(acc, 1));
  loss -= _mm_cvtsd_f64(_mm_add_sd(a2, _mm_unpackhi_pd(a2, a2)));
}
#endif

// target_grad for the n targets of one pass: g[k] holds the score on entry and the gradient on return. Labels: with
// `codes`, 1 - codes[k]; without, 1 for k = 0 when first_positive and 0 for the rest. Runs of more than 8 with the
// table go through target_grads_table16 (AVX-512) or, their whole chunks of 8, target_grads_table8 (AVX2; the rest
// scalar, where the four gathers' latency would cost more than the few lanes gain), so their gradients equal
// target_grad's up to the rounding of the fused interpolation and the loss is summed in another order; a short run
// (CBOW NS: 1 + negative targets) is faster scalar than through the four gathers.
template <bool kExact>
inline void target_grads(float* g, int64_t n, const uint8_t* codes, bool first_positive, float alpha,
                         const SigmoidTable& tab, double& loss) {
  int64_t k = 0;
#if defined(__AVX512F__)
  if (!kExact && n > 8) return target_grads_table16(g, n, codes, first_positive, alpha, tab, loss);
#elif defined(__AVX2__) && defined(__FMA__)
  if (!kExact && n > 8) {
    k = n / 8 * 8;
    target_grads_table8(g, k, codes, first_positive, alpha, tab, loss);
  }
#endif
  for (; k < n; ++k) {
    const float label = codes ? 1.0f - float(codes[k]) : (first_positive && k == 0 ? 1.0f : 0.0f);
    g[k] = target_grad<kExact>(g[k], label, alpha, tab, loss);
  }
}

// The most targets of one run of fixed_input_targets (the size of its scratch buffers).
constexpr int kTargetRun = 32;

// Where the kernels find row t of w_out [*, D]: in w_out itself, or for t in [hot_lo, hot_lo + n) in a thread's
// own copy of those rows (hierarchical softmax's HotRows, csrc/cpu/word2vec_sgns.cpp).
struct OutRows {
  float* w_out;
  int64_t D;
  int64_t hot_lo = INT64_MAX;
  float* hot = nullptr;
  float* operator()(int64_t t) const { return t >= hot_lo ? hot + (t - hot_lo) * D : w_out + t * D; }
};

// One input row h that stays fixed while its targets train (CBOW's context mean, the sub-word skip-gram's bag
// mean) against the rows t[0..nt) of `out`, in order, as word2vec's pairs: g = alpha * (label -
// sigmoid(h . w_out[t])); e += g w_out[t]; w_out[t] += g h. Labels: with `codes`, 1 - codes[k]; without, 1 for
// t[0] and 0 for the rest (CBOW with negative sampling). Regrouped without approximation: h does not change and a
// score reads only its own row, so for a run of distinct targets every score is the dot of h with the rows as
// they were before the run (one multi-row pass), then e and the rows are updated; a repeated target starts a new
// run, which reads the updated row. `distinct` says the caller knows there are no repeats (a Huffman path).
// e [D] is written (accumulate false) or added to; g and rows are kTargetRun floats / pointers of scratch.
template <bool kExact>
inline void fixed_input_targets(const OutRows& out, const float* h, float* e, bool accumulate, const int32_t* t,
                                const uint8_t* codes, int64_t nt, bool distinct, float alpha, const SigmoidTable& tab,
                                double& loss, float* g, float** rows) {
  const int64_t D = out.D;
  for (int64_t k0 = 0; k0 < nt;) {
    int64_t k1 = k0 + 1;
    if (distinct)
      k1 = std::min<int64_t>(nt, k0 + kTargetRun);
    else
      while (k1 < nt && k1 - k0 < kTargetRun && std::find(t + k0, t + k1, t[k1]) == t + k1) ++k1;
    const int64_t m = k1 - k0;
    for (int64_t k = 0; k < m; ++k) rows[k] = out(t[k0 + k]);
    multi_dot_f32(h, rows, m, D, g);
    target_grads<kExact>(g, m, codes ? codes + k0 : nullptr, k0 == 0, alpha, tab, loss);
    exchange_rows_f32(e, accumulate, g, h, rows, m, D);
    accumulate = true;
    k0 = k1;
  }
  if (!accumulate) std::fill(e, e + D, 0.0f);
}

// The learning rate of the sentence starting at token b0 of a part starting at part_first (part_tokens tokens).
inline float sentence_alpha(const TrainArgs& a, int64_t b0, int64_t part_first, double part_tokens) {
  const double done = a.words_done + a.chunk_tokens * (double(b0 - part_first) / part_tokens);
  const double progress = std::min(1.0, done / a.total_words);
  return float(a.alpha - (a.alpha - a.min_alpha) * progress);
}

// The tokens of ids[b0, b1) that survive sub-sampling (one uniform draw per token whose keep probability is
// below 1), into `sent`.
inline void subsample_sentence(const TrainArgs& a, CounterRng& rng, int64_t b0, int64_t b1, std::vector<int32_t>& sent) {
  sent.clear();
  for (int64_t p = b0; p < b1; ++p) {
    const int32_t w = a.ids[p];
    const double kp = a.keep[w];
    if (kp < 1.0 && rng.uniform() >= kp) continue;
    sent.push_back(w);
  }
}

// Sentence s of a part starting at token part_first (part_tokens tokens): its kept tokens into `sent` (their
// number added to `kept`); returns its learning rate.
inline float start_sentence(const TrainArgs& a, CounterRng& rng, int64_t s, int64_t part_first, double part_tokens,
                            std::vector<int32_t>& sent, double& kept) {
  const int64_t b0 = a.offsets[s];
  const float alpha = sentence_alpha(a, b0, part_first, part_tokens);
  subsample_sentence(a, rng, b0, a.offsets[s + 1], sent);
  kept += double(sent.size());
  return alpha;
}

// A part's counts, as its loop kept them, into `res` (tokens and sentences from the part's bounds).
inline void finish_part(PartResult& res, const TrainArgs& a, int64_t s_begin, int64_t s_end, double loss,
                        double pairs, double negatives, double skipped, double kept, float alpha) {
  res.loss = loss;
  res.pairs = pairs;
  res.negatives = negatives;
  res.neg_skipped = skipped;
  res.tokens = double(a.offsets[s_end] - a.offsets[s_begin]);
  res.kept = kept;
  res.sentences = double(s_end - s_begin);
  res.alpha = alpha;
}

// The checks shared by the training ops (every argument, before any work): check_sgns_train_structure and the
// index values (sentence offsets, ids, keep_prob, the alias table); fills `a` (all but shared / exact and the
// hierarchical-softmax tables) and the longest sentence of the chunk.
void check_train_args(TrainArgs& a, const char* op, at::Tensor& w_in, at::Tensor& w_out, const at::Tensor& ids,
                      const at::Tensor& sentence_offsets, const at::Tensor& keep_prob,
                      const at::Tensor& neg_threshold, const at::Tensor& neg_alias, int64_t window, int64_t negative,
                      double alpha, double min_alpha, int64_t words_done, int64_t total_words, int64_t seed,
                      int64_t chunk, int64_t num_threads);

// Part p of P gets the sentences whose first token lies in [first + p*N/P, first + (p+1)*N/P), N the chunk's tokens.
std::vector<int64_t> part_bounds(const TrainArgs& a, int P);

// The number of parts of a call on T threads: 1 for T = 1 (one stream: a single-thread run is reproducible);
// otherwise between T and kPartsPerThread * T, about one per kPartTokens of the chunk, so that the threads take
// the parts as they become free and none waits long for a slower one at the end of the call.
constexpr int kPartsPerThread = 16;
constexpr int64_t kPartTokens = 4096;
int train_parts(const TrainArgs& a, int T);

// The work buffers of the parts (per_part bytes each) that can be in use at once (the busy ones, at most
// `threads`), checked before any is allocated.
void check_buffers(const std::vector<int64_t>& bounds, int threads, double per_part, const char* op,
                   const TrainArgs& a, int64_t negative);

// The stats of a call from those of its parts; raises when the loss is not finite (training diverged).
at::Tensor sum_stats(const std::vector<PartResult>& results, const char* op, double alpha, double min_alpha,
                     const std::string& mode);

// The order in which T threads take P parts: 0, q, 2q, ..., 1, q + 1, ... (q = ceil(P / T)), so that the parts
// trained at the same time lie about 1/T of the chunk apart, as with T equal parts (the threads work on distant
// text, not on neighbouring pieces of one topic and its rows).
std::vector<int> part_order(int P, int T);

// The parallel part of a training op, shared by all: the train_parts(a, T) parts (part_bounds), their work
// buffers checked (per_part bytes each), fn(s_begin, s_end, part, result) for each part that has sentences, on T
// threads that take the next part in part_order as they become free, and the stats (sum_stats; `mode` names the
// model in the divergence error). Part p draws from stream_key(seed, chunk, p).
template <typename Fn>
at::Tensor run_train_parts(const TrainArgs& a, int T, double per_part, int64_t negative, const char* op,
                           const std::string& mode, Fn&& fn) {
  const int P = train_parts(a, T);
  const auto bounds = part_bounds(a, P);
  check_buffers(bounds, T, per_part, op, a, negative);
  std::vector<PartResult> results(static_cast<size_t>(P));
  const std::vector<int> order = part_order(P, T);
  run_dynamic(P, T, [&](int64_t i) {
    const int p = order[i];
    if (bounds[p + 1] <= bounds[p]) {
      results[p].alpha = a.alpha;
      return;
    }
    fn(bounds[p], bounds[p + 1], int(p), results[p]);
  });
  return sum_stats(results, op, a.alpha, a.min_alpha, mode);
}

}  // namespace embedfast
