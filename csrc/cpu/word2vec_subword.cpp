// embedfast sub-word skip-gram with negative sampling on the CPU (Bojanowski et al. 2017; fastText's `skipgram`).
//
// word2vec_subword_train: one fused pass over a chunk of the encoded corpus, like sgns_train
// (csrc/cpu/word2vec_sgns.cpp) but with the center's input vector built from sub-words: word w's bag is its own
// row w_in[w] and the rows w_ngram[b] of its n-gram buckets ngram_buckets[ngram_offsets[w] .. ngram_offsets[w+1])
// (fastText's rule, embedfast/subwords.h, computed once per vocabulary by the caller). The parts, their random
// streams stream_key(seed, chunk, part), sub-sampling, the window draw, the alias table of the negatives, the
// learning-rate schedule, the stats and the divergence error are those of sgns_train (embedfast/sgns_train.h).
//
// Order of random draws in one part (the reference in tests/test_word2vec_subword.py replays it):
//   for each sentence:   for each token w with keep_prob[w] < 1: one draw u, keep when uniform(u) < keep_prob[w]
//                        then for each kept position i (center c):
//                          one draw r: reduced window b = window - (r % window)   (1..window)
//                          per context j in [i-b, i+b], j != i, in increasing order: `negative` draws (alias)
// A negative equal to the pair's positive target (the context word) is skipped (counted), as fastText does.
// Update per center c with bag rows r_1..r_m (m = 1 + number of n-grams), fastText's direction (the center's
// sub-word vector predicts each context word):
//   h = (r_1 + ... + r_m) / m, computed once per center from the rows before its update; e = 0;
//   per context x_j, per target t in order (x_j with label 1, then its negatives with label 0):
//       g = alpha * (label - sigmoid(h . w_out[t])); e += g * w_out[t]; w_out[t] += g * h
//   after the last context: r_k += e for every row of the bag (fastText adds the whole gradient to each input
//   row of a skip-gram bag, not e / m).
// So every bag row is read once and written once per center, not per pair: fastText recomputes the mean and
// writes all m rows for every (center, context) pair, which is what makes its sub-word training slower than
// word2vec. As h stays fixed through its center, the targets of all its contexts run in fixed_input_targets
// (embedfast/sgns_train.h: runs of distinct targets, each score from the rows before its run; the same
// arithmetic up to float rounding). The next center's draws are made one center ahead, so its bag rows and
// target rows are prefetched while the current one trains (the bucket table is large and its rows scattered).
//
// Loss: the sum over every target of -log sigmoid(+-score); non-finite exactly when a score is, so a diverged
// call (too large a learning rate, non-finite weights passed in) raises the ValueError of raise_diverged.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <new>
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

// The sub-word tables of a call: w_ngram [B, D] and each word's bucket list (CSR).
struct SubwordTables {
  float* w_ngram;
  const int64_t* offsets;  // [V + 1]
  const int32_t* buckets;  // [E], each in [0, B)
};

