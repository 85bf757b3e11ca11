#include "embedfast/sgns_args.h"

#include <cmath>
#include <string>
#include <utility>

#include "embedfast/common.h"

namespace embedfast {

void check_sgns_train_structure(const char* op, const at::Tensor& w_in, const at::Tensor& w_out, const at::Tensor& ids,
                                const at::Tensor& sentence_offsets, const at::Tensor& keep_prob,
                                const at::Tensor& neg_threshold, const at::Tensor& neg_alias, int64_t window,
                                int64_t negative, double alpha, double min_alpha, int64_t words_done,
                                int64_t total_words, int64_t num_threads, const at::Device& device) {
  check_device(w_in, device, op, "w_in");
  check_device(w_out, device, op, "w_out");
  check_dtype(w_in, at::kFloat, op, "w_in");
  check_dtype(w_out, at::kFloat, op, "w_out");
  check_dim(w_in, 2, op, "w_in");
  check_dim(w_out, 2, op, "w_out");
  TORCH_CHECK_VALUE(w_in.is_contiguous() && w_out.is_contiguous(), op,
                    ": 'w_in' and 'w_out' are updated in place and must be contiguous");
  TORCH_CHECK_VALUE(w_in.sizes() == w_out.sizes(), op, ": 'w_in' ", w_in.sizes(), " and 'w_out' ", w_out.sizes(),
                    " must have the same shape");
  TORCH_CHECK_VALUE(!w_in.is_alias_of(w_out), op, ": 'w_in' and 'w_out' must not share memory");
  const int64_t V = w_in.size(0);
  TORCH_CHECK_VALUE(V >= 1 && V < (int64_t(1) << 31), op, ": vocabulary size must be in [1, 2^31), got ", V);
  check_dtype(ids, at::kInt, op, "ids");
  check_dim(ids, 1, op, "ids");
  check_dtype(sentence_offsets, at::kLong, op, "sentence_offsets");
  check_dim(sentence_offsets, 1, op, "sentence_offsets");
  check_dtype(keep_prob, at::kDouble, op, "keep_prob");
  check_dtype(neg_threshold, at::kLong, op, "neg_threshold");
  check_dtype(neg_alias, at::kInt, op, "neg_alias");
  for (auto [t, name] : {std::pair{&ids, "ids"}, {&sentence_offsets, "sentence_offsets"}, {&keep_prob, "keep_prob"},
                         {&neg_threshold, "neg_threshold"}, {&neg_alias, "neg_alias"}}) {
    check_device(*t, device, op, name);
    TORCH_CHECK_VALUE(t->is_contiguous(), op, ": argument '", name, "' must be contiguous");
  }
  for (auto [t, name] : {std::pair{&keep_prob, "keep_prob"}, {&neg_threshold, "neg_threshold"},
                         {&neg_alias, "neg_alias"}})
    TORCH_CHECK_VALUE(t->dim() == 1 && t->size(0) == V, op, ": argument '", name, "' must have shape [", V,
                      "] (the vocabulary size of w_in), got ", t->sizes());
  TORCH_CHECK_VALUE(window >= 1, op, ": window must be >= 1, got ", window);
  TORCH_CHECK_VALUE(window <= kMaxWindow, op, ": window must be <= ", kMaxWindow, ", got ", window);
  TORCH_CHECK_VALUE(negative >= 0, op, ": negative must be >= 0, got ", negative);
  TORCH_CHECK_VALUE(negative <= kMaxNegative, op, ": negative must be <= ", kMaxNegative, ", got ", negative);
  TORCH_CHECK_VALUE(std::isfinite(alpha) && alpha > 0 && min_alpha >= 0 && min_alpha <= alpha, op,
                    ": need a finite alpha > 0 and 0 <= min_alpha <= alpha, got alpha=", alpha,
                    ", min_alpha=", min_alpha);
  TORCH_CHECK_VALUE(total_words >= 1 && words_done >= 0, op,
                    ": need total_words >= 1 and words_done >= 0, got ", total_words, " and ", words_done);
  TORCH_CHECK_VALUE(num_threads >= 1 && num_threads <= kMaxThreads, op, ": num_threads must be in [1, ",
                    kMaxThreads, "], got ", num_threads);
  TORCH_CHECK_VALUE(sentence_offsets.numel() >= 1, op, ": 'sentence_offsets' must have at least one entry");
}

void check_sgns_loss_args(const at::Tensor& w_in, const at::Tensor& w_out, const at::Tensor& centers,
                          const at::Tensor& contexts, const at::Tensor& negatives, const char* op,
                          const at::Device& device, bool check_values) {
  check_device(w_in, device, op, "w_in");
  check_device(w_out, device, op, "w_out");
  TORCH_CHECK_VALUE(w_in.scalar_type() == at::kFloat || w_in.scalar_type() == at::kDouble, op,
                    ": argument 'w_in' must have dtype float32 or float64, got ", w_in.scalar_type());
  check_dtype(w_out, w_in.scalar_type(), op, "w_out");
  check_dim(w_in, 2, op, "w_in");
  check_dim(w_out, 2, op, "w_out");
  TORCH_CHECK_VALUE(w_in.size(1) == w_out.size(1), op, ": 'w_in' ", w_in.sizes(), " and 'w_out' ", w_out.sizes(),
                    " must have the same number of columns");
  for (auto [t, name] : {std::pair{&centers, "centers"}, {&contexts, "contexts"}, {&negatives, "negatives"}}) {
    check_device(*t, device, op, name);
    TORCH_CHECK_VALUE(t->scalar_type() == at::kInt || t->scalar_type() == at::kLong, op, ": argument '", name,
                      "' must have dtype int32 or int64, got ", t->scalar_type());
  }
  check_dim(centers, 1, op, "centers");
  check_dim(contexts, 1, op, "contexts");
  check_dim(negatives, 2, op, "negatives");
  const int64_t B = centers.size(0);
  TORCH_CHECK_VALUE(contexts.size(0) == B && negatives.size(0) == B, op, ": 'centers' ", centers.sizes(),
                    ", 'contexts' ", contexts.sizes(), " and 'negatives' ", negatives.sizes(),
                    " must have the same first dimension");
  if (!check_values) return;
  check_index_range(centers, 0, w_in.size(0), op, "centers");
  check_index_range(contexts, 0, w_out.size(0), op, "contexts");
  check_index_range(negatives, 0, w_out.size(0), op, "negatives");
}


std::string sgns_mode(bool shared_negatives, bool exact_sigmoid) {
  return std::string(exact_sigmoid ? "exact" : "table") + " sigmoid, " +
         (shared_negatives ? "shared" : "per-pair") + " negatives";
}

[[noreturn]] void raise_diverged(const char* op, double loss, double pairs, double alpha, double min_alpha,
                                 const std::string& mode) {
  TORCH_CHECK_VALUE(false, op, ": training diverged: the scores became NaN/inf (loss ",
                    std::isnan(loss) ? "nan" : "inf",
                    " over ", pairs, " pairs) with learning rate alpha=", alpha, " (min_alpha=", min_alpha,
                    ", ", mode, "); w_in and w_out now hold non-finite "
                    "values (NaN/inf) and cannot be used. Start again from finite weights with a smaller alpha (word2vec's "
                    "default is 0.025); if alpha is already small, check that the weights passed in are finite.");
  __builtin_unreachable();
}

}  // namespace embedfast
