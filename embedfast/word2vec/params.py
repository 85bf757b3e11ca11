"""The trainer's parameters: the ``Params`` dataclass, their bounds and the checks of every argument.

Every argument of ``Word2Vec`` is checked before any work (ValueError naming it): integers must be ints (not
bools or floats) and numbers finite; dim <= 10,000, window <= 1,000, negative <= 1,000, epochs <= 100,000,
threads <= 1,024 (the op's limit), 0 < alpha <= 1, 0 <= min_alpha <= alpha, 0 <= sample <= 1,
|ns_exponent| <= 10, 0 <= seed < 2**63, 0 < init_scale <= 1000, minn = maxn = 0 or 0 < minn <= maxn <= 100,
0 < buckets < 2**31, lr_schedule one of LR_SCHEDULES.

Bounds: the op's own limits (threads), what fits the types the ops take (int32 vocabulary ids and sentence
lengths, int64 counts and seeds), and sizes far beyond any useful setting whose per-thread buffers
(2 * window * dim floats) would otherwise end in an allocation failure deep in a chunk.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Optional

import torch

from .._backend import BACKENDS
from .ops import SGNS_TRAIN_LIMITS

__all__ = ["Params", "make_params", "check_subwords", "resolve_aliases", "resolve_model", "PARAM_NAMES", "LATER_PARAMS", "MAX_THREADS",
           "MAX_VOCAB", "DEFAULT_ALPHA", "DEFAULT_NEGATIVE", "LR_SCHEDULES"]

INT32_MAX = (1 << 31) - 1
INT64_MAX = (1 << 63) - 1
MAX_DIM = 10_000
MAX_WINDOW = 1_000
MAX_NEGATIVE = 1_000
MAX_EPOCHS = 100_000
MAX_VOCAB = INT32_MAX
MAX_THREADS = SGNS_TRAIN_LIMITS["num_threads"][1]  # the op's own limit
MAX_ALPHA = 1.0
MAX_NS_EXPONENT = 10.0
MAX_INIT_SCALE = 1000.0


def check_int(name: str, v, low: int, high: int) -> int:
    """``v`` as int after checking it is an integer (not a bool or float) in [low, high]."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not low <= v <= high:
        raise ValueError(f"Word2Vec: {name} must be an int in [{low:,}, {high:,}], got {v!r}")
    return int(v)


def check_real(name: str, v, low: float, high: float, *, low_open: bool = False,
               high_name: Optional[str] = None) -> float:
    """``v`` as float after checking it is a finite real number in [low, high] ((low, high] with low_open)."""
    ok = not isinstance(v, bool) and isinstance(v, numbers.Real) and math.isfinite(v) and \
        (low < v if low_open else low <= v) and v <= high
    if not ok:
        hi = f"{high_name}={high!r}" if high_name else f"{high:g}"
        raise ValueError(f"Word2Vec: {name} must be a finite number in {'(' if low_open else '['}{low:g}, {hi}], "
                         f"got {v!r}")
    return float(v)


def check_flag(name: str, v) -> bool:
    """``v`` as bool after checking it is True/False (or the ints 0/1)."""
    if not (isinstance(v, bool) or (isinstance(v, numbers.Integral) and v in (0, 1))):
        raise ValueError(f"Word2Vec: {name} must be True or False, got {v!r}")
    return bool(v)


def check_choice(name: str, v, choices: tuple) -> str:
    """``v`` after checking it is one of the strings ``choices``."""
    if not isinstance(v, str) or v not in choices:
        raise ValueError(f"Word2Vec: {name} must be one of {', '.join(map(repr, choices))}, got {v!r}")
    return v


@dataclass
class Params:
    """The hyperparameters of a run (checked by :func:`make_params`; see ``Word2Vec`` for their meaning)."""
    dim: int
    window: int
    negative: int
    sample: float
    min_count: int
    max_vocab: Optional[int]
    epochs: int
    alpha: float
    min_alpha: float
    ns_exponent: float
    seed: int
    max_sentence_length: int
    chunk_words: int
    shared_negatives: bool
    exact_sigmoid: bool
    sg: int = 1  # 1: skip-gram, 0: CBOW (gensim's name)
    hs: int = 0  # 1: hierarchical softmax (with negative=0), 0: negative sampling
    minn: int = 0  # sub-words (fastText): n-grams of minn..maxn characters; 0, 0: plain word2vec
    maxn: int = 0
    buckets: int = 2_000_000  # hash buckets of the n-grams (used when minn > 0)
    lr_schedule: str = "per-thread"  # how the learning rate falls with several threads (LR_SCHEDULES)
    huffman: str = "gensim"  # how the Huffman tree (hs=1) merges nodes of equal count (HUFFMAN_TIES)


#: The fields of :class:`Params`, in order (every checkpoint holds them).
PARAM_NAMES = tuple(Params.__dataclass_fields__)
#: The fields a checkpoint written before they existed lacks, with the values it was trained with (lr_schedule:
#: checkpoints before session 15 trained with the global schedule; huffman: before session 16 the tree was
#: word2vec.c's).
LATER_PARAMS = {"sg": 1, "hs": 0, "minn": 0, "maxn": 0, "buckets": 2_000_000, "lr_schedule": "global",
                "huffman": "word2vec"}
