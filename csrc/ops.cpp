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
  // ---- loader (csrc/cpu/load_vectors.cpp) ----
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

  // ---- sgns (csrc/cpu/sgns.cpp) ----

  // ---- gather (csrc/cpu/gather.cpp) ----
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
  m.def(
      "gather_bags_backward(Tensor grad, Tensor[] tables, Tensor source_weight, Tensor bag_offsets, "
      "Tensor entry_source, Tensor entry_row, Tensor entry_weight, Tensor ids, bool renormalize, "
      "bool weights_grad, bool[] tables_grad, bool sparse) -> (Tensor, Tensor, Tensor[], Tensor[])");
}
