"""One backend choice for every op family: the C++ op (CPU; CUDA when built) or the Triton kernels.

``backend="auto"``: CPU tensors use the C++ CPU op; CUDA tensors use the Triton kernels (the CUDA kernels of
csrc/cuda/ are picked by "auto" only once they have run on a GPU: :data:`CUDA_KERNELS_VERIFIED`; until then
``backend="cuda"`` asks for them explicitly, in a build made with ``EMBEDFAST_CUDA=1``). ``"cpu"`` / ``"cuda"`` / ``"triton"`` force a backend and raise a clear error
when it cannot run on the tensors' device. The Triton kernels run on CPU tensors only in Triton's interpreter
(``TRITON_INTERPRET=1`` set before the family's Triton module is first imported), which is meant for testing.

Everything here costs nothing at import time: triton and ``torch._dynamo`` are never imported by this module,
and the availability checks are constants under torch.compile.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Callable, Optional

import torch

__all__ = ["BACKENDS", "CUDA_KERNELS_VERIFIED", "TRITON_UNVERIFIED", "select_backend", "has_cuda_kernel", "triton_state", "triton_importable", "interpret_mode",
           "has_triton", "keep_opaque_when_interpreted", "eager", "constant_under_compile"]

#: The backends every op family accepts.
BACKENDS = ("auto", "cpu", "cuda", "triton")

#: True once the CUDA kernels (csrc/cuda/) have passed benchmarks/gpu/check.sh on a GPU (flip together with
#: build_config.CUDA_VERIFIED); until then backend="auto" never picks them, even in a build that has them.
CUDA_KERNELS_VERIFIED = False

#: Ops whose Triton kernel has run only in Triton's interpreter, never compiled on a GPU: backend="auto" does not
#: pick it for CUDA tensors (backend="triton" asks for it explicitly) until the op's tests and benchmark have passed
#: in benchmarks/gpu/check.sh on a GPU; then its name is removed here.
TRITON_UNVERIFIED = frozenset({"word2vec_subword_train"})


def constant_under_compile(fn):
    """``torch.compiler.assume_constant_result(fn)`` without importing ``torch._dynamo`` at import time.

    That import costs about a second and ~150 MB of resident memory for every user of the package, compiling or
    not. When dynamo is already loaded the real decorator is used; otherwise the function gets the same marker
    attribute that ``torch._dynamo.assume_constant_result`` sets (tests/test_build.py checks that it still does).
    """
    if "torch._dynamo" in sys.modules:
        return torch.compiler.assume_constant_result(fn)
    fn._dynamo_marked_constant = True
    return fn


def triton_importable() -> bool:
    """True when the ``triton`` package is installed (without importing it)."""
    return importlib.util.find_spec("triton") is not None


def interpret_mode() -> bool:
    """True when ``TRITON_INTERPRET=1`` is set (Triton kernels then run on the CPU, in Python)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def has_triton(device: "str | torch.device | None" = None) -> bool:
    """True when embedfast's Triton kernels can run on ``device`` ("cuda", "cpu"; None: any device).

    CUDA tensors need triton and a CUDA device; CPU tensors need triton and ``TRITON_INTERPRET=1`` (the
    interpreter, meant for testing).
    """
    if not triton_importable():
        return False
    if device is None:
        return torch.cuda.is_available() or interpret_mode()
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available()
    if dev.type == "cpu":
        return interpret_mode()
    return False


@constant_under_compile
def has_cuda_kernel(name: str) -> bool:
    """True when ``embedfast::name`` has a CUDA kernel registered (embedfast was built with CUDA)."""
    return torch._C._dispatch_has_kernel_for_dispatch_key(f"embedfast::{name}", "CUDA")


@constant_under_compile
def triton_state(module: str) -> int:
    """State of the Triton kernels in ``module`` (a family's Triton module): 0: no triton; 1: triton, kernels
    compiled (or not imported yet, no interpreter); 2: kernels imported and interpreted; 3: not imported yet but
    TRITON_INTERPRET=1 is set (they will be interpreted)."""
    if not triton_importable():
        return 0
    mod = sys.modules.get(module)
    if mod is not None:
        return 2 if mod.INTERPRETED else 1
    return 3 if interpret_mode() else 1


