"""The corpus and SGNS ops of torch.ops.embedfast: fake (meta) kernels, autograd, typed wrappers, and the
backend choice of ``sgns_train`` / ``sgns_loss``.

Schemas live in csrc/ops.cpp, the CPU kernels in csrc/cpu/, the Triton kernels in ``embedfast.word2vec.triton``
(imported only when the Triton backend is asked for). ``backend="auto"``: CPU tensors use the C++ CPU op; CUDA
tensors use the Triton kernels (the CUDA kernels only once verified on a GPU: ``embedfast._backend``); ``"cpu"`` / ``"cuda"`` /
``"triton"`` force a backend (``embedfast._backend.select_backend``).
"""
from __future__ import annotations

import torch

from .._argcheck import check_tensor_args
from .._backend import BACKENDS, select_backend
from .._ext import ops as _ops

__all__ = ["VOCAB_STATS", "ENCODE_STATS", "TRAIN_STATS", "SGNS_TRAIN_LIMITS", "SGNS_BACKENDS", "corpus_build_vocab",
           "corpus_encode", "sgns_unigram_table", "sgns_train", "sgns_loss", "sgns_backend", "train_op", "loss_op",
           "word2vec_train", "word2vec_huffman", "word2vec_subword_train"]

#: The Triton module of this family (given to ``embedfast._backend.select_backend``).
TRITON_MODULE = "embedfast.word2vec.triton"

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
#: ones (``embedfast.word2vec.triton.MAX_WINDOW`` / ``MAX_NEGATIVE``).
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


@torch.library.register_fake("embedfast::word2vec_train")
def _word2vec_train_fake(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, hs_offsets,
                         hs_points, hs_codes, window, negative, alpha, min_alpha, words_done, total_words, seed, chunk,
                         num_threads, cbow, hs, shared_negatives, exact_sigmoid):
    check_tensor_args("word2vec_train", [("hs_offsets", hs_offsets, torch.int64, 1),
                                         ("hs_points", hs_points, torch.int32, 1),
                                         ("hs_codes", hs_codes, torch.uint8, 1)])
    return _sgns_train_fake(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                            alpha, min_alpha, words_done, total_words, seed, chunk, num_threads, shared_negatives,
                            exact_sigmoid)


@torch.library.register_fake("embedfast::word2vec_subword_train")
def _word2vec_subword_train_fake(w_in, w_ngram, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias,
                                 ngram_offsets, ngram_buckets, window, negative, alpha, min_alpha, words_done,
                                 total_words, seed, chunk, num_threads, exact_sigmoid):
    op = "word2vec_subword_train"
    check_tensor_args(op, [("w_in", w_in, torch.float32, 2), ("w_ngram", w_ngram, torch.float32, 2),
                           ("ngram_offsets", ngram_offsets, torch.int64, 1),
                           ("ngram_buckets", ngram_buckets, torch.int32, 1)])
    torch._check_value(w_ngram.shape[1] == w_in.shape[1], lambda: f"{op}: 'w_ngram' {list(w_ngram.shape)} must "
                       f"have the {w_in.shape[1]} columns of 'w_in' {list(w_in.shape)}")
    torch._check_value(ngram_offsets.shape[0] == w_in.shape[0] + 1, lambda: f"{op}: argument 'ngram_offsets' must "
                       f"have shape [{w_in.shape[0] + 1}] (vocabulary size + 1), got {list(ngram_offsets.shape)}")
    return _sgns_train_fake(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, window, negative,
                            alpha, min_alpha, words_done, total_words, seed, chunk, num_threads, False, exact_sigmoid)


