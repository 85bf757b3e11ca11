"""Argument checks shared by the fake kernels of every op family, worded like the C++ kernels' errors."""
from __future__ import annotations

import torch

__all__ = ["check_tensor_args", "c10_name"]

# c10's names of the dtypes, as the C++ kernels print them in their errors.
_C10_DTYPE_NAMES = {
    torch.float32: "Float", torch.float64: "Double", torch.float16: "Half", torch.bfloat16: "BFloat16",
    torch.int8: "Char", torch.int16: "Short", torch.int32: "Int", torch.int64: "Long", torch.uint8: "Byte",
    torch.bool: "Bool", torch.complex64: "ComplexFloat", torch.complex128: "ComplexDouble",
}


def c10_name(dtype: torch.dtype) -> str:
    return _C10_DTYPE_NAMES.get(dtype, str(dtype).replace("torch.", ""))


def check_tensor_args(op: str, specs) -> torch.device:
    """The argument checks of a fake kernel, worded like the C++ kernel's (csrc/include/embedfast/common.h), so
    that a traced or meta call fails the way the real call does instead of inventing an output.

    ``specs``: ``(name, tensor, dtype, ndim)`` per tensor argument, where ``dtype`` is one dtype, a tuple of the
    accepted dtypes, or None (not checked), and ``ndim`` the number of dimensions or None. Every tensor must be
    on the device of the first (the kernels take all their tensors from one device; a meta tensor among CPU
    tensors would otherwise send the call to the fake kernel and return an uninitialised CPU tensor).
    Raises TypeError for a non-tensor, ValueError otherwise. Returns the common device.
    """
    first = None
    for name, t, dtype, ndim in specs:
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{op}: argument '{name}' must be a tensor, got {type(t).__name__}")
        if first is None:
            first = (name, t.device)
        elif t.device != first[1]:
            raise ValueError(f"{op}: arguments '{first[0]}' ({first[1]}) and '{name}' ({t.device}) must be on the "
                             "same device")
        if isinstance(dtype, torch.dtype):
            if t.dtype != dtype:
                raise ValueError(f"{op}: argument '{name}' must have dtype {c10_name(dtype)}, got "
                                 f"{c10_name(t.dtype)}")
        elif dtype is not None and t.dtype not in dtype:
            want = " or ".join(str(d).replace("torch.", "") for d in dtype)
            raise ValueError(f"{op}: argument '{name}' must have dtype {want}, got {c10_name(t.dtype)}")
        if ndim is not None and t.dim() != ndim:
            raise ValueError(f"{op}: argument '{name}' must be {ndim}-D, got shape {list(t.shape)}")
    return first[1] if first is not None else torch.device("cpu")
