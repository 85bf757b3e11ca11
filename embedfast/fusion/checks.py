"""Argument checks of ``MultiSourceEmbedding`` (once per construction, vectorised; never per forward call)."""
from __future__ import annotations

import math
import warnings
from typing import Any, Optional

import torch

from .._vocab import check_oov
from .ops import GATHER_BACKENDS

__all__ = ["check_tables", "check_index", "check_bags", "check_weights", "check_options",
           "check_bag_tensors"]


def check_tables(tables: Any) -> list[torch.Tensor]:
    if isinstance(tables, torch.Tensor) or not isinstance(tables, (list, tuple)):
        raise TypeError(f"MultiSourceEmbedding: tables must be a list of 2-D tensors, got {type(tables).__name__}")
    tables = list(tables)
    if not tables:
        raise ValueError("MultiSourceEmbedding: at least one table is needed")
    for k, t in enumerate(tables):
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            raise ValueError(f"MultiSourceEmbedding: tables[{k}] must be a 2-D tensor [V_k, D], got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"MultiSourceEmbedding: tables[{k}] must be floating-point, got {t.dtype}")
        if t.dtype != tables[0].dtype:
            raise ValueError(f"MultiSourceEmbedding: tables must share one dtype; tables[{k}] is {t.dtype}, "
                             f"tables[0] is {tables[0].dtype}")
        if t.device != tables[0].device:
            raise ValueError(f"MultiSourceEmbedding: tables must be on one device; tables[{k}] is on {t.device}, "
                             f"tables[0] on {tables[0].device}")
    return tables


def check_bags(tables: list, offsets: torch.Tensor, src: torch.Tensor, rows: torch.Tensor, wts: torch.Tensor) -> None:
    """The CSR of bags is consistent with the tables (once per construction, vectorised)."""
    for name, t in (("bag_offsets", offsets), ("entry_source", src), ("entry_row", rows), ("entry_weight", wts)):
        if not isinstance(t, torch.Tensor) or t.dim() != 1:
            raise ValueError(f"MultiSourceEmbedding: {name} must be a 1-D tensor, got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    E = rows.numel()
    if src.numel() != E or wts.numel() != E:
        raise ValueError(f"MultiSourceEmbedding: entry_source ({src.numel()}), entry_row ({E}) and entry_weight "
                         f"({wts.numel()}) must have one value per entry")
    if offsets.numel() < 1 or int(offsets[0]) != 0 or int(offsets[-1]) != E or bool((offsets[1:] < offsets[:-1]).any()):
        raise ValueError(f"MultiSourceEmbedding: bag_offsets must start at 0, never decrease and end at the number "
                         f"of entries ({E}); got {offsets[:3].tolist()}...{offsets[-2:].tolist()}")
    if E == 0:
        return
    K = len(tables)
    if bool(((src < 0) | (src >= K)).any()):
        e = int(((src < 0) | (src >= K)).nonzero()[0, 0])
        raise IndexError(f"MultiSourceEmbedding: entry_source[{e}] = {int(src[e])} is not a source (0..{K - 1})")
    sizes = torch.tensor([t.shape[0] for t in tables], dtype=torch.int64, device=src.device)
    bad = (rows < 0) | (rows >= sizes[src])
    if bool(bad.any()):
        e = int(bad.nonzero()[0, 0])
        raise IndexError(f"MultiSourceEmbedding: entry_row[{e}] = {int(rows[e])} is out of range for source "
                         f"{int(src[e])} ({int(sizes[src[e]])} rows)")
    if wts.is_floating_point() and not bool(torch.isfinite(wts).all()):
        e = int((~torch.isfinite(wts)).nonzero()[0, 0])
        raise ValueError(f"MultiSourceEmbedding: entry_weight[{e}] = {float(wts[e])} is not finite")


def check_weights(weights: Any, K: int, dtype: torch.dtype, positive: bool = False) -> torch.Tensor:
    """K source weights as a tensor: finite, >= 0, not all zero (one value per source); ``positive``: all > 0
    (learned weights start from their log)."""
    if isinstance(weights, (str, bytes)):
        raise TypeError(f"MultiSourceEmbedding: weights must be {K} numbers, got a {type(weights).__name__} "
                        f"{weights!r}")
    try:
        w0 = torch.as_tensor(weights, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"MultiSourceEmbedding: weights must be {K} numbers, got {weights!r} ({exc})") from None
    if w0.numel() != K:
        raise ValueError(f"MultiSourceEmbedding: weights must have one value per source ({K}), got {w0.numel()}")
    for k, x in enumerate(w0.tolist()):
        if not math.isfinite(x):
            raise ValueError(f"MultiSourceEmbedding: weights[{k}] = {x} is not finite; weights must be finite "
                             "numbers >= 0")
        if x < 0:
            raise ValueError(f"MultiSourceEmbedding: weights[{k}] = {x} is negative; weights must be >= 0")
    if not bool((w0 > 0).any()):
        raise ValueError(f"MultiSourceEmbedding: weights are all zero ({w0.tolist()}); at least one must be > 0")
    if positive and bool((w0 <= 0).any()):
        raise ValueError("MultiSourceEmbedding: learned weights start from log(weights); give positive weights")
    return w0.to(dtype)


def check_index(index: Any, tables: Optional[list]) -> torch.Tensor:
    """The [V, K] index of ``MultiSourceEmbedding(tables, index)`` as int64: one column per table, each value a
    row of its table or -1 (missing). ``tables=None``: the index's own type checks only."""
    if not isinstance(index, torch.Tensor) or index.dim() != 2:
        raise ValueError(f"MultiSourceEmbedding: index must be a LongTensor [V, K], got "
                         f"{getattr(index, 'shape', type(index).__name__)}")
    if index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"MultiSourceEmbedding: index must be int64 (or int32), got {index.dtype}")
    if tables is None:
        return index
    if index.shape[1] != len(tables):
        raise ValueError(f"MultiSourceEmbedding: index has {index.shape[1]} columns but there are "
                         f"{len(tables)} tables")
    index = index.long()
    for k, t in enumerate(tables):
        col = index[:, k]
        bad = (col < -1) | (col >= t.shape[0])
        if bool(bad.any()):
            v = int(bad.nonzero()[0, 0])
            raise IndexError(f"MultiSourceEmbedding: index[{v}, {k}] = {int(col[v])} is out of range for source "
                             f"{k} (tables[{k}] has {t.shape[0]} rows; -1 marks a missing word)")
    return index


#: The OOV policies (one vocabulary across embedfast: ``Vectors.to_embedding(oov=...)`` takes the same).
def _oov_policy(oov: Any, oov_scale: Any, what: str = "MultiSourceEmbedding") -> str:
    """The OOV policy (``embedfast._vocab.check_oov``), with the old spelling ``"random"`` accepted
    (DeprecationWarning) as ``"normal"``."""
    if oov == "random":
        warnings.warn(f"{what}: oov='random' is deprecated; it is called oov='normal' (random normal, std "
                      "oov_scale) everywhere in embedfast", DeprecationWarning, stacklevel=5)
        oov = "normal"
    check_oov(oov, oov_scale, what)
    return oov


def check_options(K: int, *, mode: str, oov: Any, oov_scale: Any, project_to: Any, names: Any,
                  backend: str) -> tuple[str, list]:
    """The construction options of ``MultiSourceEmbedding``; returns (oov policy, source names: ``names`` or
    source0, source1, ...)."""
    if mode not in ("weighted", "attention"):
        raise ValueError(f"MultiSourceEmbedding: mode must be 'weighted' or 'attention', got {mode!r}")
    oov = _oov_policy(oov, oov_scale)
    if project_to is not None and (isinstance(project_to, bool) or not isinstance(project_to, int)
                                   or project_to < 1):
        raise ValueError(f"MultiSourceEmbedding: project_to must be an int >= 1 or None, got {project_to!r}")
    if names is not None:
        names = list(names)
        if len(names) != K:
            raise ValueError(f"MultiSourceEmbedding: {len(names)} names for {K} sources")
    if backend not in GATHER_BACKENDS:
        raise ValueError(f"MultiSourceEmbedding: backend must be one of {GATHER_BACKENDS}, got {backend!r}")
    return oov, names if names is not None else [f"source{k}" for k in range(K)]


def check_bag_tensors(bag_offsets: Any, entry_source: Any, entry_row: Any, entry_weight: Any) -> torch.Tensor:
    """``MultiSourceEmbedding.from_bags``'s tensors: integer offsets, sources and rows, floating weights (default:
    ones); returns the weights."""
    for name, t in (("bag_offsets", bag_offsets), ("entry_source", entry_source), ("entry_row", entry_row)):
        if not isinstance(t, torch.Tensor) or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"MultiSourceEmbedding.from_bags: {name} must be an integer tensor, got "
                            f"{t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}")
    if entry_weight is None:
        return torch.ones(entry_row.numel())
    if not isinstance(entry_weight, torch.Tensor) or not entry_weight.is_floating_point():
        raise TypeError("MultiSourceEmbedding.from_bags: entry_weight must be a floating-point tensor, got "
                        f"{entry_weight.dtype if isinstance(entry_weight, torch.Tensor) else type(entry_weight).__name__}")
    return entry_weight
