// The argument checks of the SGNS ops that do not read index values (dtypes, shapes, devices, scalar ranges),
// shared by the CPU kernels (csrc/cpu/word2vec_sgns.cpp) and the CUDA kernels (csrc/cuda/word2vec_sgns.cu), and
// the divergence error both raise. Each backend checks the index values itself (the CPU on the host, CUDA on the
// device).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

namespace embedfast {

// Bounds of sgns_train's size arguments (mirrored by embedfast/ops.py SGNS_TRAIN_LIMITS).
constexpr int64_t kMaxWindow = 1000000;
constexpr int64_t kMaxNegative = 10000;
constexpr int64_t kMaxThreads = 1024;

// sgns_train: tables float32 2-D contiguous of one shape, not aliased, 1 <= V < 2^31; ids int32, offsets int64,
// keep_prob float64, neg_threshold int64, neg_alias int32, all 1-D contiguous, the last three of length V; every
// tensor on `device`; window, negative, num_threads within the bounds above; a finite alpha > 0 with
// 0 <= min_alpha <= alpha; total_words >= 1, words_done >= 0; at least one sentence offset.
void check_sgns_train_structure(const char* op, const at::Tensor& w_in, const at::Tensor& w_out, const at::Tensor& ids,
                                const at::Tensor& sentence_offsets, const at::Tensor& keep_prob,
                                const at::Tensor& neg_threshold, const at::Tensor& neg_alias, int64_t window,
                                int64_t negative, double alpha, double min_alpha, int64_t words_done,
                                int64_t total_words, int64_t num_threads, const at::Device& device);

// sgns_loss / sgns_loss_backward: the checks of both; with check_values the index values too (check_index_range
// works on any device; on CUDA it reads back, so it is left out while a CUDA graph is captured).
void check_sgns_loss_args(const at::Tensor& w_in, const at::Tensor& w_out, const at::Tensor& centers,
                          const at::Tensor& contexts, const at::Tensor& negatives, const char* op,
                          const at::Device& device, bool check_values = true);

// "table sigmoid, shared negatives" etc.: the training mode named in the divergence error.
std::string sgns_mode(bool shared_negatives, bool exact_sigmoid);

// ValueError "<op>: training diverged ..." (the loss of the call is NaN/inf; `mode` names the model/options).
[[noreturn]] void raise_diverged(const char* op, double loss, double pairs, double alpha, double min_alpha,
                                 const std::string& mode);

}  // namespace embedfast
