"""torch.ops.embedfast: fake (meta) kernels, autograd registrations and thin typed wrappers.

Schemas live in csrc/ops.cpp; CPU kernels in csrc/cpu/, CUDA kernels in csrc/cuda/, Triton kernels in
embedfast/triton/. One section per op family below.
"""
from __future__ import annotations

import torch

from ._backend import BACKENDS, select_backend
from ._argcheck import c10_name, check_tensor_args
from ._ext import ops as _ops

# =====================================================================================================
# loader
# =====================================================================================================

#: Meaning of each entry of the `stats` tensor returned by ``torch.ops.embedfast.load_vectors``.
LOAD_STATS = (
    "rows",  # rows kept in the matrix
    "dim",  # vector dimension
    "header_rows",  # N of an "N D" header (-1: no header)
    "header_dim",  # D of an "N D" header (-1: no header)
    "lines",  # lines read (including header, blank and skipped lines)
    "blank_lines",  # empty or whitespace-only lines, ignored
    "skipped_rows",  # malformed rows skipped (skip_errors=True); each listed in `skipped`
    "spaced_words",  # words containing spaces (the last `dim` fields are the vector)
    "invalid_utf8",  # words that are not valid UTF-8 (kept as bytes; decoded with surrogateescape, embedfast._io)
    "bom",  # 1 if the file starts with a UTF-8 byte-order mark
    "crlf_lines",  # lines ending in CR LF
    "truncated_last_line",  # 1 if the last line had no newline (parsed if complete; with a header promising more
    #                       rows: an error)
    "duplicate_words",  # rows whose word occurred on an earlier row (listed in `duplicates`; not removed)
)

#: Reason codes in the second column of `skipped`.
SKIP_REASONS = {
    1: "too few values",
    2: "not a number",
    3: "missing word",
    4: "truncated record",
    5: "value out of range",
    6: "too many values",
}


@torch.library.register_fake("embedfast::load_vectors")
def _load_vectors_fake(path, dim, header, limit, binary, skip_errors, num_threads, dtype):
    ctx = torch.library.get_ctx()
    n = ctx.new_dynamic_size()
    d = ctx.new_dynamic_size() if dim <= 0 else dim
    nbytes = ctx.new_dynamic_size()
    s = ctx.new_dynamic_size()
    m = ctx.new_dynamic_size()
    return (
        torch.empty(n, d, dtype=dtype),
        torch.empty(nbytes, dtype=torch.uint8),
        torch.empty(n + 1, dtype=torch.int64),
        torch.empty(len(LOAD_STATS), dtype=torch.int64),
        torch.empty(s, 2, dtype=torch.int64),
        torch.empty(m, dtype=torch.int64),
    )


def load_vectors_raw(
    path: str,
    *,
    dim: int = 0,
    header: int = -1,
    limit: int = -1,
    binary: bool = False,
    skip_errors: bool = False,
    num_threads: int = 0,
    dtype: torch.dtype = torch.float32,
):
    """Low-level loader: returns (matrix, word_bytes, word_offsets, stats, skipped, duplicates).

    See `embedfast.load_vectors` for the user-facing API and `LOAD_STATS` / `SKIP_REASONS` for the meanings.
    """
    return _ops.load_vectors(str(path), dim, header, limit, binary, skip_errors, num_threads, dtype)


# =====================================================================================================
# sgns
# =====================================================================================================

#: Meaning of each entry of the `stats` tensor of ``corpus_build_vocab``.
VOCAB_STATS = (
    "bytes",  # bytes of text read
    "lines",  # lines (sentences) read, blank ones included
    "blank_lines",  # empty or whitespace-only lines
    "tokens",  # whitespace-separated tokens
    "unique_words",  # distinct tokens
    "vocab_words",  # words kept in the vocabulary
    "vocab_tokens",  # tokens of the kept words
    "min_count_words",  # distinct words dropped for count < min_count
    "min_count_tokens",  # their tokens
    "max_vocab_words",  # words dropped by the max_vocab cut
    "max_vocab_tokens",  # their tokens
)

