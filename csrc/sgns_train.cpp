// The shared pieces of the word2vec family's CPU training ops (embedfast/sgns_train.h says what each does).
#include "embedfast/sgns_train.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "embedfast/common.h"
#include "embedfast/sgns_args.h"

namespace embedfast {

void check_train_args(TrainArgs& a, const char* op, at::Tensor& w_in, at::Tensor& w_out, const at::Tensor& ids,
                      const at::Tensor& sentence_offsets, const at::Tensor& keep_prob,
                      const at::Tensor& neg_threshold, const at::Tensor& neg_alias, int64_t window, int64_t negative,
                      double alpha, double min_alpha, int64_t words_done, int64_t total_words, int64_t seed,
                      int64_t chunk, int64_t num_threads) {
  check_sgns_train_structure(op, w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window,
                             negative, alpha, min_alpha, words_done, total_words, num_threads, at::kCPU);
  const int64_t V = w_in.size(0), D = w_in.size(1);
  const int64_t S = sentence_offsets.numel() - 1;
  const auto* off = sentence_offsets.data_ptr<int64_t>();
  const int64_t n_ids = ids.numel();
  int64_t max_sentence = 0;
  for (int64_t s = 0; s <= S; ++s) {
    TORCH_CHECK_INDEX(off[s] >= 0 && off[s] <= n_ids, op, ": sentence_offsets[", s, "] = ", off[s],
                      " is outside [0, len(ids)=", n_ids, "]");
    TORCH_CHECK_VALUE(s == 0 || off[s] >= off[s - 1], op, ": 'sentence_offsets' must be non-decreasing, but [", s,
                      "] = ", off[s], " < [", s - 1, "] = ", off[s - 1]);
    if (s > 0) max_sentence = std::max(max_sentence, off[s] - off[s - 1]);
  }
  const auto* id = ids.data_ptr<int32_t>();
  for (int64_t p = off[0]; p < off[S]; ++p)
    TORCH_CHECK_INDEX(uint32_t(id[p]) < uint32_t(V), op, ": 'ids' has value ", id[p], " at position ", p,
                      ", outside the vocabulary [0, ", V, ")");
  const auto* thr = neg_threshold.data_ptr<int64_t>();
  const auto* ali = neg_alias.data_ptr<int32_t>();
  const auto* kpp = keep_prob.data_ptr<double>();
  for (int64_t v = 0; v < V; ++v) {
    TORCH_CHECK_VALUE(kpp[v] >= 0, op, ": keep_prob[", v, "] = ", kpp[v], " must be a probability >= 0 (values >= 1 "
                      "keep every occurrence)");
    TORCH_CHECK_VALUE(thr[v] >= 0 && thr[v] <= (int64_t(1) << 32), op, ": neg_threshold[", v, "] = ", thr[v],
                      " is outside [0, 2^32]");
    TORCH_CHECK_INDEX(uint32_t(ali[v]) < uint32_t(V), op, ": neg_alias[", v, "] = ", ali[v], " is outside [0, ",
                      V, ")");
  }

  a.w_in = w_in.data_ptr<float>();
  a.w_out = w_out.data_ptr<float>();
  a.dim = D;
  a.ids = id;
  a.offsets = off;
  a.keep = kpp;
  a.neg_threshold = thr;
  a.neg_alias = ali;
  a.vocab = uint32_t(V);
  a.window = window;
  a.negative = negative;
  a.max_sentence = max_sentence;
  a.max_ctx = std::min<int64_t>(2 * window, std::max<int64_t>(max_sentence - 1, 0));
  a.alpha = alpha;
  a.min_alpha = min_alpha;
  a.words_done = double(words_done);
  a.total_words = double(total_words);
  a.chunk_tokens = double(off[S] - off[0]);
  a.seed = uint64_t(seed);
  a.chunk = uint64_t(chunk);
  a.num_sentences = S;
}

std::vector<int64_t> part_bounds(const TrainArgs& a, int P) {
  const int64_t S = a.num_sentences;
  const int64_t* off = a.offsets;
  std::vector<int64_t> bounds(P + 1);
  bounds[0] = 0;
  bounds[P] = S;
  const int64_t first = off[0], ntok = off[S] - off[0];
  for (int p = 1; p < P; ++p) {
    const int64_t target = first + ntok * p / P;
    bounds[p] = std::max<int64_t>(bounds[p - 1], std::lower_bound(off, off + S, target) - off);
  }
  return bounds;
}

int train_parts(const TrainArgs& a, int T) {
  if (T <= 1) return 1;
  const int64_t ntok = a.offsets[a.num_sentences] - a.offsets[0];
  return int(std::clamp<int64_t>(ntok / kPartTokens, T, int64_t(kPartsPerThread) * T));
}

std::vector<int> part_order(int P, int T) {
  const int q = (P + T - 1) / std::max(T, 1);
  std::vector<int> order;
  order.reserve(size_t(P));
  for (int r = 0; r < q; ++r)
    for (int c = 0; c < T; ++c)
      if (c * q + r < P) order.push_back(c * q + r);
  return order;
}

void check_buffers(const std::vector<int64_t>& bounds, int threads, double per_part, const char* op,
                   const TrainArgs& a, int64_t negative) {
  const int P = int(bounds.size()) - 1;
  int64_t busy = 0;
  for (int p = 0; p < P; ++p) busy += bounds[p + 1] > bounds[p];
  busy = std::min<int64_t>(busy, threads);
  if (double(busy) * per_part > machine_memory_bytes())
    raise_too_large(double(busy) * per_part, op,
                    "the work buffers of " + std::to_string(busy) + " threads (window=" + std::to_string(a.window) +
                        ", negative=" + std::to_string(negative) + ", dim=" + std::to_string(a.dim) +
                        ", longest sentence " + std::to_string(a.max_sentence) + " tokens)");
}

at::Tensor sum_stats(const std::vector<PartResult>& results, const char* op, double alpha, double min_alpha,
                     const std::string& mode) {
  auto stats = at::zeros({kNumTrainStats}, at::kDouble);
  auto* st = stats.data_ptr<double>();
  st[kLastAlpha] = alpha;
  for (const auto& r : results) {
    st[kLoss] += r.loss;
    st[kPairs] += r.pairs;
    st[kNegatives] += r.negatives;
    st[kNegSkipped] += r.neg_skipped;
    st[kTokens] += r.tokens;
    st[kKeptTokens] += r.kept;
    st[kSentences] += r.sentences;
    st[kLastAlpha] = std::min(st[kLastAlpha], r.alpha);
  }
  if (!std::isfinite(st[kLoss])) raise_diverged(op, st[kLoss], st[kPairs], alpha, min_alpha, mode);
  return stats;
}

}  // namespace embedfast