#: The learning-rate schedules (``Word2Vec(lr_schedule=...)``); both are word2vec's linear decay with one thread.
#: "per-thread": with T threads each thread's rate falls with its own share of the epoch, 1/T of it, as gensim's
#: ``corpus_file`` workers count their progress; "global": the rate falls with the words of all threads together,
#: reaching min_alpha at the end of the run (word2vec.c).
LR_SCHEDULES = ("per-thread", "global")
#: ``Word2Vec(huffman=...)``, the ``ties`` of ``ops.word2vec_huffman``: "gensim", nodes of equal count merged in
#: the order of gensim's heap, so the tree is gensim's for the same vocabulary; "word2vec": word2vec.c's order.
HUFFMAN_TIES = ("gensim", "word2vec")
#: Most hash buckets (fastText's hash is 32-bit and its buckets are int32).
MAX_BUCKETS = INT32_MAX
#: Longest n-gram (characters).
MAX_NGRAM = 100
#: The default learning rate with sub-words (fastText's ``-lr`` of ``skipgram``).
SUBWORD_ALPHA = 0.05


def make_params(*, dim, window, negative, sample, min_count, max_vocab, epochs, alpha, min_alpha, ns_exponent, seed,
                max_sentence_length, chunk_words, shared_negatives, exact_sigmoid, sg=1, hs=0, minn=0, maxn=0,
                buckets=2_000_000, lr_schedule="per-thread", huffman="gensim") -> Params:
    """Check every hyperparameter (ValueError naming it) and return them as :class:`Params`."""
    alpha_f = check_real("alpha", alpha, 0.0, MAX_ALPHA, low_open=True)
    return Params(
        dim=check_int("dim", dim, 1, MAX_DIM), window=check_int("window", window, 1, MAX_WINDOW),
        negative=check_int("negative", negative, 0, MAX_NEGATIVE), sample=check_real("sample", sample, 0.0, 1.0),
        min_count=check_int("min_count", min_count, 1, INT64_MAX),
        max_vocab=None if max_vocab is None else check_int("max_vocab", max_vocab, 1, MAX_VOCAB),
        epochs=check_int("epochs", epochs, 1, MAX_EPOCHS), alpha=alpha_f,
        min_alpha=check_real("min_alpha", min_alpha, 0.0, alpha_f, high_name="alpha"),
        ns_exponent=check_real("ns_exponent", ns_exponent, -MAX_NS_EXPONENT, MAX_NS_EXPONENT),
        seed=check_int("seed", seed, 0, INT64_MAX),
        max_sentence_length=check_int("max_sentence_length", max_sentence_length, 1, INT32_MAX),
        chunk_words=check_int("chunk_words", chunk_words, 1, INT32_MAX),
        shared_negatives=check_flag("shared_negatives", shared_negatives),
        exact_sigmoid=check_flag("exact_sigmoid", exact_sigmoid), sg=int(check_flag("sg", sg)),
        hs=int(check_flag("hs", hs)), **check_subwords(minn, maxn, buckets, sg, hs),
        lr_schedule=check_choice("lr_schedule", lr_schedule, LR_SCHEDULES),
        huffman=check_choice("huffman", huffman, HUFFMAN_TIES))


def check_subwords(minn, maxn, buckets, sg=1, hs=0) -> dict:
    """``{minn, maxn, buckets}`` checked: ``minn = maxn = 0`` (plain word2vec) or ``0 < minn <= maxn <=
    MAX_NGRAM`` with ``0 < buckets <= MAX_BUCKETS``; sub-words train skip-gram with negative sampling only
    (``sg=0`` / ``hs=1`` with them is a NotImplementedError naming the argument)."""
    minn = check_int("minn", minn, 0, MAX_NGRAM)
    maxn = check_int("maxn", maxn, 0, MAX_NGRAM)
    buckets = check_int("buckets", buckets, 1, MAX_BUCKETS)
    if (minn, maxn) != (0, 0):
        if not 0 < minn <= maxn:
            raise ValueError(f"Word2Vec: sub-words need 0 < minn <= maxn (or minn = maxn = 0 for plain word2vec), "
                             f"got minn={minn}, maxn={maxn}")
        for name, v, bad in (("sg", sg, 0), ("hs", hs, 1)):
            if v == bad:
                raise NotImplementedError(f"Word2Vec: sub-words (minn={minn}, maxn={maxn}) train skip-gram with "
                                          f"negative sampling only; {name}={v} ("
                                          f"{'CBOW' if name == 'sg' else 'hierarchical softmax'}) with sub-words is "
                                          "not implemented")
    return dict(minn=minn, maxn=maxn, buckets=buckets)


def check_threads(threads) -> Optional[int]:
    """None (torch's thread count) or an int in [1, the op's limit]."""
    return None if threads is None else check_int("threads", threads, 1, MAX_THREADS)


