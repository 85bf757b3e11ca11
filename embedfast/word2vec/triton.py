"""Triton ops of SGNS: the fused training op and the differentiable loss (forward and backward).

The kernels themselves (device code) are ``embedfast.word2vec.triton_kernels``; this module checks the
arguments, launches them and registers the ops. It is imported lazily (``embedfast.word2vec.ops``), never by
``import embedfast``.

Same semantics as the C++ CPU ops (csrc/cpu/word2vec_sgns.cpp), registered as ``torch.library.triton_op``:

- ``embedfast::sgns_train_triton`` -- the schema of ``embedfast::sgns_train``; it updates ``w_in`` and ``w_out``
  in place (``mutates_args``) and returns the float64 stats (``embedfast.ops.TRAIN_STATS``) on the device of
  the tables.
- ``embedfast::sgns_loss_triton`` / ``embedfast::sgns_loss_triton_backward`` -- the schema of
  ``embedfast::sgns_loss`` / ``sgns_loss_backward``, with autograd registered.

The training kernel (one program per sentence) and the loss kernels are described in ``triton_kernels``.

Random numbers: the counter-based SplitMix64 streams of csrc/include/embedfast/rng.h. Sentence ``s`` of the
chunk (0-based) draws from ``stream_key(seed, chunk, s)``; the CPU kernel's part ``p`` draws from
``stream_key(seed, chunk, p)``, so a chunk of one sentence trained with ``num_threads=1`` gets exactly the same
draws on both backends (the tests check the update against the CPU op). ``num_threads`` is ignored (the grid
has one program per sentence). Learning rate per sentence: ``alpha - (alpha - min_alpha) * min(1, (words_done
+ tokens before the sentence in the chunk) / total_words)`` (the CPU kernel with one part).

Divergence: the loss of a call is non-finite exactly when a score was NaN/inf (too large a learning rate, or
non-finite weights passed in); in eager mode the op then raises ValueError ("sgns_train_triton: training
diverged ...", as the CPU op). That reads the loss back from the device (one synchronisation per call); under
torch.compile or CUDA graph capture the check is skipped and the loss in the returned stats is the signal.

Sigmoid: ``exact_sigmoid=True`` is ``1 / (1 + exp(-x))`` in float32 as on the CPU; ``exact_sigmoid=False``
keeps the CPU table's saturation (0 / 1 outside [-8, 8], log-sigmoid x / 0) but computes the exact value inside
(the CPU table interpolates, within 2e-6 of it).

Under ``TRITON_INTERPRET=1`` (set before this module is imported) the kernels run on CPU tensors in Triton's
interpreter (for testing); then the ops stay opaque nodes in compiled graphs (see ``INTERPRETED``).
``compile_for_target`` compiles every kernel for a GPU architecture without a GPU (a check that they lower to
PTX and cubin).
"""
from __future__ import annotations

import math

import torch
from torch.library import triton_op, wrap_triton

from .._backend import eager as _eager, keep_opaque_when_interpreted
from .triton_kernels import (_C1, _M64, _N_PART, _N_TRAIN_STATS, _SALT, INTERPRETED, MAX_DIM, MAX_NEGATIVE,
                             MAX_WINDOW, _mix64_py, _sgns_loss_bwd_kernel, _sgns_loss_fwd_kernel, _sgns_train_kernel,
                             _train_meta, compile_for_target, stream_key, tl, triton)

__all__ = [
    "INTERPRETED",
    "MAX_DIM",
    "MAX_NEGATIVE",
    "MAX_WINDOW",
    "sgns_train_triton",
    "sgns_loss_triton",
    "sgns_loss_triton_backward",
    "stream_key",
    "compile_for_target",
]


# ----------------------------------------------------------------------------------------------------------
# host side: checks
# ----------------------------------------------------------------------------------------------------------


def _need(t: torch.Tensor, name: str, op: str, dtype: torch.dtype, dim: int, device: torch.device) -> None:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{op}: argument '{name}' must be a tensor, got {type(t).__name__}")
    if t.dtype != dtype:
        raise ValueError(f"{op}: argument '{name}' must have dtype {dtype}, got {t.dtype}")
    if t.dim() != dim:
        raise ValueError(f"{op}: argument '{name}' must be {dim}-D, got shape {tuple(t.shape)}")
    if t.device != device:
        raise ValueError(f"{op}: argument '{name}' is on {t.device} but 'w_in' is on {device}")


