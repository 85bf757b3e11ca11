"""Triton kernels of embedfast (GPU; on the CPU through Triton's interpreter with ``TRITON_INTERPRET=1``).

Importing this package never imports triton. The kernels live in submodules (``embedfast.triton.gather``) that
are imported lazily, only when a Triton backend is asked for (``embedfast._backend``): ``@triton.jit`` decides at
decoration time whether a kernel is compiled or interpreted, so ``TRITON_INTERPRET`` must be set before that
import.
"""