#: Meaning of each entry of the `stats` tensor of ``corpus_encode``.
ENCODE_STATS = (
    "bytes",  # bytes of text read (of the block when start / max_bytes are given)
    "lines",  # lines read, blank ones included
    "blank_lines",  # empty or whitespace-only lines
    "tokens",  # all tokens
    "encoded_tokens",  # tokens in the vocabulary (= len(ids))
    "oov_tokens",  # tokens not in the vocabulary (dropped, like word2vec)
    "sentences",  # sentences written (pieces of lines; lines without any vocabulary word give none)
    "split_lines",  # lines longer than max_sentence_length vocabulary tokens, cut into pieces
    "extra_pieces",  # pieces beyond the first of those lines
    "empty_lines",  # non-blank lines with no vocabulary word
)

#: Meaning of each entry of the float64 `stats` tensor of ``sgns_train``.
TRAIN_STATS = (
    "loss",  # sum over pairs of -log s(pos) - sum_k log s(-neg_k)
    "pairs",  # (context, center) pairs trained
    "negatives",  # negative samples used
    "negatives_skipped",  # negative draws equal to the center word (skipped, as in word2vec)
    "tokens",  # encoded tokens of the chunk (before sub-sampling)
    "kept_tokens",  # tokens kept by sub-sampling
    "sentences",  # sentences of the chunk
    "last_alpha",  # learning rate at the last sentence
)


#: Bounds of the size arguments of ``sgns_train`` on the CPU (the op refuses values outside them with a
#: ValueError; csrc/cpu/word2vec_sgns.cpp kMaxWindow / kMaxNegative / kMaxThreads). The Triton op has its own, smaller
#: ones (``embedfast.triton.sgns.MAX_WINDOW`` / ``MAX_NEGATIVE``).
SGNS_TRAIN_LIMITS = {"window": (1, 1000000), "negative": (0, 10000), "num_threads": (1, 1024)}


def _text_args(path, data):
    if path is None:
        if data is None:
            raise ValueError("give either `path` or `data`")
        return "", data
    return str(path), torch.empty(0, dtype=torch.uint8)


@torch.library.register_fake("embedfast::corpus_build_vocab")
def _corpus_build_vocab_fake(path, data, min_count, max_vocab, num_threads):
    dev = check_tensor_args("corpus_build_vocab", [("data", data, torch.uint8, None)])
    ctx = torch.library.get_ctx()
    n = ctx.new_dynamic_size()
    nb = ctx.new_dynamic_size()
    return (torch.empty(nb, dtype=torch.uint8, device=dev), torch.empty(n + 1, dtype=torch.int64, device=dev),
            torch.empty(n, dtype=torch.int64, device=dev),
            torch.empty(len(VOCAB_STATS), dtype=torch.int64, device=dev))


@torch.library.register_fake("embedfast::corpus_encode")
def _corpus_encode_fake(path, data, word_bytes, word_offsets, max_sentence_length, num_threads, start=0,
                        max_bytes=-1):
    dev = check_tensor_args("corpus_encode", [("data", data, torch.uint8, None),
                                              ("word_bytes", word_bytes, torch.uint8, None),
                                              ("word_offsets", word_offsets, torch.int64, None)])
    ctx = torch.library.get_ctx()
    n = ctx.new_dynamic_size()
    s1 = ctx.new_dynamic_size(min=1)  # sentences + 1
    return (torch.empty(n, dtype=torch.int32, device=dev), torch.empty(s1, dtype=torch.int64, device=dev),
            torch.empty(len(ENCODE_STATS), dtype=torch.int64, device=dev))


@torch.library.register_fake("embedfast::sgns_unigram_table")
def _sgns_unigram_table_fake(counts, exponent):
    check_tensor_args("sgns_unigram_table", [("counts", counts, torch.int64, 1)])
    return (torch.empty(counts.shape, dtype=torch.int64, device=counts.device),
            torch.empty(counts.shape, dtype=torch.int32, device=counts.device))


