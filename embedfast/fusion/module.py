"""``MultiSourceEmbedding``: an embedding layer fused from K pretrained tables with one ``gather_bags`` op.

Construction is a sequence of named steps (``_init``): check the options and bags, register the tables and the
bags, the source weights, the projections (per-source path), the OOV rows. The forward is one gather (plus the
OOV rows), or one gather per source then standard layers when sources are projected or attended over.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn

from .checks import check_bag_tensors, check_bags, check_index, check_options, check_tables, check_weights
from .coverage import coverage_from_bags
from .._hugepages import advise_huge_pages
from .ops import gather_bags
from .pretrained import FromPretrained
from .sources import Source, bags_from_index, merge_sources

__all__ = ["MultiSourceEmbedding"]


class MultiSourceEmbedding(FromPretrained, nn.Module):
    """Fused embedding from K pretrained tables (one ``gather_bags`` op forward and backward).

    Args:
        tables: K tensors [V_k, D] (float32/float16/bfloat16/float64, one dtype).
        index: LongTensor [V, K]: row of word v in source k, -1 where the source lacks it.
        weights: K fixed weights (or the initial weights when learned; default uniform).
        learn_weights: learn ``logits`` (a = softmax(logits)); else ``weights`` stay fixed.
        freeze_tables: tables are buffers (no gradient, no work in backward); else parameters.
        renormalize: divide by the sum of the weights of the sources present.
        sparse: table gradients as sparse COO rows (like ``nn.Embedding(sparse=True)``); else dense.
        oov: words with no source: ``"zeros"``, ``"normal"`` (random normal, std ``oov_scale``; old name
            ``"random"``, deprecated) or ``"mean"`` (of the covered words' fused vectors), as ``Vectors.to_embedding``.
        mode: ``"weighted"`` (fusion by source weights) or ``"attention"`` (dynamic meta-embeddings:
            per-source linear projection to ``project_to``, a learned scoring vector, softmax over present
            sources).
        project_to: output dimension; sources of another dimension get a learned ``nn.Linear`` projection
            (required when dims differ; always used in attention mode).
        backend: gather kernels: ``"auto"`` (CUDA kernels when built, else Triton, on CUDA tensors; the C++ op
            on CPU tensors), ``"cuda"`` or ``"triton"`` (see ``embedfast.ops.gather_backend``).
        huge_pages: put CPU tables on 2 MiB transparent huge pages (``advise_huge_pages``, in place, frozen tables
            too): fewer TLB misses in the random row gathers; a no-op where Linux does not allow it.

    ``forward(ids)`` takes ids of any shape (int64/int32) and returns ``[*ids.shape, D]``. ``coverage`` is a
    ``FusionCoverage`` (per source: ``SourceCoverage``); ``coverage["sources"]`` etc. still read as the old dicts.
    """

    def __init__(self, tables: Sequence[torch.Tensor], index: torch.Tensor, *, weights: Optional[Sequence[float]] = None,
                 learn_weights: bool = True, freeze_tables: bool = True, renormalize: bool = True,
                 sparse: bool = False, oov: str = "zeros", oov_scale: float = 0.1, mode: str = "weighted",
                 project_to: Optional[int] = None, names: Optional[Sequence[str]] = None,
                 generator: Optional[torch.Generator] = None, backend: str = "auto", huge_pages: bool = True):
        super().__init__()
        check_index(index, None)
        tables = check_tables(tables)
        self._init(tables, *bags_from_index(check_index(index, tables)), weights=weights,
                   learn_weights=learn_weights, freeze_tables=freeze_tables, renormalize=renormalize, sparse=sparse,
                   oov=oov, oov_scale=oov_scale, mode=mode, project_to=project_to, names=names, generator=generator,
                   backend=backend, huge_pages=huge_pages)

    # -- construction ---------------------------------------------------------------------------------------

    @classmethod
    def from_bags(cls, tables: Sequence[torch.Tensor], bag_offsets: torch.Tensor, entry_source: torch.Tensor,
                  entry_row: torch.Tensor, entry_weight: Optional[torch.Tensor] = None, **kwargs) -> "MultiSourceEmbedding":
        """Build from bags directly (CSR: ``bag_offsets`` [V+1], ``entry_source``/``entry_row``/``entry_weight`` [E])."""
        entry_weight = check_bag_tensors(bag_offsets, entry_source, entry_row, entry_weight)
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self._init(tables, bag_offsets.long(), entry_source.long(), entry_row.long(), entry_weight, **kwargs)
        return self

    @classmethod
    def from_sources(cls, sources: Sequence[Source], **kwargs) -> "MultiSourceEmbedding":
        """Fuse prepared sources (``vector_source``, ``subword_source``, ``huggingface_source``,
        ``alignment_source``) over one target vocabulary."""
        sources = list(sources)
        if not sources:
            raise ValueError("MultiSourceEmbedding.from_sources: no sources given")
        offsets, src, rows, wts, coverage = merge_sources(sources)
        kwargs.setdefault("names", [s.name for s in sources])
        self = cls.from_bags([s.table for s in sources], offsets, src, rows, wts, **kwargs)
        self.coverage = coverage
        return self

    def _init(self, tables, offsets, src, rows, wts, *, weights=None, learn_weights=True, freeze_tables=True,
              renormalize=True, sparse=False, oov="zeros", oov_scale=0.1, mode="weighted", project_to=None,
              names=None, generator=None, backend="auto", huge_pages=True):
        tables = check_tables(tables)
        K = len(tables)
        oov, names = check_options(K, mode=mode, oov=oov, oov_scale=oov_scale, project_to=project_to, names=names,
                                   backend=backend)
        check_bags(tables, offsets, src, rows, wts)
        dims = [t.shape[1] for t in tables]
        self.backend, self.num_sources, self.mode, self.oov, self.names = backend, K, mode, oov, names
        self.renormalize, self.sparse, self.freeze_tables = bool(renormalize), bool(sparse), bool(freeze_tables)
        self.num_embeddings = offsets.numel() - 1
        self.wdtype = torch.float64 if tables[0].dtype == torch.float64 else torch.float32
        self.embedding_dim = _output_dim(dims, mode, project_to)
        self._register_tables(tables, huge_pages)
        for name, t in (("bag_offsets", offsets), ("entry_source", src), ("entry_row", rows),
                        ("entry_weight", wts.to(self.wdtype))):
            self.register_buffer(name, t.contiguous())
        self._init_source_weights(weights, learn_weights)
        self._init_projections(dims)
        self._init_oov(oov_scale, generator, tables[0].dtype)
        if not hasattr(self, "coverage"):
            self.coverage = coverage_from_bags(self.bag_offsets, self.entry_source, self.names)

    def _register_tables(self, tables: list, huge_pages: bool) -> None:
        """``table_k``: a buffer (frozen: the tensor given, shared) or a parameter (a copy). Trained tables with
        sparse gradients are held by ``SparseTable`` modules (``sparse_tables.k.weight``), so
        DistributedDataParallel reduces them as sparse; the state_dict still names them ``table_k`` (a dense
        module's key; ``tables()`` returns them)."""
        if self.sparse and not self.freeze_tables:
            self.sparse_tables = nn.ModuleList(SparseTable(t.detach()) for t in tables)
            self.register_state_dict_post_hook(_sparse_keys_to_table_keys)
            self.register_load_state_dict_pre_hook(_table_keys_to_sparse_keys)
        for k, t in enumerate(tables):
            t = t.detach()
            if self.freeze_tables:
                self.register_buffer(f"table_{k}", t)
            elif not self.sparse:
                self.register_parameter(f"table_{k}", nn.Parameter(t.clone()))
        if huge_pages:
            for t in self.tables():
                advise_huge_pages(t)

    def _init_source_weights(self, weights, learn_weights: bool) -> None:
        """``logits`` (learned: a = softmax(logits), from log(weights)) or the buffer ``fixed_weights``."""
        K = self.num_sources
        self.learn_weights = bool(learn_weights) and self.mode == "weighted"
        w0 = torch.full((K,), 1.0 / K, dtype=self.wdtype) if weights is None else \
            check_weights(weights, K, self.wdtype, positive=self.learn_weights)
        if self.learn_weights:
            self.logits = nn.Parameter(torch.log(w0 / w0.sum()))
        else:
            self.register_buffer("fixed_weights", w0)

    def _init_projections(self, dims: list) -> None:
        """Per-source path: a projection for each source whose dim differs from the output (all of them in
        attention mode, with a scorer), and each source's own bags."""
        self.projections = nn.ModuleDict()
        attention = self.mode == "attention"
        self._per_source = attention or any(d != self.embedding_dim for d in dims)
        if self._per_source:
            for k, d in enumerate(dims):
                if attention or d != self.embedding_dim:
                    self.projections[str(k)] = nn.Linear(d, self.embedding_dim, bias=attention, dtype=self.wdtype)
            for name, buf in _per_source_bags(self.bag_offsets, self.entry_source, self.entry_row,
                                              self.entry_weight, self.num_sources).items():
                self.register_buffer(name, buf)
        if attention:
            self.scorer = nn.Linear(self.embedding_dim, 1, dtype=self.wdtype)

    def _init_oov(self, oov_scale: float, generator, dtype: torch.dtype) -> None:
        """Words with an empty bag get one entry into an extra table ``oov_table`` (``_oov_table``)."""
        empty = (self.bag_offsets[1:] == self.bag_offsets[:-1]).nonzero().flatten()
        self.register_buffer("oov_words", empty)
        self.register_buffer("oov_rows", torch.full((self.num_embeddings,), -1, dtype=torch.int64))
        self.oov_rows[empty] = torch.arange(empty.numel()) if self.oov == "normal" else 0
        ot = _oov_table(self.oov, self.bag_offsets, self.embedding_dim, self._fused, oov_scale, generator)
        if ot is None:
            self.oov_table = None
            return
        ot = ot.to(dtype if not self._per_source else self.wdtype)
        if self.freeze_tables:
            self.register_buffer("oov_table", ot)
        else:
            self.oov_table = nn.Parameter(ot)

    # -- forward --------------------------------------------------------------------------------------------

    def tables(self) -> list[torch.Tensor]:
        """The K source tables (buffers when frozen, parameters otherwise)."""
        held = self._modules.get("sparse_tables")
        if held is not None:
            return [t.weight for t in held]
        return [getattr(self, f"table_{k}") for k in range(self.num_sources)]

    def source_weights(self) -> torch.Tensor:
        """The K source weights a (softmax of the logits when learned)."""
        return torch.softmax(self.logits, 0) if self.learn_weights else self.fixed_weights

    def _op_dtype(self) -> torch.dtype:
        """The dtype ``gather_bags`` wants for its weights: float64 with float64 tables, else float32 (the module
        may have been cast with ``.to(dtype)`` / ``.half()`` since construction)."""
        return torch.float64 if self.tables()[0].dtype == torch.float64 else torch.float32

    def _mix_dtype(self) -> torch.dtype:
        """The dtype the per-source path mixes in: its layers' (projections) dtype, else the weights' dtype."""
        for p in self.projections.values():
            return p.weight.dtype
        return self.source_weights().dtype

    def _fused(self, ids: torch.Tensor) -> torch.Tensor:
        wdt = self._op_dtype()
        if not self._per_source:
            out = gather_bags(self.tables(), self.source_weights().to(wdt), self.bag_offsets, self.entry_source,
                              self.entry_row, self.entry_weight.to(wdt), ids, renormalize=self.renormalize,
                              sparse_grad=self.sparse, backend=self.backend)
            return out
        return _per_source_mix(self, ids, wdt)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Embeddings of ``ids`` (any shape, int64/int32): ``[*ids.shape, D]``."""
        if ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"MultiSourceEmbedding: ids must be int64 or int32, got {ids.dtype}")
        ids = ids.long()
        out = self._fused(ids)
        if self.oov_table is not None:
            r = self.oov_rows[ids]
            hit = (r >= 0).unsqueeze(-1)
            out = torch.where(hit, self.oov_table[r.clamp_min(0)].to(out.dtype), out)
        return out

    # -- utilities ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def materialize(self, freeze: bool = True, chunk: int = 65536, dtype: Optional[torch.dtype] = None) -> nn.Embedding:
        """The fused table as ``nn.Embedding.from_pretrained`` (one row per vocabulary word)."""
        rows = [self.forward(c) for c in torch.arange(self.num_embeddings).split(chunk)]
        w = torch.cat(rows) if rows else torch.empty(0, self.embedding_dim)
        if dtype is not None:
            w = w.to(dtype)
        return nn.Embedding.from_pretrained(w, freeze=freeze)

    def sparse_parameters(self) -> list[nn.Parameter]:
        """The parameters whose gradients are sparse COO (the trained tables when ``sparse=True``; else none):
        give them to ``torch.optim.SparseAdam`` (or SGD), and ``dense_parameters()`` to Adam/AdamW, which refuse
        sparse gradients."""
        return [t for t in self.tables() if isinstance(t, nn.Parameter)] if self.sparse else []

    def dense_parameters(self) -> list[nn.Parameter]:
        """Every parameter not in ``sparse_parameters()`` (logits, projections, scorer, OOV rows, dense tables)."""
        sparse = {id(p) for p in self.sparse_parameters()}
        return [p for p in self.parameters() if id(p) not in sparse]

    def coverage_report(self) -> str:
        """A readable table: per source, words found, found after lowercasing, missing; words with no source."""
        return self.coverage.report(self.oov)

    def extra_repr(self) -> str:
        return (f"{self.num_embeddings}, {self.embedding_dim}, sources={self.num_sources}, mode={self.mode!r}, "
                f"renormalize={self.renormalize}, learn_weights={self.learn_weights}, "
                f"freeze_tables={self.freeze_tables}, sparse={self.sparse}, oov={self.oov!r}")


class SparseTable(nn.Embedding):
    """One trained source table with sparse gradients, as ``nn.Embedding(sparse=True)`` holds its ``weight``:
    ``DistributedDataParallel`` decides from a parameter's module (an ``nn.Embedding`` with ``sparse`` set)
    that its gradient is sparse and all-reduces it as such; a sparse gradient of a parameter it expects to be
    dense would fail in its gradient buckets. The gather (``gather_bags``) computes the gradient, not this
    module's ``forward``."""

    def __init__(self, table: torch.Tensor):
        super().__init__(table.shape[0], table.shape[1], sparse=True, _weight=table.clone(), dtype=table.dtype)


def _sparse_keys_to_table_keys(module, state_dict, prefix, local_metadata) -> None:
    """state_dict post-hook: ``sparse_tables.k.weight`` is saved as ``table_k`` (the key of a dense module)."""
    for k in range(module.num_sources):
        key = f"{prefix}sparse_tables.{k}.weight"
        if key in state_dict:
            state_dict[f"{prefix}table_{k}"] = state_dict.pop(key)


def _table_keys_to_sparse_keys(module, state_dict, prefix, *args) -> None:
    """load_state_dict pre-hook: ``table_k`` loads into ``sparse_tables.k.weight``."""
    for k in range(module.num_sources):
        key = f"{prefix}table_{k}"
        if key in state_dict:
            state_dict[f"{prefix}sparse_tables.{k}.weight"] = state_dict.pop(key)


def _output_dim(dims: list, mode: str, project_to: Optional[int]) -> int:
    """The output dimension: ``project_to``, else the sources' common dim (attention: the largest)."""
    if project_to is not None:
        return project_to
    if mode == "attention":
        return max(dims)
    if len(set(dims)) > 1:
        raise ValueError(f"MultiSourceEmbedding: sources have different dims {dims}; pass project_to=D to "
                         "learn a per-source linear projection")
    return dims[0]


def _oov_table(oov: str, offsets: torch.Tensor, D: int, fused, oov_scale: float, generator) -> Optional[torch.Tensor]:
    """The OOV rows of the words with an empty bag: one random-normal row each (std ``oov_scale``) for
    ``"normal"``, one shared row, the mean of the fused rows ``fused(ids)`` of the covered words, for ``"mean"``;
    ``None`` for ``"zeros"`` or when every word has a source."""
    n_empty = int((offsets[1:] == offsets[:-1]).sum())
    if oov == "zeros" or n_empty == 0:
        return None
    if oov == "normal":
        return torch.randn(n_empty, D, generator=generator, dtype=torch.float32) * oov_scale
    with torch.no_grad():
        covered = (offsets[1:] > offsets[:-1]).nonzero().flatten()
        ot = torch.zeros(1, D, dtype=torch.float64)
        for chunk in covered.split(65536):
            ot += fused(chunk).double().sum(0, keepdim=True)
        return ot / max(1, covered.numel())


def _per_source_bags(offsets: torch.Tensor, src: torch.Tensor, rows: torch.Tensor, wts: torch.Tensor,
                     K: int) -> dict:
    """Each source's own bags (``src{k}_offsets`` / ``_rows`` / ``_weights``) for the per-source path."""
    V = offsets.numel() - 1
    word_of_entry = torch.repeat_interleave(torch.arange(V), offsets[1:] - offsets[:-1])
    out = {}
    for k in range(K):
        mask = src == k
        off = torch.zeros(V + 1, dtype=torch.int64)
        torch.cumsum(torch.bincount(word_of_entry[mask], minlength=V), 0, out=off[1:])
        out[f"src{k}_offsets"] = off
        out[f"src{k}_rows"] = rows[mask].contiguous()
        out[f"src{k}_weights"] = wts[mask].contiguous()
    return out


def _per_source_mix(mod: "MultiSourceEmbedding", ids: torch.Tensor, wdt: torch.dtype) -> torch.Tensor:
    """The per-source path (projections / attention): one single-table gather per source, then standard layers
    (projection, attention scores or the source weights over the sources present)."""
    ys, masks = [], []
    one = torch.ones(1, dtype=wdt, device=ids.device)
    mix = mod._mix_dtype()
    for k, t in enumerate(mod.tables()):
        off = getattr(mod, f"src{k}_offsets")
        rows = getattr(mod, f"src{k}_rows")
        y = gather_bags([t], one, off, torch.zeros_like(rows), rows, getattr(mod, f"src{k}_weights").to(wdt),
                        ids, renormalize=True, sparse_grad=mod.sparse, backend=mod.backend)
        y = y.to(mix)
        if str(k) in mod.projections:
            y = mod.projections[str(k)](y)
        ys.append(y)
        masks.append(off[ids + 1] > off[ids])
    y = torch.stack(ys, -2)  # [..., K, D]
    m = torch.stack(masks, -1)  # [..., K]
    if mod.mode == "attention":
        score = mod.scorer(y).squeeze(-1).masked_fill(~m, float("-inf"))
        alpha = torch.softmax(score, -1).nan_to_num(0.0)  # rows with no source: all zeros
    else:
        alpha = mod.source_weights().to(y.dtype) * m
        if mod.renormalize:
            alpha = alpha / alpha.sum(-1, keepdim=True).clamp_min(torch.finfo(alpha.dtype).tiny)
    return (alpha.unsqueeze(-1) * y).sum(-2)