@torch.library.register_fake("embedfast::word2vec_huffman")
def _word2vec_huffman_fake(counts, ties="gensim"):
    dev = check_tensor_args("word2vec_huffman", [("counts", counts, torch.int64, 1)])
    n = torch.library.get_ctx().new_dynamic_size()
    return (torch.empty(counts.shape[0] + 1, dtype=torch.int64, device=dev),
            torch.empty(n, dtype=torch.int32, device=dev), torch.empty(n, dtype=torch.uint8, device=dev))


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

    Words with count >= `min_count`, sorted by count (descending); equal counts by first position in the text,
    the word first seen later coming first (gensim's order: the same ids as gensim's ``index_to_key``, whatever
    `num_threads`); at most `max_vocab` of them (-1: all). `stats` follows :data:`VOCAB_STATS`.
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
    random draws. ``backend``: "auto", "cpu", "cuda" or "triton" (see ``sgns_backend``).

    Every argument is checked before training (window, negative, num_threads within
    :data:`SGNS_TRAIN_LIMITS`; a finite alpha; ids, offsets and the alias table within range). When a score
    becomes NaN/inf (too large an alpha, or non-finite weights passed in) the loss of the call turns non-finite
    and the op raises ``ValueError("sgns_train: training diverged: ...")``; w_in and w_out then hold
    non-finite values. (The Triton op checks this in eager mode only.)
    """
    op = train_op(sgns_backend(backend, w_in.device, "sgns_train"))
    return op(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, int(window), int(negative),
              float(alpha), float(min_alpha), int(words_done), int(total_words), int(seed), int(chunk),
              int(num_threads), bool(shared_negatives), bool(exact_sigmoid))


def word2vec_huffman(counts: torch.Tensor, ties: str = "gensim"):
    """word2vec's Huffman tree of the word counts (int64 [V], each >= 1) -> (offsets int64 [V + 1], points int32,
    codes uint8): word ``w``'s path from the root is ``points[offsets[w]:offsets[w + 1]]`` (inner nodes, 0..V-2,
    the root V - 2 first; row ``n`` of ``w_out`` is inner node ``n``) with the branch taken at each,
    ``codes[...]`` (0/1). Frequent words get short paths; built once per vocabulary (word2vec.c's
    CreateBinaryTree: the two rarest nodes merged first). ``ties``: which of two nodes of equal count is merged
    first: ``"gensim"`` in the order of gensim's heap (for gensim's vocabulary order the tree is then gensim's),
    ``"word2vec"`` as word2vec.c's two queues (an inner node before a word, the word of larger index first)."""
    return _ops.word2vec_huffman(counts, ties)


def _empty_hs(device) -> tuple:
    return (torch.zeros(1, dtype=torch.int64, device=device), torch.empty(0, dtype=torch.int32, device=device),
            torch.empty(0, dtype=torch.uint8, device=device))


def word2vec_train(w_in: torch.Tensor, w_out: torch.Tensor, ids: torch.Tensor, sentence_offsets: torch.Tensor,
                   keep_prob: torch.Tensor, neg_threshold: torch.Tensor, neg_alias: torch.Tensor,
                   hs_tables: "tuple | None" = None, *, window: int, negative: int, alpha: float, min_alpha: float,
                   words_done: int, total_words: int, seed: int, chunk: int, num_threads: int = 1,
                   cbow: bool = False, hs: bool = False, shared_negatives: bool = False,
                   exact_sigmoid: bool = False, backend: str = "auto") -> torch.Tensor:
    """One fused pass of any word2vec model over the sentences ``sentence_offsets`` of ``ids``: skip-gram
    (``cbow=False``) or CBOW (``cbow=True``: the mean of the context rows predicts the center), with negative
    sampling or hierarchical softmax (``hs=True``, ``negative=0``, ``hs_tables`` = :func:`word2vec_huffman`'s
    output; ``w_out`` row ``n`` is then inner node ``n``). ``cbow=False, hs=False`` is :func:`sgns_train`.

    Same arguments, checks, stats (:data:`TRAIN_STATS`; "pairs" counts centers for CBOW) and divergence error
    as :func:`sgns_train`; the exact update and the order of random draws are in csrc/cpu/word2vec_sgns.cpp
    (train_part_w2v). ``backend``: "auto" (CPU tensors: the C++ op; CUDA tensors: the Triton kernels of
    ``embedfast.word2vec.triton_models``, there is no CUDA C++ kernel for CBOW / HS), "cpu" or "triton".
    """
    if hs_tables is None:
        hs_tables = _empty_hs(w_in.device)
    kind = select_backend("word2vec_train", backend, w_in.device, TRITON_MODULE)
    op = _ops.word2vec_train
    if kind == "triton":
        from . import triton_models as _tm  # noqa: F401  (registers embedfast::word2vec_train_triton)

        op = torch.ops.embedfast.word2vec_train_triton
    return op(w_in, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, *hs_tables,
                               int(window), int(negative), float(alpha), float(min_alpha), int(words_done),
                               int(total_words), int(seed), int(chunk), int(num_threads), bool(cbow), bool(hs),
                               bool(shared_negatives), bool(exact_sigmoid))