@torch.library.register_fake("embedfast::sgns_train")
def _sgns_train_fake(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                     alpha, min_alpha, words_done, total_words, seed, chunk, num_threads, shared_negatives,
                     exact_sigmoid):
    op = "sgns_train"
    dev = check_tensor_args(op, [
        ("w_in", w_in, torch.float32, 2), ("w_out", w_out, torch.float32, 2), ("ids", ids, torch.int32, 1),
        ("sentence_offsets", sentence_offsets, torch.int64, 1), ("keep_prob", keep_prob, torch.float64, None),
        ("neg_threshold", neg_threshold, torch.int64, None), ("neg_alias", neg_alias, torch.int32, None)])
    torch._check_value(w_in.shape == w_out.shape, lambda: f"{op}: 'w_in' {list(w_in.shape)} and 'w_out' "
                 f"{list(w_out.shape)} must have the same shape")
    for name, t in (("keep_prob", keep_prob), ("neg_threshold", neg_threshold), ("neg_alias", neg_alias)):
        torch._check_value(t.dim() == 1 and t.shape[0] == w_in.shape[0], lambda: f"{op}: argument '{name}' must have "
                     f"shape [{w_in.shape[0]}] (the vocabulary size of w_in), got {list(t.shape)}")
    return torch.empty(len(TRAIN_STATS), dtype=torch.float64, device=dev)


def _check_loss_fake(op, w_in, w_out, centers, contexts, negatives, grad=None):
    ints = (torch.int32, torch.int64)
    specs = [("w_in", w_in, (torch.float32, torch.float64), 2), ("w_out", w_out, w_in.dtype, 2),
             ("centers", centers, ints, 1), ("contexts", contexts, ints, 1), ("negatives", negatives, ints, 2)]
    if grad is not None:
        specs.append(("grad", grad, w_in.dtype, None))
    check_tensor_args(op, specs)
    torch._check_value(w_in.shape[1] == w_out.shape[1], lambda: f"{op}: 'w_in' {list(w_in.shape)} and 'w_out' "
                 f"{list(w_out.shape)} must have the same number of columns")
    B = centers.shape[0]
    torch._check_value((contexts.shape[0] == B) & (negatives.shape[0] == B), lambda: f"{op}: 'centers' "
                 f"{list(centers.shape)}, 'contexts' {list(contexts.shape)} and 'negatives' {list(negatives.shape)} "
                 "must have the same first dimension")
    if grad is not None:
        torch._check_value(grad.dim() == 1 and grad.shape[0] == B,
                     lambda: f"{op}: 'grad' must have shape [{B}], got {list(grad.shape)}")


@torch.library.register_fake("embedfast::sgns_loss")
def _sgns_loss_fake(w_in, w_out, centers, contexts, negatives):
    _check_loss_fake("sgns_loss", w_in, w_out, centers, contexts, negatives)
    return w_in.new_empty(centers.shape[0])


@torch.library.register_fake("embedfast::sgns_loss_backward")
def _sgns_loss_backward_fake(grad, w_in, w_out, centers, contexts, negatives):
    _check_loss_fake("sgns_loss_backward", w_in, w_out, centers, contexts, negatives, grad)
    return torch.empty_like(w_in, memory_format=torch.contiguous_format), torch.empty_like(
        w_out, memory_format=torch.contiguous_format)


def _sgns_loss_setup(ctx, inputs, output):
    w_in, w_out, centers, contexts, negatives = inputs
    ctx.save_for_backward(w_in, w_out, centers, contexts, negatives)


def _sgns_loss_bwd(ctx, grad):
    w_in, w_out, centers, contexts, negatives = ctx.saved_tensors
    g_in, g_out = _ops.sgns_loss_backward(grad.contiguous(), w_in, w_out, centers, contexts, negatives)
    return g_in, g_out, None, None, None


torch.library.register_autograd("embedfast::sgns_loss", _sgns_loss_bwd, setup_context=_sgns_loss_setup)


def corpus_build_vocab(path=None, *, data: torch.Tensor | None = None, min_count: int = 5, max_vocab: int = -1,
                       num_threads: int = 0):
    """Count the words of a text (file `path`, or uint8 `data`) -> (word_bytes, word_offsets, counts, stats).

    Words with count >= `min_count`, sorted by count (descending) then by their UTF-8 bytes; at most
    `max_vocab` of them (-1: all). `stats` follows :data:`VOCAB_STATS`.
    """
    p, d = _text_args(path, data)
    return _ops.corpus_build_vocab(p, d, int(min_count), int(max_vocab), int(num_threads))


