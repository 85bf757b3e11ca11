"""The ``gather_bags`` op family: fake (meta) kernels, autograd registration, backend choice and the typed wrapper.

Schemas: csrc/ops.cpp (``embedfast::gather_bags``, ``embedfast::gather_bags_backward``); CPU kernels in csrc/cpu/;
Triton kernels in ``embedfast.fusion.triton`` (imported only when the Triton backend is asked for). The public
namespace ``embedfast.ops`` re-exports the names of this module.
"""
from __future__ import annotations

import torch

from .._argcheck import c10_name, check_tensor_args
from .._backend import BACKENDS, select_backend
from .._ext import ops as _ops

__all__ = ["GATHER_BACKENDS", "check_gather_fake", "gather_bags_backward_fake_for", "gather_bags_backward_with",
           "gather_backend", "gather_bags"]


_TABLE_DTYPES = (torch.float32, torch.float16, torch.bfloat16, torch.float64)


def check_gather_fake(op, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids,
                      grad=None):
    """The checks of csrc/cpu/fusion.cpp check_args (and of the backward's `grad`) for the fake kernels."""
    if len(tables) < 1:
        raise ValueError(f"{op}: argument 'tables' must hold at least one table, got none")
    t0 = tables[0]
    if isinstance(t0, torch.Tensor) and t0.dtype not in _TABLE_DTYPES:
        raise ValueError(f"{op}: argument 'tables[0]' must be float32, float16, bfloat16 or float64, got "
                         f"{c10_name(t0.dtype)}")
    specs = [(f"tables[{k}]", t, None, None) for k, t in enumerate(tables)]
    wdt = torch.float64 if t0.dtype == torch.float64 else torch.float32
    specs += [("source_weight", source_weight, wdt, 1), ("bag_offsets", bag_offsets, torch.int64, 1),
              ("entry_source", entry_source, torch.int64, 1), ("entry_row", entry_row, torch.int64, 1),
              ("entry_weight", entry_weight, wdt, 1), ("ids", ids, torch.int64, 1)]
    if grad is not None:
        specs.append(("grad", grad, None, 2))
    check_tensor_args(op, specs)
    for k, t in enumerate(tables):
        if t.dim() != 2:
            raise ValueError(f"{op}: argument 'tables[{k}]' must be 2-D [V, D], got shape {list(t.shape)}")
        if t.dtype != t0.dtype:
            raise ValueError(f"{op}: all tables must share one dtype: 'tables[{k}]' is {c10_name(t.dtype)} but "
                             f"'tables[0]' is {c10_name(t0.dtype)}")
        torch._check_value(t.shape[1] == t0.shape[1], lambda: f"{op}: all tables must share one dimension D: "
                     f"'tables[{k}]' has shape {list(t.shape)} but 'tables[0]' has shape {list(t0.shape)}")
    torch._check_value(source_weight.shape[0] == len(tables), lambda: f"{op}: argument 'source_weight' must have one "
                 f"weight per table ({len(tables)}), got shape {list(source_weight.shape)}")
    torch._check_value(bag_offsets.shape[0] >= 1,
                 lambda: f"{op}: argument 'bag_offsets' must have B+1 >= 1 elements, got 0")
    E = entry_source.shape[0]
    torch._check_value((entry_row.shape[0] == E) & (entry_weight.shape[0] == E), lambda: f"{op}: arguments "
                 f"'entry_source' {list(entry_source.shape)}, 'entry_row' {list(entry_row.shape)} and "
                 f"'entry_weight' {list(entry_weight.shape)} must have the same length")
    if grad is not None:
        if not grad.dtype.is_floating_point:
            raise ValueError(f"{op}: argument 'grad' must be floating, got {c10_name(grad.dtype)}")
        torch._check_value((grad.shape[0] == ids.shape[0]) & (grad.shape[1] == t0.shape[1]), lambda: f"{op}: argument "
                     f"'grad' must have shape [{ids.shape[0]}, {t0.shape[1]}], got {list(grad.shape)}")


@torch.library.register_fake("embedfast::gather_bags")
def _gather_bags_fake(tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize,
                      sparse_grad):
    check_gather_fake("gather_bags", tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids)
    d = tables[0].shape[1]
    return tables[0].new_empty((ids.shape[0], d))


def gather_bags_backward_fake_for(op: str):
    """The fake kernel of a gather_bags backward op named ``op`` (schema of ``embedfast::gather_bags_backward``)."""

    def fake(grad, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize,
             weights_grad, tables_grad, sparse, entry_weight_grad=True):
        check_gather_fake(op, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, grad)
        if len(tables_grad) != len(tables):
            raise ValueError(f"{op}: argument 'tables_grad' must have one flag per table ({len(tables)}), got "
                             f"{len(tables_grad)}")
        return _gather_bags_backward_outputs(tables, source_weight, bag_offsets, entry_weight, weights_grad,
                                             tables_grad, sparse, entry_weight_grad)

    return fake


def _gather_bags_backward_outputs(tables, source_weight, bag_offsets, entry_weight, weights_grad, tables_grad,
                                  sparse, entry_weight_grad):
    ctx = torch.library.get_ctx()
    k = len(tables)
    gsw = source_weight.new_empty((k,) if weights_grad else (0,))
    gew = entry_weight.new_empty((entry_weight.shape[0],) if weights_grad and entry_weight_grad else (0,))
    grads, rows = [], []
    for t, need in zip(tables, tables_grad):
        d = t.shape[1]
        if need and sparse:
            m = ctx.new_dynamic_size()
            grads.append(t.new_empty((m, d)))
            rows.append(bag_offsets.new_empty((m,)))
        else:
            grads.append(t.new_empty((t.shape[0] if need else 0, d)))
            rows.append(bag_offsets.new_empty((0,)))
    return gsw, gew, grads, rows


