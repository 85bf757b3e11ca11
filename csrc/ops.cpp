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
}