def _check_train_args(w_in, w_out, ids, offsets, keep, thr, alias, window, negative, alpha, min_alpha,
                      words_done, total_words, num_threads, op: str = "sgns_train_triton"):
    dev = w_in.device
    _need(w_in, "w_in", op, torch.float32, 2, dev)
    _need(w_out, "w_out", op, torch.float32, 2, dev)
    if not (w_in.is_contiguous() and w_out.is_contiguous()):
        raise ValueError(f"{op}: 'w_in' and 'w_out' are updated in place and must be contiguous")
    if w_in.shape != w_out.shape:
        raise ValueError(f"{op}: 'w_in' {tuple(w_in.shape)} and 'w_out' {tuple(w_out.shape)} must have the same "
                         "shape")
    V, D = w_in.shape
    if not 1 <= V < 2**31:
        raise ValueError(f"{op}: vocabulary size must be in [1, 2^31), got {V}")
    if not 1 <= D <= MAX_DIM:
        raise ValueError(f"{op}: the Triton kernel takes 1 <= dim <= {MAX_DIM}, got {D}")
    _need(ids, "ids", op, torch.int32, 1, dev)
    _need(offsets, "sentence_offsets", op, torch.int64, 1, dev)
    for t, name, dt in ((keep, "keep_prob", torch.float64), (thr, "neg_threshold", torch.int64),
                        (alias, "neg_alias", torch.int32)):
        _need(t, name, op, dt, 1, dev)
        if t.shape[0] != V:
            raise ValueError(f"{op}: argument '{name}' must have shape [{V}] (the vocabulary size of w_in), got "
                             f"{tuple(t.shape)}")
    for t, name in ((ids, "ids"), (offsets, "sentence_offsets"), (keep, "keep_prob"), (thr, "neg_threshold"),
                    (alias, "neg_alias")):
        if not t.is_contiguous():
            raise ValueError(f"{op}: argument '{name}' must be contiguous")
    if offsets.shape[0] < 1:
        raise ValueError(f"{op}: 'sentence_offsets' must have at least one entry")
    if not 1 <= window <= MAX_WINDOW:
        raise ValueError(f"{op}: window must be in [1, {MAX_WINDOW}] for the Triton kernel, got {window}")
    if not 0 <= negative <= MAX_NEGATIVE:
        raise ValueError(f"{op}: negative must be in [0, {MAX_NEGATIVE}], got {negative}")
    if not (math.isfinite(alpha) and alpha > 0 and 0 <= min_alpha <= alpha):
        raise ValueError(f"{op}: need a finite alpha > 0 and 0 <= min_alpha <= alpha, got alpha={alpha}, "
                         f"min_alpha={min_alpha}")
    if total_words < 1 or words_done < 0:
        raise ValueError(f"{op}: need total_words >= 1 and words_done >= 0, got {total_words} and {words_done}")
    if not 1 <= num_threads <= 1024:
        raise ValueError(f"{op}: num_threads must be in [1, 1024], got {num_threads}")


def _check_train_values(ids, offsets, thr, alias, V, op: str = "sgns_train_triton") -> int:
    """Eager value checks (one synchronisation); returns the number of tokens of the chunk."""
    n = ids.shape[0]
    lo, hi = offsets[0], offsets[-1]
    zero = torch.zeros((), dtype=torch.bool, device=ids.device)
    pos = torch.arange(n, device=ids.device)
    inside = (pos >= lo) & (pos < hi)
    bad_id = inside & ((ids < 0) | (ids >= V))
    flags = torch.stack([  # one synchronisation for all the checks
        (offsets < 0).any() | (offsets > n).any(),
        (offsets[1:] < offsets[:-1]).any() if offsets.shape[0] > 1 else zero,
        bad_id.any(),
        (thr < 0).any() | (thr > 2**32).any(),
        (alias < 0).any() | (alias >= V).any(),
    ]).long()
    flags = torch.cat([flags, (hi - lo).reshape(1)]).tolist()
    if flags[0]:
        s = int(((offsets < 0) | (offsets > n)).nonzero()[0, 0])
        raise IndexError(f"{op}: sentence_offsets[{s}] = {int(offsets[s])} is outside [0, len(ids)={n}]")
    if flags[1]:
        s = int((offsets[1:] < offsets[:-1]).nonzero()[0, 0]) + 1
        raise ValueError(f"{op}: 'sentence_offsets' must be non-decreasing, but [{s}] = {int(offsets[s])} < "
                         f"[{s - 1}] = {int(offsets[s - 1])}")
    if flags[2]:
        p = int(bad_id.nonzero()[0, 0])
        raise IndexError(f"{op}: 'ids' has value {int(ids[p])} at position {p}, outside the vocabulary [0, {V})")
    if flags[3]:
        v = int(((thr < 0) | (thr > 2**32)).nonzero()[0, 0])
        raise ValueError(f"{op}: neg_threshold[{v}] = {int(thr[v])} is outside [0, 2^32]")
    if flags[4]:
        v = int(((alias < 0) | (alias >= V)).nonzero()[0, 0])
        raise IndexError(f"{op}: neg_alias[{v}] = {int(alias[v])} is outside [0, {V})")
    return int(flags[5])


