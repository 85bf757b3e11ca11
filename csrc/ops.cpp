// The one schema block of embedfast: every op's signature lives here. Kernels register per backend in
// csrc/cpu/*.cpp and csrc/cuda/*.cu (TORCH_LIBRARY_IMPL), fake kernels and autograd in embedfast/ops.py.
#include <Python.h>
#include <torch/library.h>

// Importing embedfast._C loads this shared library, which runs the registrations below. The module itself
// is empty: everything is reached through torch.ops.embedfast.
extern "C" {
PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", "embedfast custom ops", -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(embedfast, m) {
  // ---- loader (csrc/cpu/vectors.cpp) ----
  // Parse a text (GloVe / word2vec / fastText) or word2vec-binary vectors file.
  //   dim: 0 infers it (header, else the first data line); header: -1 detect, 0 none, 1 required;
  //   limit: -1 all rows; skip_errors: skip bad rows (listed in `skipped`) instead of raising;
  //   num_threads: 0 = torch.get_num_threads().
  // Returns matrix [N, D], word_bytes uint8 (UTF-8 words back to back), word_offsets int64 [N+1],
  // stats int64 (see embedfast/ops.py LOAD_STATS), skipped int64 [S, 2] (line number, reason code),
  // duplicates int64 [M]: rows whose word (bytes) occurred on an earlier row.
  m.def(
      "load_vectors(str path, int dim, int header, int limit, bool binary, bool skip_errors, int num_threads, "
      "ScalarType dtype) -> (Tensor matrix, Tensor word_bytes, Tensor word_offsets, Tensor stats, Tensor skipped, "
      "Tensor duplicates)");
  // ---- fastText models (csrc/cpu/vectors_fasttext.cpp; rule in csrc/include/embedfast/subwords.h) ----
  // Read a fastText binary model (.bin): the first `limit` words (-1: all) and every label, with their counts
  // and types (0 word, 1 label); the input matrix as word_rows [limit or nwords, D] and ngram_rows [bucket, D];
  // the output matrix [rows, D] when `output` (else [0, D]); header int64: see FASTTEXT_HEADER in
  // embedfast/vectors/ops.py. A quantised (.ftz) model is refused. num_threads: 0 = torch.get_num_threads().
  m.def(
      "load_fasttext(str path, int limit, bool output, int num_threads) -> (Tensor word_rows, Tensor ngram_rows, "
      "Tensor output_rows, Tensor word_bytes, Tensor word_offsets, Tensor counts, Tensor types, Tensor header)");
  // The n-gram buckets of each word (UTF-8 bytes back to back, offsets [N+1]) by fastText's rule: "<word>",
  // minn..maxn characters, FNV-1a (fastText's sign-extended variant) modulo buckets; offsets [N+1], buckets [E].
  m.def("fasttext_ngram_buckets(Tensor word_bytes, Tensor word_offsets, int minn, int maxn, int buckets) -> "
        "(Tensor offsets, Tensor buckets)");

  // ---- sgns (csrc/cpu/word2vec_corpus.cpp, csrc/cpu/word2vec_sgns.cpp; Python side embedfast/sgns.py) ----
  // Corpus pipeline: the text is the file at `path`, or `data` (uint8 bytes) when path is "".
  //   corpus_build_vocab: words with count >= min_count, sorted by count desc then bytes asc, cut to
  //   max_vocab (-1: no cut). stats: see VOCAB_STATS in embedfast/ops.py. num_threads: 0 = torch's.
  m.def(
      "corpus_build_vocab(str path, Tensor data, int min_count, int max_vocab, int num_threads) -> "
      "(Tensor word_bytes, Tensor word_offsets, Tensor counts, Tensor stats)");
  //   corpus_encode: int32 ids of in-vocabulary tokens and int64 sentence offsets [S+1]; lines with more than
  //   max_sentence_length kept tokens are cut into pieces. stats: see ENCODE_STATS. start / max_bytes: encode
  //   only the whole lines from byte `start` through the first '\n' at or after start + max_bytes - 1 (-1: to
  //   the end); stats[bytes] is the length of that block (streaming).
  m.def(
      "corpus_encode(str path, Tensor data, Tensor word_bytes, Tensor word_offsets, int max_sentence_length, "
      "int num_threads, int start=0, int max_bytes=-1) -> (Tensor ids, Tensor sentence_offsets, Tensor stats)");
  // Alias table for negative sampling from counts^exponent.
  m.def("sgns_unigram_table(Tensor counts, float exponent) -> (Tensor threshold, Tensor alias)");
  // Fused training pass over the sentences of `sentence_offsets` (offsets into ids), updating w_in and w_out
  // in place; stats: see TRAIN_STATS.
  m.def(
      "sgns_train(Tensor(a!) w_in, Tensor(b!) w_out, Tensor ids, Tensor sentence_offsets, Tensor keep_prob, "
      "Tensor neg_threshold, Tensor neg_alias, int window, int negative, float alpha, float min_alpha, "
      "int words_done, int total_words, int seed, int chunk, int num_threads, bool shared_negatives, "
      "bool exact_sigmoid) -> Tensor stats");
  // The whole word2vec family in one fused pass: skip-gram (cbow=false) or CBOW (the mean of the contexts),
  // negative sampling or hierarchical softmax (hs=true, negative=0; the Huffman paths hs_offsets [V+1] into
  // hs_points / hs_codes, from word2vec_huffman; ignored, may be empty, when hs=false). cbow=false, hs=false is
  // sgns_train. stats: see TRAIN_STATS.
  m.def(
      "word2vec_train(Tensor(a!) w_in, Tensor(b!) w_out, Tensor ids, Tensor sentence_offsets, Tensor keep_prob, "
      "Tensor neg_threshold, Tensor neg_alias, Tensor hs_offsets, Tensor hs_points, Tensor hs_codes, int window, "
      "int negative, float alpha, float min_alpha, int words_done, int total_words, int seed, int chunk, "
      "int num_threads, bool cbow, bool hs, bool shared_negatives, bool exact_sigmoid) -> Tensor stats");
  // Sub-word skip-gram with negative sampling (fastText's skipgram; csrc/cpu/word2vec_subword.cpp): as sgns_train,
  // but the center's input vector is the mean of its row of w_in [V, D] and the rows of w_ngram [B, D] of its
  // n-gram buckets ngram_buckets[ngram_offsets[w] .. ngram_offsets[w+1]) (int64 [V+1], int32 [E]); all of them
  // get the update, w_out [V, D] as in SGNS. stats: see TRAIN_STATS.
  m.def(
      "word2vec_subword_train(Tensor(a!) w_in, Tensor(b!) w_ngram, Tensor(c!) w_out, Tensor ids, "
      "Tensor sentence_offsets, Tensor keep_prob, Tensor neg_threshold, Tensor neg_alias, Tensor ngram_offsets, "
      "Tensor ngram_buckets, int window, int negative, float alpha, float min_alpha, int words_done, "
      "int total_words, int seed, int chunk, int num_threads, bool exact_sigmoid) -> Tensor stats");
  // word2vec's Huffman tree of counts: (offsets [V+1] int64, points int32 (inner nodes, root V-2 first), codes uint8).
  m.def("word2vec_huffman(Tensor counts, str ties=\"gensim\") -> (Tensor offsets, Tensor points, Tensor codes)");
  // Differentiable SGNS loss per example: -log s(w_in[c].w_out[x]) - sum_k log s(-w_in[c].w_out[n_k]).
  m.def("sgns_loss(Tensor w_in, Tensor w_out, Tensor centers, Tensor contexts, Tensor negatives) -> Tensor");
  m.def(
      "sgns_loss_backward(Tensor grad, Tensor w_in, Tensor w_out, Tensor centers, Tensor contexts, "
      "Tensor negatives) -> (Tensor grad_w_in, Tensor grad_w_out)");

  // ---- gather (csrc/cpu/fusion.cpp) ----
  // Multi-source weighted gather over bags. Bag b owns entries e in [bag_offsets[b], bag_offsets[b+1]) naming
  // (source entry_source[e], row entry_row[e] of tables[source], weight entry_weight[e]);
  // out[n] = sum_{e in bag(ids[n])} source_weight[k_e] * entry_weight[e] * tables[k_e][row_e]
  // (divided by the sum of source_weight[k_e] * entry_weight[e] when renormalize); zeros for empty bags.
  // Weights are float32 (float64 for float64 tables); sparse_grad makes the backward return sparse row grads.
  m.def(
      "gather_bags(Tensor[] tables, Tensor source_weight, Tensor bag_offsets, Tensor entry_source, "
      "Tensor entry_row, Tensor entry_weight, Tensor ids, bool renormalize, bool sparse_grad) -> Tensor");
  // Backward of gather_bags: (grad_source_weight [K] or [0], grad_entry_weight [E] or [0],
  // table grads (dense [V_k, D], or sparse values [M_k, D]; [0, D] when not wanted), sparse rows [M_k] or [0]).
  // weights_grad asks for the weight gradients; entry_weight_grad=false leaves out grad_entry_weight ([0]).
  m.def(
      "gather_bags_backward(Tensor grad, Tensor[] tables, Tensor source_weight, Tensor bag_offsets, "
      "Tensor entry_source, Tensor entry_row, Tensor entry_weight, Tensor ids, bool renormalize, "
      "bool weights_grad, bool[] tables_grad, bool sparse, bool entry_weight_grad=True) -> "
      "(Tensor, Tensor, Tensor[], Tensor[])");
}
