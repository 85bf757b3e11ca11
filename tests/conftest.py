"""Suite-wide test set-up.

Triton's interpreter (TRITON_INTERPRET=1, how the Triton kernels are tested without a GPU) must be switched on
before ``triton`` is first imported: ``@triton.jit`` decides at decoration time, and that includes triton's own
library functions (``tl.zeros``, ``tl.sum``, ...), which interpreted kernels cannot call when they were decorated
for compilation. So on a machine without CUDA it is set here, before any test module imports triton.
"""
import importlib.util
import os

import torch

if importlib.util.find_spec("triton") is not None and not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