def check_init_scale(init_scale) -> float:
    """A finite number in (0, MAX_INIT_SCALE]."""
    if isinstance(init_scale, bool) or not isinstance(init_scale, numbers.Real) or \
            not math.isfinite(init_scale) or not 0 < init_scale <= MAX_INIT_SCALE:
        raise ValueError(f"Word2Vec: init_scale must be a finite number > 0 (at most {MAX_INIT_SCALE:g}), "
                         f"got {init_scale!r}")
    return float(init_scale)


def check_backend(backend, sg: int = 1, hs: int = 0, minn: int = 0) -> str:
    """One of ``embedfast._backend.BACKENDS``; CBOW, hierarchical softmax and sub-words have no CUDA C++
    kernel."""
    if backend not in BACKENDS:
        raise ValueError(f"Word2Vec: backend must be one of {BACKENDS}, got {backend!r}")
    if minn and backend == "cuda":
        raise NotImplementedError("Word2Vec: sub-word skip-gram (minn > 0) has no CUDA C++ kernel (backend='cuda'): "
                                  "use 'auto' or 'cpu' (the C++ CPU op) or 'triton' (its Triton kernel)")
    if (sg == 0 or hs) and backend == "cuda":
        raise ValueError(f"Word2Vec: {'CBOW' if sg == 0 else 'skip-gram'} with "
                         f"{'hierarchical softmax' if hs else 'negative sampling'} has no CUDA C++ kernel "
                         "(backend='cuda'): use backend='auto' or 'triton' (the Triton kernels) or the CPU")
    return backend


def check_device(device) -> torch.device:
    """``device`` as a ``torch.device`` (None: the CPU); anything torch does not read as a device is a ValueError."""
    try:
        return torch.device("cpu") if device is None else torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"Word2Vec: device {device!r} is not a torch device: {exc}") from None


class _DefaultInt(int):
    """An int default that can be told apart from the same value passed explicitly (``dim is DEFAULT_DIM``)."""


#: ``Word2Vec``'s default dim (100), recognisable when ``vector_size`` is given instead.
DEFAULT_DIM = _DefaultInt(100)


class _DefaultFloat(float):
    """A float default that can be told apart from the same value passed explicitly."""


#: ``Word2Vec``'s default alpha: 0.025 for skip-gram, 0.05 for CBOW (word2vec.c's defaults), unless given.
DEFAULT_ALPHA = _DefaultFloat(0.025)
CBOW_ALPHA = 0.05
#: ``Word2Vec``'s default negative (5); with ``hs=1`` left at its default it becomes 0.
DEFAULT_NEGATIVE = _DefaultInt(5)


def resolve_aliases(dim, threads, vector_size, workers, sg):
    """gensim's names: ``vector_size`` (= dim), ``workers`` (= threads), ``sg`` (1 or None: skip-gram; 0: CBOW).
    Returns (dim, threads, sg); giving both spellings of one parameter is a ValueError."""
    if vector_size is not None:
        if dim is not DEFAULT_DIM:
            raise ValueError(f"Word2Vec: give either dim or vector_size (gensim's name for it), not both (got "
                             f"dim={dim!r}, vector_size={vector_size!r})")
        dim = vector_size
    if workers is not None:
        if threads is not None:
            raise ValueError(f"Word2Vec: give either threads or workers (gensim's name for it), not both (got "
                             f"threads={threads!r}, workers={workers!r})")
        threads = workers
    if sg is None:
        sg = 1
    if isinstance(sg, bool) or not isinstance(sg, numbers.Integral) or sg not in (0, 1):
        raise ValueError(f"Word2Vec: sg must be 1 (skip-gram) or 0 (CBOW), got {sg!r}")
    return dim, threads, int(sg)


def resolve_model(sg: int, hs, negative, alpha, minn=0):
    """(hs, negative, alpha) after the model's defaults: CBOW's alpha is 0.05 unless given (word2vec.c), and so
    is sub-word skip-gram's (``minn > 0``: fastText's);
    ``hs=1`` needs ``negative=0`` (the default 5 turns into 0; an explicit negative > 0 is a ValueError:
    hierarchical softmax and negative sampling at once are not offered)."""
    if isinstance(hs, bool) or not isinstance(hs, numbers.Integral) or hs not in (0, 1):
        raise ValueError(f"Word2Vec: hs must be 1 (hierarchical softmax) or 0 (negative sampling), got {hs!r}")
    if hs and negative is DEFAULT_NEGATIVE:
        negative = 0
    if hs and not isinstance(negative, bool) and isinstance(negative, numbers.Integral) and negative != 0:
        raise ValueError(f"Word2Vec: hs=1 (hierarchical softmax) trains w_out as the Huffman tree's inner nodes; "
                         f"negative sampling at the same time is not offered: pass negative=0 (got negative="
                         f"{negative!r})")
    if alpha is DEFAULT_ALPHA and sg == 0:
        alpha = CBOW_ALPHA
    elif alpha is DEFAULT_ALPHA and minn:
        alpha = SUBWORD_ALPHA
    return int(hs), negative, alpha