_gather_bags_backward_fake = torch.library.register_fake("embedfast::gather_bags_backward")(
    gather_bags_backward_fake_for("gather_bags_backward"))


def _gather_bags_setup_context(ctx, inputs, output):
    tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, renormalize, sparse_grad = inputs
    ctx.save_for_backward(source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, *tables)
    ctx.renormalize = renormalize
    ctx.sparse_grad = sparse_grad
    ctx.num_tables = len(tables)


def gather_bags_backward_with(backward_op):
    """The autograd backward of a gather_bags op whose backward kernel is ``backward_op`` (same schema as
    ``embedfast::gather_bags_backward``); shared by the C++ op and the Triton op."""

    def backward(ctx, grad):
        return _gather_bags_backward(backward_op, ctx, grad)

    return backward


def _gather_bags_backward(backward_op, ctx, grad):
    source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, *tables = ctx.saved_tensors
    need = ctx.needs_input_grad
    tables_grad = [bool(x) for x in need[0]]
    weights_grad = bool(need[1] or need[5])
    if not weights_grad and not any(tables_grad):
        return [None] * len(tables), None, None, None, None, None, None, None, None
    gsw, gew, tgrads, trows = backward_op(
        grad, tables, source_weight, bag_offsets, entry_source, entry_row, entry_weight, ids, ctx.renormalize,
        weights_grad, tables_grad, ctx.sparse_grad, bool(need[5]))
    out_tables = []
    for t, need_t, g, r in zip(tables, tables_grad, tgrads, trows):
        if not need_t:
            out_tables.append(None)
        elif ctx.sparse_grad:
            out_tables.append(torch.sparse_coo_tensor(r.unsqueeze(0), g, t.shape, is_coalesced=True,
                                                        check_invariants=False))
        else:
            out_tables.append(g)
    return (out_tables, gsw if need[1] else None, None, None, None, gew if need[5] else None, None, None, None)


torch.library.register_autograd("embedfast::gather_bags",
                                gather_bags_backward_with(lambda *args: _ops.gather_bags_backward(*args)),
                                setup_context=_gather_bags_setup_context)


GATHER_BACKENDS = BACKENDS


def gather_backend(backend: str, device: "torch.device | str") -> str:
    """The kernels ``gather_bags`` runs for tensors on ``device``: ``"cpu"``, ``"cuda"`` or ``"triton"``
    (``embedfast._backend.select_backend``; the Triton kernels are ``embedfast.fusion.triton``)."""
    return select_backend("gather_bags", backend, device, "embedfast.fusion.triton")


def _gather_op(kind: str):
    if kind == "triton":
        from . import triton as _tg  # noqa: F401  (registers embedfast::gather_bags_triton)

        return torch.ops.embedfast.gather_bags_triton
    return _ops.gather_bags  # the dispatcher picks the CPU or CUDA kernel by device


def gather_bags(
    tables: "list[torch.Tensor]",
    source_weight: torch.Tensor,
    bag_offsets: torch.Tensor,
    entry_source: torch.Tensor,
    entry_row: torch.Tensor,
    entry_weight: torch.Tensor,
    ids: torch.Tensor,
    *,
    renormalize: bool = True,
    sparse_grad: bool = False,
    backend: str = "auto",
) -> torch.Tensor:
    """Multi-source weighted gather over bags (differentiable).

    Bag ``b`` owns the entries ``e`` in ``[bag_offsets[b], bag_offsets[b+1])``; entry ``e`` names source
    ``k = entry_source[e]``, row ``entry_row[e]`` of ``tables[k]`` and weight ``entry_weight[e]``. For every id::

        out[n] = sum_e source_weight[k_e] * entry_weight[e] * tables[k_e][entry_row[e]]   (/ sum_e source_weight[k_e]
                                                                                            * entry_weight[e] if renormalize)

    with zeros for empty bags. ``ids`` may have any shape; the result has shape ``[*ids.shape, D]``. Tables are
    [V_k, D] float32/float16/bfloat16/float64 tensors of one dtype; weights are float32 (float64 for float64 tables);
    index tensors int64 (int32 ids are accepted). Gradients flow to the tables that require them (dense, or sparse
    COO rows when ``sparse_grad``), to ``source_weight`` and to ``entry_weight``; frozen tables cost nothing.

    ``backend``: ``"auto"`` (Triton for CUDA tensors -- the CUDA kernels only once verified on a GPU,
    ``embedfast._backend.CUDA_KERNELS_VERIFIED`` --; the C++ op for CPU tensors),
    ``"cuda"`` or ``"triton"`` (an error when not available for the tensors' device); see
    ``gather_backend``.
    """
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"gather_bags: argument 'ids' must be a tensor, got {type(ids).__name__}")
    if ids.dtype == torch.int32:
        ids = ids.long()
    shape = ids.shape
    op = _gather_op(gather_backend(backend, tables[0].device if len(tables) else torch.device("cpu")))
    out = op(list(tables), source_weight, bag_offsets, entry_source, entry_row, entry_weight,
             ids.reshape(-1), renormalize, sparse_grad)
    return out.reshape(*shape, out.shape[-1])