def corpus_encode(path=None, *, data: torch.Tensor | None = None, word_bytes: torch.Tensor,
                  word_offsets: torch.Tensor, max_sentence_length: int = 10000, num_threads: int = 0,
                  start: int = 0, max_bytes: int = -1):
    """Encode a text to int32 word ids -> (ids, sentence_offsets, stats); see :data:`ENCODE_STATS`.

    ``start`` / ``max_bytes`` encode one block of whole lines: from byte ``start`` (0 or just after a newline)
    through the first newline at or after byte ``start + max_bytes - 1`` (``max_bytes=-1``: to the end).
    ``stats[0]`` (bytes) is the block's length, so the next block starts at ``start + stats[0]``.
    """
    p, d = _text_args(path, data)
    return _ops.corpus_encode(p, d, word_bytes, word_offsets, int(max_sentence_length), int(num_threads),
                              int(start), int(max_bytes))


def sgns_unigram_table(counts: torch.Tensor, exponent: float = 0.75):
    """Alias table (threshold int64 scaled to 2^32, alias int32) for sampling v with probability ~ counts[v]^exponent."""
    return _ops.sgns_unigram_table(counts, float(exponent))


def sgns_train(w_in: torch.Tensor, w_out: torch.Tensor, ids: torch.Tensor, sentence_offsets: torch.Tensor,
               keep_prob: torch.Tensor, neg_threshold: torch.Tensor, neg_alias: torch.Tensor, *, window: int,
               negative: int, alpha: float, min_alpha: float, words_done: int, total_words: int, seed: int,
               chunk: int, num_threads: int = 1, shared_negatives: bool = False,
               exact_sigmoid: bool = False, backend: str = "auto") -> torch.Tensor:
    """One fused SGNS pass over the sentences `sentence_offsets` of `ids`, updating w_in and w_out in place.

    Returns float64 stats (:data:`TRAIN_STATS`). See csrc/cpu/word2vec_sgns.cpp for the exact algorithm and the order of
    random draws. ``backend``: "auto", "cpu", "cuda" or "triton" (see ``embedfast.sgns_backend``).

    Every argument is checked before training (window, negative, num_threads within
    :data:`SGNS_TRAIN_LIMITS`; a finite alpha; ids, offsets and the alias table within range). When a score
    becomes NaN/inf (too large an alpha, or non-finite weights passed in) the loss of the call turns non-finite
    and the op raises ``ValueError("sgns_train: training diverged: ...")``; w_in and w_out then hold
    non-finite values. (The Triton op checks this in eager mode only.)
    """
    from .sgns_backend import sgns_backend, train_op

    return train_op(sgns_backend(backend, w_in.device, "sgns_train"))(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, int(window),
                           int(negative), float(alpha), float(min_alpha), int(words_done), int(total_words),
                           int(seed), int(chunk), int(num_threads), bool(shared_negatives), bool(exact_sigmoid))


def sgns_loss(w_in: torch.Tensor, w_out: torch.Tensor, centers: torch.Tensor, contexts: torch.Tensor,
              negatives: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Per-example skip-gram negative-sampling loss, differentiable in `w_in` and `w_out`.

    loss[b] = -log sigmoid(w_in[centers[b]] . w_out[contexts[b]]) - sum_k log sigmoid(-w_in[centers[b]] . w_out[negatives[b, k]])

    Args: w_in [V, D] and w_out [V2, D] float32/float64; centers, contexts [B] and negatives [B, K] int32/int64.
    Returns: [B] tensor of w_in's dtype. Gradients are dense [V, D] / [V2, D].
    ``backend``: "auto", "cpu", "cuda" or "triton" (see ``embedfast.sgns_backend``).
    """
    from .sgns_backend import loss_op, sgns_backend

    return loss_op(sgns_backend(backend, w_in.device, "sgns_loss"))(w_in, w_out, centers, contexts, negatives)



# =====================================================================================================
# gather
# =====================================================================================================


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
    (``embedfast._backend.select_backend``; the Triton kernels are ``embedfast.triton.gather``)."""
    return select_backend("gather_bags", backend, device, "embedfast.triton.gather")


def _gather_op(kind: str):
    if kind == "triton":
        from .triton import gather as _tg  # noqa: F401  (registers embedfast::gather_bags_triton)

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

    ``backend``: ``"auto"`` (CUDA kernels when built, else Triton for CUDA tensors; the C++ op for CPU tensors),
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