def _check_diverged(loss: float, pairs: float, alpha: float, min_alpha: float, shared: bool, exact: bool,
                    op: str = "sgns_train_triton", model: str = "") -> None:
    """Eager only: the loss of the call is non-finite exactly when a score was NaN/inf (_train_log_sigmoid), as in
    the CPU op, which raises the same error. ``model``: how the message names the model (default: the kind of
    negatives)."""
    if math.isfinite(loss):
        return
    model = model or f"{'shared' if shared else 'per-pair'} negatives"
    raise ValueError(
        f"{op}: training diverged: the scores became NaN/inf (loss {loss} over {pairs:g} pairs) with "
        f"learning rate alpha={alpha} (min_alpha={min_alpha}, {'exact' if exact else 'table'} sigmoid, "
        f"{model}); w_in and w_out now hold non-finite values (NaN/inf) and "
        "cannot be used. Start again from finite weights with a smaller alpha (word2vec's default is 0.025); if "
        "alpha is already small, check that the weights passed in are finite.")


# ----------------------------------------------------------------------------------------------------------
# ops
# ----------------------------------------------------------------------------------------------------------


@triton_op("embedfast::sgns_train_triton", mutates_args={"w_in", "w_out"})
def sgns_train_triton(w_in: torch.Tensor, w_out: torch.Tensor, ids: torch.Tensor, sentence_offsets: torch.Tensor,
                      keep_prob: torch.Tensor, neg_threshold: torch.Tensor, neg_alias: torch.Tensor, window: int,
                      negative: int, alpha: float, min_alpha: float, words_done: int, total_words: int, seed: int,
                      chunk: int, num_threads: int, shared_negatives: bool, exact_sigmoid: bool) -> torch.Tensor:
    """Triton version of ``embedfast::sgns_train`` (same arguments and meaning; see the module docstring).

    Returns the float64 stats of ``embedfast.ops.TRAIN_STATS`` on the device of ``w_in`` (no synchronisation
    beyond the eager input checks and the eager divergence check). Raises ValueError when training diverged.
    """
    _check_train_args(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                      alpha, min_alpha, words_done, total_words, num_threads)
    V, D = w_in.shape
    S = sentence_offsets.shape[0] - 1
    dev = w_in.device
    if _eager(w_in, ids, sentence_offsets):
        n_tok = _check_train_values(ids, sentence_offsets, neg_threshold, neg_alias, V)
    else:
        n_tok = ids.shape[0]
    part, sched, key, scratch = launch_buffers(S, n_tok, alpha, min_alpha, words_done, total_words, seed, chunk, dev)
    if S > 0:
        wrap_triton(_sgns_train_kernel)[(S,)](
            w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, scratch, part, key, sched,
            V, D, window, NEG=negative, SHARED=bool(shared_negatives), EXACT=bool(exact_sigmoid),
            **_train_meta(D, window, negative))
    return call_stats(part, w_in, ids, sentence_offsets, alpha, min_alpha, words_done, total_words,
                      shared_negatives, exact_sigmoid)