template <bool kExact>
void train_part_subword(const TrainArgs& a, const SubwordTables& sw, int64_t s_begin, int64_t s_end, int part,
                        PartResult& res) {
  const SigmoidTable& tab = sigmoid_table();
  CounterRng rng(stream_key(a.seed, a.chunk, uint64_t(part)));
  const int64_t D = a.dim;
  const int64_t part_first = a.offsets[s_begin];
  const double part_tokens = double(a.offsets[s_end] - part_first);
  const int64_t max_t = a.max_ctx * (1 + a.negative);  // the most targets of one center
  std::vector<int32_t> sent, cur_t, nxt_t;
  std::vector<uint8_t> cur_code, nxt_code;  // 0: a context word (label 1), 1: a negative (label 0)
  std::vector<float> h, e;
  float g[kTargetRun];
  float* rows[kTargetRun];
  try {
    sent.reserve(size_t(a.max_sentence));
    cur_t.resize(size_t(max_t));
    nxt_t.resize(size_t(max_t));
    cur_code.resize(size_t(max_t));
    nxt_code.resize(size_t(max_t));
    h.resize(size_t(D));
    e.resize(size_t(D));
  } catch (const std::bad_alloc&) {
    TORCH_CHECK_WITH(OutOfMemoryError, false, "word2vec_subword_train: cannot allocate the work buffers of part ",
                     part, " (dim ", D, ", longest sentence ", a.max_sentence, " tokens)");
  }
  float alpha = float(a.alpha);
  double loss = 0, pairs = 0, nneg = 0, nskip = 0, kept = 0;
  int64_t n = 0;
  // The draws of the center at position i, made one center ahead: its window, then per context (in order) the
  // context word and its negatives; its bag rows and target rows are prefetched. The stream order is that of the
  // file comment: the draws are the same, only made earlier.
  auto draw = [&](int64_t i, int64_t& nt, std::vector<int32_t>& t, std::vector<uint8_t>& code) {
    const int64_t b = a.window - int64_t(rng.next() % uint64_t(a.window));
    const int64_t j0 = std::max<int64_t>(0, i - b), j1 = std::min<int64_t>(n, i + b + 1);
    nt = 0;
    if (j1 - j0 <= 1) return;  // no context: nothing trained, no draws
    for (int64_t j = j0; j < j1; ++j) {
      if (j == i) continue;
      const int32_t x = sent[j];
      t[nt] = x;
      code[nt++] = 0;
      pairs += 1;
      for (int64_t k = 0; k < a.negative; ++k) {
        const int32_t tk = alias_pick(rng.next(), a.vocab, a.neg_threshold, a.neg_alias);
        if (tk == x) {
          nskip += 1;
          continue;
        }
        t[nt] = tk;
        code[nt++] = 1;
        nneg += 1;
      }
    }
    const int32_t c = sent[i];
    prefetch_row(a.w_in + int64_t(c) * D, D);
    for (int64_t q = sw.offsets[c]; q < sw.offsets[c + 1]; ++q)
      prefetch_row(sw.w_ngram + int64_t(sw.buckets[q]) * D, D);
    for (int64_t k = 0; k < nt; ++k) prefetch_row(a.w_out + int64_t(t[k]) * D, D);
  };
  for (int64_t s = s_begin; s < s_end; ++s) {
    alpha = start_sentence(a, rng, s, part_first, part_tokens, sent, kept);
    n = int64_t(sent.size());
    int64_t cur_nt = 0, nxt_nt = 0;
    if (n > 0) draw(0, cur_nt, cur_t, cur_code);
    for (int64_t i = 0; i < n; ++i) {
      if (i + 1 < n) draw(i + 1, nxt_nt, nxt_t, nxt_code);
      if (cur_nt > 0) {
        const int32_t c = sent[i];
        float* own = a.w_in + int64_t(c) * D;
        const int64_t e0 = sw.offsets[c], e1 = sw.offsets[c + 1];
        // h = the mean of the bag: its own row, then its buckets kTargetRun rows at a time
        const float inv = 1.0f / float(1 + (e1 - e0));
        combine_rows_f32(h.data(), false, &inv, 0, &own, 1, D);
        for (int64_t q0 = e0; q0 < e1; q0 += kTargetRun) {
          const int64_t m = std::min<int64_t>(kTargetRun, e1 - q0);
          for (int64_t k = 0; k < m; ++k) rows[k] = sw.w_ngram + int64_t(sw.buckets[q0 + k]) * D;
          combine_rows_f32(h.data(), true, &inv, 0, rows, m, D);
        }
        fixed_input_targets<kExact>(OutRows{a.w_out, D}, h.data(), e.data(), false, cur_t.data(), cur_code.data(),
                                    cur_nt, false, alpha, tab, loss, g, rows);
        axpy_f32(1.0f, e.data(), own, D);
        for (int64_t q = e0; q < e1; ++q) axpy_f32(1.0f, e.data(), sw.w_ngram + int64_t(sw.buckets[q]) * D, D);
      }
      std::swap(cur_nt, nxt_nt);
      std::swap(cur_t, nxt_t);
      std::swap(cur_code, nxt_code);
    }
  }
  finish_part(res, a, s_begin, s_end, loss, pairs, nneg, nskip, kept, alpha);
}