def word2vec_subword_train(w_in: torch.Tensor, w_ngram: torch.Tensor, w_out: torch.Tensor, ids: torch.Tensor,
                           sentence_offsets: torch.Tensor, keep_prob: torch.Tensor, neg_threshold: torch.Tensor,
                           neg_alias: torch.Tensor, ngram_offsets: torch.Tensor, ngram_buckets: torch.Tensor, *,
                           window: int, negative: int, alpha: float, min_alpha: float, words_done: int,
                           total_words: int, seed: int, chunk: int, num_threads: int = 1,
                           exact_sigmoid: bool = False, backend: str = "auto") -> torch.Tensor:
    """One fused pass of sub-word skip-gram with negative sampling (fastText's ``skipgram``, Bojanowski et al.
    2017) over the sentences ``sentence_offsets`` of ``ids``, updating ``w_in`` [V, D], ``w_ngram`` [B, D] and
    ``w_out`` [V, D] in place.

    The center word ``w``'s input vector is the mean of ``w_in[w]`` and the rows ``w_ngram[b]`` of its n-gram
    buckets ``ngram_buckets[ngram_offsets[w]:ngram_offsets[w + 1]]`` (int64 [V + 1], int32 [E]; fastText's rule:
    ``embedfast.vectors.ops.fasttext_ngram_buckets``); it predicts each context word (label 1) and ``negative``
    alias draws per pair (label 0); the summed gradient of a center goes to every row of its bag once.
    Same arguments, checks, stats (:data:`TRAIN_STATS`) and divergence error as :func:`sgns_train`; the exact
    update and the order of random draws are in csrc/cpu/word2vec_subword.cpp.

    ``backend``: "auto" (CPU tensors: the C++ op), "cpu" or "triton" (``embedfast::word2vec_subword_train_triton``
    of ``embedfast.word2vec.triton_models``: CUDA tensors, or CPU tensors in Triton's interpreter). There is no
    CUDA C++ kernel, and "auto" refuses CUDA tensors: the Triton kernel has run only in the interpreter so far
    (``embedfast._backend.TRITON_UNVERIFIED``).
    """
    kind = select_backend("word2vec_subword_train", backend, w_in.device, TRITON_MODULE)
    op = _ops.word2vec_subword_train
    if kind == "triton":
        from . import triton_models as _tm  # noqa: F401  (registers embedfast::word2vec_subword_train_triton)

        op = torch.ops.embedfast.word2vec_subword_train_triton
    return op(w_in, w_ngram, w_out, ids, sentence_offsets, keep_prob, neg_threshold, neg_alias, ngram_offsets,
              ngram_buckets, int(window), int(negative), float(alpha), float(min_alpha), int(words_done),
              int(total_words), int(seed), int(chunk), int(num_threads), bool(exact_sigmoid))


def sgns_loss(w_in: torch.Tensor, w_out: torch.Tensor, centers: torch.Tensor, contexts: torch.Tensor,
              negatives: torch.Tensor, backend: str = "auto") -> torch.Tensor:
    """Per-example skip-gram negative-sampling loss, differentiable in `w_in` and `w_out`.

    loss[b] = -log sigmoid(w_in[centers[b]] . w_out[contexts[b]]) - sum_k log sigmoid(-w_in[centers[b]] . w_out[negatives[b, k]])

    Args: w_in [V, D] and w_out [V2, D] float32/float64; centers, contexts [B] and negatives [B, K] int32/int64.
    Returns: [B] tensor of w_in's dtype. Gradients are dense [V, D] / [V2, D].
    ``backend``: "auto", "cpu", "cuda" or "triton" (see ``sgns_backend``).
    """
    return loss_op(sgns_backend(backend, w_in.device, "sgns_loss"))(w_in, w_out, centers, contexts, negatives)


# ---------------------------------------------------------------------------------------------------------
# backend choice
# ---------------------------------------------------------------------------------------------------------

SGNS_BACKENDS = BACKENDS


def sgns_backend(backend: str, device: "torch.device | str", op: str = "sgns_train") -> str:
    """The kernels SGNS runs for tensors on ``device``: ``"cpu"``, ``"cuda"`` or ``"triton"``
    (``embedfast._backend.select_backend``)."""
    return select_backend(op, backend, device, TRITON_MODULE)


def train_op(kind: str):
    """The op object for ``sgns_train`` on backend ``kind`` (from ``sgns_backend``)."""
    if kind == "triton":
        from . import triton as _ts  # noqa: F401  (registers embedfast::sgns_train_triton)

        return torch.ops.embedfast.sgns_train_triton
    return torch.ops.embedfast.sgns_train  # the dispatcher picks the CPU or CUDA kernel by device


def loss_op(kind: str):
    """The op object for ``sgns_loss`` on backend ``kind`` (from ``sgns_backend``)."""
    if kind == "triton":
        from . import triton as _ts  # noqa: F401  (registers embedfast::sgns_loss_triton)

        return torch.ops.embedfast.sgns_loss_triton
    return torch.ops.embedfast.sgns_loss
