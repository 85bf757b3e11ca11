"""Triton kernels of ``gather_bags`` (multi-source weighted gather over bags), forward and backward.

Same semantics as the CPU op (csrc/cpu/fusion.cpp): bag ``b`` owns the entries ``e`` in
``[bag_offsets[b], bag_offsets[b+1])``; with ``s_e = source_weight[k_e] * entry_weight[e]``::

    out[n] = sum_{e in bag(ids[n])} s_e * tables[k_e][r_e]           (/ sum_e s_e when renormalize)

zeros for an empty bag (or a renormalised bag whose ``s_e`` sum to zero). fp16/bf16 tables accumulate in fp32
(fp64 tables in fp64).

The kernels, their launch helpers and argument checks are in ``embedfast.fusion.triton_kernels``.

All ops are ``torch.library.triton_op`` with ``wrap_triton`` launches, with fake kernels, so they work under
``torch.compile``. Under ``TRITON_INTERPRET=1`` (set before this module is imported) the kernels run on CPU
tensors in Triton's interpreter (for testing); the interpreted kernels cannot be captured by ``wrap_triton``'s
tracing, so in that mode the ops stay opaque nodes in compiled graphs (see ``INTERPRETED``).

Input validation: argument dtypes/shapes/devices are checked always. Index values (ids, bag offsets, entry
sources and rows) are checked when the op runs eagerly (this costs a device synchronisation); inside a
compiled graph or a CUDA-graph capture they are not checked, but the kernels never read or write out of bounds:
an out-of-range id gives a zero row, a bad entry contributes nothing.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import triton
from torch.library import triton_op, wrap_triton

from .._backend import eager as _eager, keep_opaque_when_interpreted
from .ops import _gather_bags_setup_context, gather_bags_backward_fake_for, gather_bags_backward_with
from .triton_kernels import (_BIG_PY, _BLOCK_N, _BLOCK_U, MAX_TABLES, _acc, _bag_grad_kernel, _bag_weights_kernel,
                             _block_d, _check_args, _check_structure, _gather_fwd_kernel, _raise_entry_error,
                             _rowmajor, _segment_kernel, _segments, _table_args)

__all__ = [
    "MAX_TABLES",
    "INTERPRETED",
    "OPTIMIZERS",
    "gather_bags_triton",
    "gather_bags_triton_backward",
    "gather_bags_triton_backward_update",
    "gather_bags_fused_update",
    "rowwise_adagrad_state",
]

#: The row-wise optimizers of ``gather_bags_triton_backward_update`` (value: the segment kernel's MODE).
OPTIMIZERS = {"sgd": 2, "adagrad": 3}


# ----------------------------------------------------------------------------------------------------------
# forward op
# ----------------------------------------------------------------------------------------------------------


@triton_op("embedfast::gather_bags_triton", mutates_args=())
def gather_bags_triton(tables: list[torch.Tensor], source_weight: torch.Tensor, bag_offsets: torch.Tensor,
                       entry_source: torch.Tensor, entry_row: torch.Tensor, entry_weight: torch.Tensor,
                       ids: torch.Tensor, renormalize: bool, sparse_grad: bool) -> torch.Tensor:
    """Triton forward of ``embedfast::gather_bags`` (same schema and meaning; ``sparse_grad`` only affects the
    backward)."""
    op = "gather_bags_triton"
    _check_args(op, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids)
    tables = [_rowmajor(t) for t in tables]
    source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids = (
        x.contiguous() for x in (source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids))
    K, D = len(tables), tables[0].shape[1]
    N, B, E = ids.shape[0], bag_offsets.shape[0] - 1, entry_source.shape[0]
    eager = _eager(ids, bag_offsets, *tables)
    if eager:
        _check_structure(op, bag_offsets, E, ids)
    out = torch.empty((N, D), dtype=tables[0].dtype, device=tables[0].device)
    if N == 0 or D == 0:
        return out
    err = torch.full((3,), _BIG_PY, dtype=torch.int64, device=ids.device)
    BD = _block_d(D)
    grid = (triton.cdiv(N, _BLOCK_N), triton.cdiv(D, BD))
    wrap_triton(_gather_fwd_kernel)[grid](
        out, out.stride(0), ids, bag_offsets, entry_source, entry_row, entry_weight, source_weight, err,
        *_table_args(tables), N, D, B, E,
        K=K, RENORM=bool(renormalize), ACC=_acc(tables[0].dtype), BLOCK_N=_BLOCK_N, BLOCK_D=BD)
    if eager:
        _raise_entry_error(op, err, entry_source, entry_row, tables)
    return out


@gather_bags_triton.register_fake
def _gather_bags_triton_fake(tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids,
                             renormalize, sparse_grad):
    _check_args("gather_bags_triton", tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight,
                ids)
    return tables[0].new_empty((ids.shape[0], tables[0].shape[1]))


# ----------------------------------------------------------------------------------------------------------
# backward
# ----------------------------------------------------------------------------------------------------------


def _backward_common(op, grad, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids,
                     renormalize, weights_grad, tables_flag, mode, outs=None, states=None, lr=0.0, eps=0.0):
    """Shared backward: returns (gsw, gew, per-table results). mode: 0 dense, 1 sparse, 2 SGD, 3 Adagrad."""
    wdtype = _check_args(op, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids)
    tables = [_rowmajor(t) for t in tables]
    source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids = (
        x.contiguous() for x in (source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids))
    K, D = len(tables), tables[0].shape[1]
    N, B, E = ids.shape[0], bag_offsets.shape[0] - 1, entry_source.shape[0]
    dev, tdtype = tables[0].device, tables[0].dtype
    if grad.dim() != 2 or grad.shape[0] != N or grad.shape[1] != D:
        raise ValueError(f"{op}: argument 'grad' must have shape [{N}, {D}], got {tuple(grad.shape)}")
    if not grad.dtype.is_floating_point:
        raise ValueError(f"{op}: argument 'grad' must be floating, got {grad.dtype}")
    if grad.device != dev:
        raise ValueError(f"{op}: argument 'grad' is on {grad.device} but the tables are on {dev}")
    if len(tables_flag) != K:
        raise ValueError(f"{op}: one table flag per table ({K}) is needed, got {len(tables_flag)}")
    grad = _rowmajor(grad)
    acc_t = torch.float64 if tdtype == torch.float64 else torch.float32
    any_table = any(tables_flag)
    gsw = torch.zeros(K if weights_grad else 0, dtype=wdtype, device=dev)
    gew = torch.zeros(E if weights_grad else 0, dtype=wdtype, device=dev)
    eager = _eager(grad, ids, bag_offsets, *tables)
    if eager:
        _check_structure(op, bag_offsets, E, ids)
    if N == 0 or D == 0 or (not weights_grad and not any_table):
        return gsw, gew, None
    # 1. distinct bags (invalid ids become the empty bag B) and their summed gradient rows G [N (>= U), D]
    sids, perm = torch.sort(torch.where((ids >= 0) & (ids < B), ids, B), stable=True)
    useg, starts = _segments(sids, N)
    G = torch.empty((N, D), dtype=acc_t, device=dev)
    BD = _block_d(D)
    wrap_triton(_bag_grad_kernel)[(triton.cdiv(N, _BLOCK_U), triton.cdiv(D, BD))](
        G, grad, grad.stride(0), perm, starts, N, D, ACC=_acc(tdtype), BLOCK_U=_BLOCK_U, BLOCK_D=BD)
    # 2. coefficients and weight gradients per distinct bag
    KP = triton.next_power_of_2(K)
    nprog = triton.cdiv(N, _BLOCK_U)
    part = torch.zeros((nprog, KP), dtype=acc_t, device=dev)
    coef = torch.zeros(E, dtype=wdtype, device=dev)
    gew_buf = gew if weights_grad else torch.zeros(1, dtype=wdtype, device=dev)
    err = torch.full((3,), _BIG_PY, dtype=torch.int64, device=dev)
    targs = _table_args(tables)
    wrap_triton(_bag_weights_kernel)[(nprog,)](
        gew_buf, coef, part, G, sids, starts, bag_offsets, entry_source, entry_row, entry_weight, source_weight,
        err, *targs, N, D, B, E,
        K=K, KP=KP, RENORM=bool(renormalize), NEED_W=bool(weights_grad), ACC=_acc(tdtype), BLOCK_U=_BLOCK_U,
        BLOCK_D=BD)
    if weights_grad:
        gsw = part.sum(0)[:K].to(wdtype)
    if eager:
        _raise_entry_error(op, err, entry_source, entry_row, tables)
    if not any_table or E == 0:
        return gsw, gew, [] if mode == 1 else None
    # 3. (table, row) keys of the entries of used bags in trainable tables; sorted; one program per key
    rows_t = torch.tensor([t.shape[0] for t in tables], dtype=torch.int64, device=dev)
    base = torch.zeros(K + 1, dtype=torch.int64, device=dev)
    base[1:] = torch.cumsum(rows_t, 0)
    sentinel = int(sum(t.shape[0] for t in tables))
    flag_t = torch.tensor([bool(f) for f in tables_flag], dtype=torch.bool, device=dev)
    bag_to_u = torch.full((B + 1,), -1, dtype=torch.int64, device=dev)
    bag_to_u[sids] = useg  # duplicates of one bag write the same value
    bag_to_u[B] = -1  # invalid ids (mapped to B) own no bag
    ebag = torch.searchsorted(bag_offsets, torch.arange(E, device=dev), right=True) - 1
    ent_u = bag_to_u[ebag.clamp(0, B)]
    k_ok = (entry_source >= 0) & (entry_source < K)
    kc = entry_source.clamp(0, K - 1)
    r_ok = (entry_row >= 0) & (entry_row < rows_t[kc])
    use = (ent_u >= 0) & k_ok & r_ok & flag_t[kc]
    keys = torch.where(use, base[kc] + entry_row, sentinel)
    skeys, kperm = torch.sort(keys, stable=True)
    _, sstarts = _segments(skeys, E)
    vals = torch.zeros(1, dtype=tdtype, device=dev)
    nseg = E  # upper bound: programs past the last key exit at once (static grid; no synchronisation)
    if mode == 1:  # sparse: the used keys' segments come first (the sentinel sorts last); eager only
        nseg = int(((sstarts[:E] < E) & (skeys[sstarts[:E].clamp(max=E - 1)] < sentinel)).sum())
        vals = torch.empty((nseg, D), dtype=tdtype, device=dev)
    if mode == 0:
        outs = [torch.zeros((t.shape[0], D), dtype=tdtype, device=dev) if f else t.new_empty((0, D))
                for t, f in zip(tables, tables_flag)]
    out_slots = (outs if mode in (0, 2, 3) else tables)
    o_args = [o if (mode == 1 or o.numel()) else tables[0] for o in out_slots]
    o_args = o_args + [tables[0]] * (MAX_TABLES - K)
    q_args = [max(int(o.stride(0)), 1) if o.dim() == 2 else 0 for o in out_slots] + [0] * (MAX_TABLES - K)
    if mode == 3:
        h_args = [h if h.numel() else tables[0] for h in states] + [tables[0]] * (MAX_TABLES - K)
    else:
        h_args = [tables[0]] * MAX_TABLES
    if nseg > 0:
        wrap_triton(_segment_kernel)[(nseg,)](
            skeys, sstarts, kperm, ent_u, coef, G, base, vals, *o_args, *q_args, *h_args,
            E, D, sentinel, float(lr), float(eps),
            K=K, MODE=mode, ACC=_acc(tdtype), BLOCK_D=triton.next_power_of_2(D))
    if mode == 1:
        seg_keys = skeys[sstarts[:nseg]]
        res = []
        for k in range(K):
            if not tables_flag[k]:
                res.append((tables[k].new_empty((0, D)), bag_offsets.new_empty((0,))))
                continue
            lo, hi = torch.searchsorted(seg_keys, base[k:k + 2]).tolist()
            res.append((vals[lo:hi].clone(), seg_keys[lo:hi] - int(base[k])))
        return gsw, gew, res
    return gsw, gew, outs


@triton_op("embedfast::gather_bags_triton_backward", mutates_args=())
def gather_bags_triton_backward(grad: torch.Tensor, tables: list[torch.Tensor], source_weight: torch.Tensor,
                                bag_offsets: torch.Tensor, entry_source: torch.Tensor, entry_row: torch.Tensor,
                                entry_weight: torch.Tensor, ids: torch.Tensor, renormalize: bool, weights_grad: bool,
                                tables_grad: list[bool], sparse: bool, entry_weight_grad: bool = True
                                ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Triton backward of ``gather_bags`` (same schema and results as ``embedfast::gather_bags_backward``)."""
    op = "gather_bags_triton_backward"
    K, D = len(tables), (tables[0].shape[1] if len(tables) else 0)
    gsw, gew, res = _backward_common(op, grad, tables, source_weight, bag_offsets, entry_source, entry_row,
                                     entry_weight, ids, renormalize, weights_grad, list(tables_grad),
                                     1 if sparse else 0)
    dev = tables[0].device
    grads, rows = [], []
    for k in range(K):
        t = tables[k]
        empty_rows = torch.empty(0, dtype=torch.int64, device=dev)
        if not tables_grad[k]:
            grads.append(t.new_empty((0, D)))
            rows.append(empty_rows)
        elif sparse:
            if res:
                grads.append(res[k][0])
                rows.append(res[k][1])
            else:
                grads.append(t.new_empty((0, D)))
                rows.append(empty_rows)
        else:
            grads.append(res[k] if res is not None else torch.zeros((t.shape[0], D), dtype=t.dtype, device=dev))
            rows.append(empty_rows)
    if not entry_weight_grad:  # the kernel computes both weight gradients together; hand back only what was asked
        gew = gew.new_empty((0,))
    return gsw, gew, grads, rows