def launch_buffers(S: int, n_tok: int, alpha: float, min_alpha: float, words_done: int, total_words: int, seed: int,
                   chunk: int, dev: torch.device):
    """The per-sentence stats buffer, the schedule, the random key and the int32 scratch buffer of the kept ids
    (``n_tok`` tokens) of a training launch (every Triton training op)."""
    scratch = torch.empty(max(n_tok, 1), dtype=torch.int32, device=dev)
    part = torch.zeros((max(S, 1), _N_PART), dtype=torch.float64, device=dev)
    sched = torch.tensor([alpha, min_alpha, float(words_done), float(total_words)], dtype=torch.float64,
                         device=dev)
    key0 = _mix64_py((seed & _M64) ^ _SALT) ^ ((chunk * _C1) & _M64)
    key = torch.tensor([key0 - (1 << 64) if key0 >= 1 << 63 else key0], dtype=torch.int64, device=dev)
    return part, sched, key, scratch


def call_stats(part, w_in, ids, sentence_offsets, alpha, min_alpha, words_done, total_words, shared, exact,
               op: str = "sgns_train_triton", model: str = ""):
    """The float64 stats (TRAIN_STATS) of a training launch from its per-sentence ``part``; in eager mode
    raises the divergence error of ``op`` (``_check_diverged``) when the loss is not finite."""
    S = sentence_offsets.shape[0] - 1
    dev = w_in.device
    sums = part.sum(0)
    if S > 0 and _eager(w_in, ids, sentence_offsets):
        _check_diverged(*sums[:2].tolist(), alpha, min_alpha, shared, exact, op, model)
    tokens = (sentence_offsets[-1] - sentence_offsets[0]).to(torch.float64)
    last_start = (sentence_offsets[-2] if S > 0 else sentence_offsets[0]) - sentence_offsets[0]
    progress = ((float(words_done) + last_start.to(torch.float64)) / float(total_words)).clamp(max=1.0)
    last_alpha = (alpha - (alpha - min_alpha) * progress).to(torch.float32).to(torch.float64)
    return torch.stack([sums[0], sums[1], sums[2], sums[3], tokens, sums[4],
                        torch.full((), float(S), dtype=torch.float64, device=dev), last_alpha])


@sgns_train_triton.register_fake
def _sgns_train_triton_fake(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window,
                            negative, alpha, min_alpha, words_done, total_words, seed, chunk, num_threads,
                            shared_negatives, exact_sigmoid):
    _check_train_args(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                      alpha, min_alpha, words_done, total_words, num_threads)
    return torch.empty(_N_TRAIN_STATS, dtype=torch.float64, device=w_in.device)


def _check_loss_args(op, w_in, w_out, centers, contexts, negatives):
    dev = w_in.device
    if w_in.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{op}: argument 'w_in' must have dtype float32 or float64, got {w_in.dtype}")
    _need(w_in, "w_in", op, w_in.dtype, 2, dev)
    _need(w_out, "w_out", op, w_in.dtype, 2, dev)
    if w_in.shape[1] != w_out.shape[1]:
        raise ValueError(f"{op}: 'w_in' {tuple(w_in.shape)} and 'w_out' {tuple(w_out.shape)} must have the same "
                         "number of columns")
    for t, name, dim in ((centers, "centers", 1), (contexts, "contexts", 1), (negatives, "negatives", 2)):
        if t.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"{op}: argument '{name}' must have dtype int32 or int64, got {t.dtype}")
        _need(t, name, op, t.dtype, dim, dev)
    B = centers.shape[0]
    if contexts.shape[0] != B or negatives.shape[0] != B:
        raise ValueError(f"{op}: 'centers' {tuple(centers.shape)}, 'contexts' {tuple(contexts.shape)} and "
                         f"'negatives' {tuple(negatives.shape)} must have the same first dimension")


def _check_loss_values(op, w_in, w_out, centers, contexts, negatives):
    for t, name, n in ((centers, "centers", w_in.shape[0]), (contexts, "contexts", w_out.shape[0]),
                       (negatives, "negatives", w_out.shape[0])):
        if t.numel() == 0:
            continue
        bad = (t < 0) | (t >= n)
        if bool(bad.any()):
            p = int(bad.reshape(-1).nonzero()[0, 0])
            raise IndexError(f"{op}: argument '{name}' has value {int(t.reshape(-1)[p])} at flat position {p}, "
                             f"outside the valid range [0, {n})")