// w_ngram float32 [B, D] contiguous, apart from w_in / w_out; ngram_offsets int64 [V + 1] from 0 to
// len(ngram_buckets), non-decreasing; ngram_buckets int32, each in [0, B).
SubwordTables check_subword_tables(const char* op, const at::Tensor& w_in, const at::Tensor& w_out,
                                   at::Tensor& w_ngram, const at::Tensor& ngram_offsets,
                                   const at::Tensor& ngram_buckets) {
  check_cpu_arg(w_ngram, at::kFloat, 2, op, "w_ngram");
  TORCH_CHECK_VALUE(w_ngram.is_contiguous(), op, ": 'w_ngram' is updated in place and must be contiguous");
  TORCH_CHECK_VALUE(w_ngram.size(1) == w_in.size(1), op, ": 'w_ngram' ", w_ngram.sizes(), " must have the ",
                    w_in.size(1), " columns of 'w_in' ", w_in.sizes());
  TORCH_CHECK_VALUE(w_ngram.size(0) < (int64_t(1) << 31), op, ": 'w_ngram' must have fewer than 2^31 rows, got ",
                    w_ngram.size(0));
  TORCH_CHECK_VALUE(!w_ngram.is_alias_of(w_in) && !w_ngram.is_alias_of(w_out), op,
                    ": 'w_ngram' must not share memory with 'w_in' or 'w_out'");
  check_cpu_arg(ngram_offsets, at::kLong, 1, op, "ngram_offsets");
  check_cpu_arg(ngram_buckets, at::kInt, 1, op, "ngram_buckets");
  TORCH_CHECK_VALUE(ngram_offsets.is_contiguous() && ngram_buckets.is_contiguous(), op,
                    ": 'ngram_offsets' and 'ngram_buckets' must be contiguous");
  const int64_t V = w_in.size(0), B = w_ngram.size(0), E = ngram_buckets.numel();
  TORCH_CHECK_VALUE(ngram_offsets.size(0) == V + 1, op, ": argument 'ngram_offsets' must have shape [", V + 1,
                    "] (vocabulary size + 1), got ", ngram_offsets.sizes());
  const auto* off = ngram_offsets.data_ptr<int64_t>();
  TORCH_CHECK_VALUE(off[0] == 0 && off[V] == E, op, ": 'ngram_offsets' must start at 0 and end at "
                    "len(ngram_buckets)=", E, ", got ", off[0], " ... ", off[V]);
  for (int64_t v = 0; v < V; ++v)
    TORCH_CHECK_VALUE(off[v + 1] >= off[v], op, ": 'ngram_offsets' must be non-decreasing, but [", v + 1, "] = ",
                      off[v + 1], " < [", v, "] = ", off[v]);
  const auto* bk = ngram_buckets.data_ptr<int32_t>();
  for (int64_t e = 0; e < E; ++e)
    TORCH_CHECK_INDEX(bk[e] >= 0 && int64_t(bk[e]) < B, op, ": ngram_buckets[", e, "] = ", bk[e],
                      " is outside the rows of 'w_ngram' [0, ", B, ")");
  return {w_ngram.data_ptr<float>(), off, bk};
}

at::Tensor word2vec_subword_train(at::Tensor& w_in, at::Tensor& w_ngram, at::Tensor& w_out, const at::Tensor& ids,
                                  const at::Tensor& sentence_offsets, const at::Tensor& keep_prob,
                                  const at::Tensor& neg_threshold, const at::Tensor& neg_alias,
                                  const at::Tensor& ngram_offsets, const at::Tensor& ngram_buckets, int64_t window,
                                  int64_t negative, double alpha, double min_alpha, int64_t words_done,
                                  int64_t total_words, int64_t seed, int64_t chunk, int64_t num_threads,
                                  bool exact_sigmoid) {
  const char* op = "word2vec_subword_train";
  TrainArgs a;
  check_train_args(a, op, w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                   alpha, min_alpha, words_done, total_words, seed, chunk, num_threads);
  const SubwordTables sw = check_subword_tables(op, w_in, w_out, w_ngram, ngram_offsets, ngram_buckets);
  a.shared = false;
  a.exact = exact_sigmoid;
  auto fn = exact_sigmoid ? &train_part_subword<true> : &train_part_subword<false>;
  const double per_part =
      4.0 * double(a.max_sentence) + 8.0 * double(a.dim) + 10.0 * double(a.max_ctx) * double(1 + negative);
  return run_train_parts(a, int(num_threads), per_part, negative, op,
                         std::string(exact_sigmoid ? "exact" : "table") + " sigmoid, sub-word skip-gram",
                         [&](int64_t s0, int64_t s1, int p, PartResult& res) { fn(a, sw, s0, s1, p, res); });
}

}  // namespace

TORCH_LIBRARY_IMPL(embedfast, CPU, m) { m.impl("word2vec_subword_train", &word2vec_subword_train); }

}  // namespace embedfast