# Same output shapes as the C++ backward: share its fake kernel.
gather_bags_triton_backward.register_fake(gather_bags_backward_fake_for("gather_bags_triton_backward"))


@triton_op("embedfast::gather_bags_triton_backward_update", mutates_args=("tables", "states"))
def gather_bags_triton_backward_update(grad: torch.Tensor, tables: list[torch.Tensor], states: list[torch.Tensor],
                                       source_weight: torch.Tensor, bag_offsets: torch.Tensor,
                                       entry_source: torch.Tensor, entry_row: torch.Tensor,
                                       entry_weight: torch.Tensor, ids: torch.Tensor, renormalize: bool,
                                       weights_grad: bool, tables_update: list[bool], optimizer: str, lr: float,
                                       eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Backward of ``gather_bags`` fused with a row-wise update of the tables flagged in ``tables_update``.

    For every table row g_r with a nonzero contribution (each row reduced once, no atomics):
    ``optimizer="sgd"``: ``w_r -= lr * g_r``; ``"adagrad"`` (row-wise, one state per row, as in FBGEMM):
    ``h_r += mean(g_r ** 2); w_r -= lr * g_r / (sqrt(h_r) + eps)`` with ``states[k]`` float32 (float64 for
    float64 tables) [V_k]. Returns (grad_source_weight, grad_entry_weight) as the backward op does (empty
    unless ``weights_grad``). Tables are updated in place; their rows must be contiguous.
    """
    op = "gather_bags_triton_backward_update"
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"{op}: argument 'optimizer' must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}")
    K = len(tables)
    if len(states) != K:
        raise ValueError(f"{op}: argument 'states' must have one tensor per table ({K}), got {len(states)}")
    for k, (t, f) in enumerate(zip(tables, tables_update)):
        if f and t.dim() == 2 and t.shape[1] > 1 and t.stride(1) != 1:
            raise ValueError(f"{op}: 'tables[{k}]' is updated in place, so its rows must be contiguous "
                             f"(stride(1) == 1), got strides {tuple(t.stride())}")
        if f and optimizer == "adagrad":
            h = states[k]
            sdt = torch.float64 if t.dtype == torch.float64 else torch.float32
            if h.dim() != 1 or h.shape[0] != t.shape[0] or h.dtype != sdt or h.device != t.device:
                raise ValueError(f"{op}: 'states[{k}]' must be a {sdt} tensor of shape [{t.shape[0]}] on "
                                 f"{t.device} (one Adagrad state per row of tables[{k}]), got {h.dtype} "
                                 f"{tuple(h.shape)} on {h.device}")
            if not h.is_contiguous():
                raise ValueError(f"{op}: 'states[{k}]' must be contiguous")
    gsw, gew, _ = _backward_common(op, grad, tables, source_weight, bag_offsets, entry_source, entry_row,
                                   entry_weight, ids, renormalize, weights_grad, list(tables_update),
                                   OPTIMIZERS[optimizer], outs=list(tables), states=list(states), lr=lr, eps=eps)
    return gsw, gew


@gather_bags_triton_backward_update.register_fake
def _gather_bags_triton_backward_update_fake(grad, tables, states, source_weight, bag_offsets, entry_source,
                                             entry_row, entry_weight, ids, renormalize, weights_grad, tables_update,
                                             optimizer, lr, eps):
    k = len(tables)
    return (source_weight.new_empty((k,) if weights_grad else (0,)),
            entry_weight.new_empty((entry_weight.shape[0],) if weights_grad else (0,)))


# ----------------------------------------------------------------------------------------------------------
# autograd and the fused-update training path
# ----------------------------------------------------------------------------------------------------------


# Same autograd as the C++ op, with the Triton backward kernel.
gather_bags_triton.register_autograd(
    gather_bags_backward_with(lambda *args: torch.ops.embedfast.gather_bags_triton_backward(*args)),
    setup_context=_gather_bags_setup_context)


def rowwise_adagrad_state(tables: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Zero row-wise Adagrad states (one accumulator per row) for ``gather_bags_fused_update``."""
    return [torch.zeros(t.shape[0], dtype=torch.float64 if t.dtype == torch.float64 else torch.float32,
                        device=t.device) for t in tables]


class _FusedUpdate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, anchor, source_weight, entry_weight, cfg, *tables):
        out = torch.ops.embedfast.gather_bags_triton(list(tables), source_weight, cfg["bag_offsets"],
                                                     cfg["entry_source"], cfg["entry_row"], entry_weight,
                                                     cfg["ids"], cfg["renormalize"], False)
        ctx.save_for_backward(source_weight, entry_weight)
        ctx.cfg = cfg
        ctx.tables = tables
        return out

    @staticmethod
    def backward(ctx, grad):
        source_weight, entry_weight = ctx.saved_tensors
        cfg = ctx.cfg
        weights_grad = bool(ctx.needs_input_grad[1] or ctx.needs_input_grad[2])
        gsw, gew = torch.ops.embedfast.gather_bags_triton_backward_update(
            grad, list(ctx.tables), cfg["states"], source_weight, cfg["bag_offsets"], cfg["entry_source"],
            cfg["entry_row"], entry_weight, cfg["ids"], cfg["renormalize"], weights_grad, cfg["update"],
            cfg["optimizer"], cfg["lr"], cfg["eps"])
        return (None, (gsw if ctx.needs_input_grad[1] else None), (gew if ctx.needs_input_grad[2] else None), None,
                *([None] * len(ctx.tables)))