def _loss_launch_args(w_in, w_out, centers, contexts, negatives):
    wi, wo = w_in.contiguous(), w_out.contiguous()
    ce, co, ne = centers.long().contiguous(), contexts.long().contiguous(), negatives.long().contiguous()
    D = wi.shape[1]
    meta = dict(BLOCK_B=16, BLOCK_D=min(triton.next_power_of_2(max(D, 1)), 128),
                ACC=tl.float64 if wi.dtype == torch.float64 else tl.float32)
    return wi, wo, ce, co, ne, meta


@triton_op("embedfast::sgns_loss_triton", mutates_args=())
def sgns_loss_triton(w_in: torch.Tensor, w_out: torch.Tensor, centers: torch.Tensor, contexts: torch.Tensor,
                     negatives: torch.Tensor) -> torch.Tensor:
    """Triton version of ``embedfast::sgns_loss``: per-example loss [B], differentiable in w_in and w_out."""
    op = "sgns_loss_triton"
    _check_loss_args(op, w_in, w_out, centers, contexts, negatives)
    if _eager(w_in, w_out, centers, contexts, negatives):
        _check_loss_values(op, w_in, w_out, centers, contexts, negatives)
    wi, wo, ce, co, ne, meta = _loss_launch_args(w_in, w_out, centers, contexts, negatives)
    B, K, D = ce.shape[0], ne.shape[1], wi.shape[1]
    loss = torch.empty(B, dtype=wi.dtype, device=wi.device)
    if B > 0:
        wrap_triton(_sgns_loss_fwd_kernel)[(triton.cdiv(B, meta["BLOCK_B"]),)](
            loss, wi, wo, ce, co, ne, B, K, D, **meta)
    return loss


@sgns_loss_triton.register_fake
def _sgns_loss_triton_fake(w_in, w_out, centers, contexts, negatives):
    _check_loss_args("sgns_loss_triton", w_in, w_out, centers, contexts, negatives)
    return w_in.new_empty(centers.shape[0])


@triton_op("embedfast::sgns_loss_triton_backward", mutates_args=())
def sgns_loss_triton_backward(grad: torch.Tensor, w_in: torch.Tensor, w_out: torch.Tensor, centers: torch.Tensor,
                              contexts: torch.Tensor, negatives: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Triton version of ``embedfast::sgns_loss_backward``: dense gradients (grad_w_in, grad_w_out)."""
    op = "sgns_loss_triton_backward"
    _check_loss_args(op, w_in, w_out, centers, contexts, negatives)
    if grad.dtype != w_in.dtype or grad.dim() != 1 or grad.shape[0] != centers.shape[0]:
        raise ValueError(f"{op}: argument 'grad' must be a [{centers.shape[0]}] {w_in.dtype} tensor, got "
                         f"{tuple(grad.shape)} {grad.dtype}")
    if _eager(w_in, w_out, centers, contexts, negatives):
        _check_loss_values(op, w_in, w_out, centers, contexts, negatives)
    wi, wo, ce, co, ne, meta = _loss_launch_args(w_in, w_out, centers, contexts, negatives)
    B, K, D = ce.shape[0], ne.shape[1], wi.shape[1]
    g_in = torch.zeros_like(wi)
    g_out = torch.zeros_like(wo)
    if B > 0:
        wrap_triton(_sgns_loss_bwd_kernel)[(triton.cdiv(B, meta["BLOCK_B"]),)](
            g_in, g_out, grad.contiguous(), wi, wo, ce, co, ne, B, K, D, **meta)
    return g_in, g_out


@sgns_loss_triton_backward.register_fake
def _sgns_loss_triton_backward_fake(grad, w_in, w_out, centers, contexts, negatives):
    _check_loss_args("sgns_loss_triton_backward", w_in, w_out, centers, contexts, negatives)
    return (torch.empty(w_in.shape, dtype=w_in.dtype, device=w_in.device),
            torch.empty(w_out.shape, dtype=w_out.dtype, device=w_out.device))


def _loss_setup(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _loss_backward(ctx, grad):
    w_in, w_out, centers, contexts, negatives = ctx.saved_tensors
    g_in, g_out = sgns_loss_triton_backward(grad, w_in, w_out, centers, contexts, negatives)
    return g_in, g_out, None, None, None


sgns_loss_triton.register_autograd(_loss_backward, setup_context=_loss_setup)




if INTERPRETED:
    keep_opaque_when_interpreted((sgns_train_triton, sgns_loss_triton, sgns_loss_triton_backward))
