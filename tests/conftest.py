"""Suite-wide test set-up.

Triton's interpreter (TRITON_INTERPRET=1, how the Triton kernels are tested without a GPU) must be switched on
before ``triton`` is first imported: ``@triton.jit`` decides at decoration time, and that includes triton's own
library functions (``tl.zeros``, ``tl.sum``, ...), which interpreted kernels cannot call when they were decorated
for compilation. So on a machine without CUDA it is set here, before any test module imports triton.
"""
import importlib.util
import os

import pytest
import torch

if importlib.util.find_spec("triton") is not None and not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture
def poisoned():
    """Every torch.empty (including ops' outputs) starts as NaN (integers: their max), so unwritten elements
    show. Restores the previous settings afterwards."""
    prev_det = torch.are_deterministic_algorithms_enabled()
    prev_fill = torch.utils.deterministic.fill_uninitialized_memory
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    yield
    torch.use_deterministic_algorithms(prev_det)
    torch.utils.deterministic.fill_uninitialized_memory = prev_fill


# ---- GPU tests (issue 16) ------------------------------------------------------------------------------------
# The `gpu` marker (pyproject.toml) selects every test that runs GPU kernels when there is a GPU: the CUDA kernel
# tests (tests/test_*_cuda.py, device-parametrised through tests/cuda_util.py) and the Triton tests, which run the
# compiled kernels on CUDA tensors when there is a device (and Triton's interpreter on the CPU otherwise).
# benchmarks/gpu/check.sh runs `pytest -m gpu`.
GPU_MODULES = ("test_word2vec_triton.py", "test_word2vec_triton_models.py", "test_word2vec_triton_subword.py",
               "test_fusion_triton.py")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in GPU_MODULES:
            item.add_marker(pytest.mark.gpu)