def gather_bags_fused_update(tables: Sequence[torch.Tensor], source_weight: torch.Tensor, bag_offsets: torch.Tensor,
                             entry_source: torch.Tensor, entry_row: torch.Tensor, entry_weight: torch.Tensor,
                             ids: torch.Tensor, *, optimizer: str = "sgd", lr: float = 0.01, eps: float = 1e-8,
                             states: Optional[Sequence[torch.Tensor]] = None, update: Optional[Sequence[bool]] = None,
                             renormalize: bool = True) -> torch.Tensor:
    """``gather_bags`` (Triton) whose backward updates the tables in place instead of returning their gradients.

    The backward reduces each touched table row once (sorted segments, no atomics) and applies ``optimizer``
    (``"sgd"`` or row-wise ``"adagrad"``, see ``gather_bags_triton_backward_update``) with learning rate ``lr``
    to the tables flagged in ``update`` (default: all). The tables get no ``.grad``; ``source_weight`` and
    ``entry_weight`` get ordinary gradients when they require them. ``states`` (row-wise Adagrad) come from
    ``rowwise_adagrad_state(tables)`` and are updated in place. Eager mode only.
    """
    tables = list(tables)
    if update is None:
        update = [True] * len(tables)
    if optimizer == "adagrad" and states is None:
        raise ValueError("gather_bags_fused_update: optimizer='adagrad' needs states=rowwise_adagrad_state(tables)")
    if states is None:
        states = [t.new_empty(0) for t in tables]
    cfg = dict(bag_offsets=bag_offsets, entry_source=entry_source, entry_row=entry_row, ids=ids,
               renormalize=bool(renormalize), states=list(states), update=[bool(u) for u in update],
               optimizer=optimizer, lr=float(lr), eps=float(eps))
    # a zero-size input that requires grad makes autograd run the backward (the update) even when no other
    # input requires a gradient
    anchor = torch.empty(0, device=tables[0].device, requires_grad=True)
    return _FusedUpdate.apply(anchor, source_weight, entry_weight, cfg, *[t.detach() for t in tables])


#: True when the kernels were defined under TRITON_INTERPRET=1 (they then run on CPU tensors, in Python).
INTERPRETED = not isinstance(_gather_fwd_kernel, triton.runtime.jit.JITFunction)


if INTERPRETED:
    keep_opaque_when_interpreted((gather_bags_triton, gather_bags_triton_backward, gather_bags_triton_backward_update))