def select_backend(op: str, backend: str, device: "torch.device | str", triton_module: str,
                   cuda_built: Optional[Callable[[], bool]] = None) -> str:
    """The kernels ``op`` runs for tensors on ``device``: ``"cpu"``, ``"cuda"`` or ``"triton"``.

    ``backend`` is one of :data:`BACKENDS`; ``triton_module`` is the module holding the family's Triton kernels;
    ``cuda_built()`` (default: ``has_cuda_kernel(op)``) says whether the op has a CUDA kernel in this build. The
    availability checks run only when the answer depends on them (the common CPU "auto" case runs none: this runs
    on every op call). A forced backend that cannot run on ``device`` raises ValueError; one that is not
    available in this installation raises RuntimeError.
    """
    if backend not in BACKENDS:
        raise ValueError(f"{op}: argument 'backend' must be one of {BACKENDS}, got {backend!r}")
    dev = torch.device(device)
    if backend == "auto" and dev.type == "cpu":
        return "cpu"
    built = cuda_built if cuda_built is not None else (lambda: has_cuda_kernel(op))
    interpreted = ("the Triton kernels run in Triton's interpreter in this process (TRITON_INTERPRET=1): CPU "
                   "tensors only")
    if backend == "cpu":
        if dev.type != "cpu":
            raise ValueError(f"{op}: backend='cpu' needs CPU tensors, got tensors on {dev}")
        return "cpu"
    if backend == "cuda":
        if dev.type != "cuda":
            raise ValueError(f"{op}: backend='cuda' needs CUDA tensors, got tensors on {dev}")
        if not built():
            raise RuntimeError(f"{op}: backend='cuda' is not available: embedfast was built without CUDA kernels "
                               f"for {op} (use backend='triton' or 'auto')")
        return "cuda"
    if backend == "triton":
        triton = triton_state(triton_module)
        if triton == 0:
            raise RuntimeError(f"{op}: backend='triton' needs the triton package (pip install triton)")
        if dev.type == "cuda":
            if triton >= 2:
                raise RuntimeError(f"{op}: {interpreted}")
            return "triton"
        if dev.type == "cpu":
            if triton < 2:
                raise RuntimeError(f"{op}: backend='triton' on CPU tensors runs only in Triton's interpreter: set "
                                   f"TRITON_INTERPRET=1 before {triton_module} is imported (for testing; use "
                                   "backend='auto' for the C++ CPU op)")
            return "triton"
        raise ValueError(f"{op}: backend='triton' supports CUDA tensors (or CPU tensors in the interpreter), got "
                         f"tensors on {dev}")
    # auto, not CPU
    if dev.type == "cuda":
        if CUDA_KERNELS_VERIFIED and built():
            return "cuda"
        triton = triton_state(triton_module)
        if op in TRITON_UNVERIFIED:
            raise RuntimeError(f"{op}: backend='auto' does not pick the Triton kernel of {op} for CUDA tensors: it "
                               "has run only in Triton's interpreter, never on a GPU (embedfast._backend."
                               "TRITON_UNVERIFIED); pass backend='triton' to use it anyway, or train on CPU tensors")
        if triton == 1:
            return "triton"
        if triton >= 2:
            raise RuntimeError(f"{op}: no CUDA kernel in this build and {interpreted}")
        if built():
            raise RuntimeError(f"{op}: triton is not installed and backend='auto' does not pick embedfast's CUDA "
                               "kernels until they have run on a GPU (CUDA_KERNELS_VERIFIED): pass backend='cuda' "
                               "to use them, or pip install triton")
        raise RuntimeError(f"{op}: no GPU kernels for CUDA tensors: embedfast was built without CUDA kernels for "
                           f"{op} and triton is not installed (pip install triton)")
    raise ValueError(f"{op}: no kernel for tensors on {dev} (CPU and CUDA are supported)")


def eager(*tensors: torch.Tensor) -> bool:
    """True when the tensors are real (not fake/functional tracing tensors) and no CUDA graph is being captured:
    the Triton wrappers' data checks (which synchronise) run only then."""
    from torch._subclasses.fake_tensor import FakeTensor
    from torch._subclasses.functional_tensor import FunctionalTensor

    for t in tensors:
        if isinstance(t, (FakeTensor, FunctionalTensor)) or torch._is_functional_tensor(t):
            return False
    if tensors and tensors[0].is_cuda and torch.cuda.is_current_stream_capturing():
        return False
    return True


def keep_opaque_when_interpreted(ops) -> None:
    """Make AOTAutograd keep each of these ``triton_op`` ops as one opaque node (fake kernel for the shapes, the
    interpreter at run time). Interpreted kernels cannot be captured by ``wrap_triton``'s tracing (it needs
    compiled JITFunctions), so without this torch.compile could not decompose the ops into their kernels.
    Called by the kernel modules only when their kernels were defined under TRITON_INTERPRET=1."""
    from torch._subclasses.functional_tensor import FunctionalTensorMode

    def opaque(mode, op, types, args, kwargs):
        return mode.__torch_dispatch__(op, types, args, kwargs)

    for op in ops:
        op.register_torch_dispatch(FunctionalTensorMode, opaque)
