"""Word2vec skip-gram with negative sampling (SGNS): the `SkipGram` module and the `Word2Vec` trainer.

The trainer runs the corpus pipeline in C++ (``corpus_build_vocab`` / ``corpus_encode``: pread, parallel
counting, int32 ids) and trains with one fused op per chunk of sentences (``sgns_train``: sub-sampling, dynamic
window, negative sampling, sigmoid, gradient and in-place update, Hogwild across threads). ``SkipGram`` is the
differentiable route (``sgns_loss`` with autograd) for your own optimizer or as an auxiliary loss.

A plain-text corpus file is streamed: each epoch encodes it block by block (``corpus_encode`` with a byte range of
whole lines, ``Word2Vec.stream_bytes`` per block) and trains each block's chunks, so memory stays flat however large
the corpus is; a small corpus (at most ``Word2Vec.cache_tokens`` tokens) keeps its encoded blocks for the next
epochs. Chunks (``chunk_words``) are cut at the same sentences whatever the block size, so the result does not
depend on it. Iterables of token lists and gzip files are encoded in memory in one block.
"""
from __future__ import annotations

import gzip
import math
import numbers
import os
import signal
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass
from typing import Iterable, Optional, Sequence, Union

import torch
from torch import nn

from . import ops
from ._io import WORD_ERRORS, atomic_write, check_input_file, check_output_path, encode_word
from ._vocab import decode_words

Corpus = Union[str, "os.PathLike[str]", Iterable[Sequence[str]]]

_WHITESPACE = (" ", "\t", "\n", "\r", "\v", "\f")
_CHECKPOINT_VERSION = 2


# ---------------------------------------------------------------------------------------------------------
# the differentiable module
# ---------------------------------------------------------------------------------------------------------


class SkipGram(nn.Module):
    """Skip-gram with negative sampling as an ``nn.Module``.

    ``self.in_embed`` is an ``nn.Embedding(vocab_size, dim)`` (the word vectors people keep), initialised as
    word2vec does (uniform in +-0.5/dim); ``self.out_weight`` is the [vocab_size, dim] output (context) matrix,
    initialised to zeros. ``forward(centers, contexts, negatives)`` returns the SGNS loss computed by the custom
    op ``embedfast::sgns_loss`` (C++ forward and backward; works under ``torch.compile(fullgraph=True)``).
    """

    def __init__(self, vocab_size: int, dim: int, *, generator: Optional[torch.Generator] = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        if any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in (vocab_size, dim)):
            raise ValueError(f"SkipGram: vocab_size and dim must be ints >= 1, got {vocab_size!r} and {dim!r}")
        self.in_embed = nn.Embedding(vocab_size, dim, dtype=dtype)
        self.out_weight = nn.Parameter(torch.zeros(vocab_size, dim, dtype=dtype))
        with torch.no_grad():
            self.in_embed.weight.uniform_(-0.5 / dim, 0.5 / dim, generator=generator)

    def forward(self, centers: torch.Tensor, contexts: torch.Tensor, negatives: torch.Tensor,
                reduction: str = "mean") -> torch.Tensor:
        """SGNS loss of the pairs (centers[b], contexts[b]) with negatives[b, :] ("mean", "sum" or "none")."""
        loss = ops.sgns_loss(self.in_embed.weight, self.out_weight, centers, contexts, negatives)
        if reduction == "mean":
            return loss.mean()
        if reduction == "sum":
            return loss.sum()
        if reduction == "none":
            return loss
        raise ValueError(f"SkipGram.forward: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


# ---------------------------------------------------------------------------------------------------------
# corpus input
# ---------------------------------------------------------------------------------------------------------


def _is_path(corpus) -> bool:
    return isinstance(corpus, (str, bytes, os.PathLike))


def _sentences_to_bytes(corpus: Iterable[Sequence[str]]) -> bytes:
    """Join an iterable of token lists into the text form the C++ pipeline reads (one sentence per line)."""
    lines = []
    for i, sentence in enumerate(corpus):
        if isinstance(sentence, (str, bytes)):
            raise TypeError(f"corpus sentence {i} is a {type(sentence).__name__}; each sentence must be a list "
                            "of tokens (split it first, e.g. line.split())")
        for tok in sentence:
            if not isinstance(tok, str):
                raise TypeError(f"corpus sentence {i}: tokens must be str, got {type(tok).__name__} ({tok!r})")
            if not tok or any(ch in tok for ch in _WHITESPACE):
                raise ValueError(f"corpus sentence {i}: token {tok!r} is empty or contains whitespace")
        lines.append(" ".join(sentence))
    if not lines:
        return b""
    text = "\n".join(lines) + "\n"
    try:  # str tokens holding surrogate escapes (words read with decode_word) go back to their original bytes
        return text.encode("utf-8", WORD_ERRORS)
    except UnicodeEncodeError:
        for i, line in enumerate(lines):
            for tok in line.split(" "):
                try:
                    encode_word(tok)
                except ValueError as exc:
                    raise ValueError(f"corpus sentence {i}: {exc}") from None
        raise


@dataclass
class _Text:
    path: Optional[str]
    data: Optional[torch.Tensor]
    name: str


def _open_text(corpus: Corpus) -> _Text:
    """A file path (gzip decompressed in memory) or an iterable of token lists -> the op's text arguments."""
    if _is_path(corpus):
        # a named pipe, a folder or a device is refused before it is opened (a FIFO without a writer would block)
        path = check_input_file(corpus, "corpus")
        try:
            with open(path, "rb") as f:
                magic = f.read(2)
        except OSError as exc:
            raise OSError(exc.errno, f"corpus {path!r}: cannot read: {exc.strerror or exc}") from None
        if magic == b"\x1f\x8b":
            try:
                with gzip.open(path, "rb") as f:
                    raw = f.read()
            except (OSError, EOFError, zlib.error) as exc:  # truncated, corrupt, CRC or length mismatch
                raise ValueError(f"corpus {path!r}: cannot decompress gzip: {exc or type(exc).__name__}") from None
            return _Text(None, torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else
                         torch.empty(0, dtype=torch.uint8), path)
        return _Text(path, None, path)
    if isinstance(corpus, torch.Tensor) or not isinstance(corpus, Iterable):
        raise TypeError(f"corpus must be a file path or an iterable of token lists, got a "
                        f"{type(corpus).__name__}")
    raw = _sentences_to_bytes(corpus)
    return _Text(None, torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else
                 torch.empty(0, dtype=torch.uint8), "<iterable corpus>")


@dataclass
class _Source:
    """The training corpus: a plain file streamed block by block (`path`), or encoded in memory (`ids`)."""
    key: object  # what the user passed (a path string or the iterable), to recognise it in train()
    name: str
    tokens: int  # encoded (in-vocabulary) tokens of one epoch
    fingerprint: tuple  # (bytes, lines, tokens, encoded tokens) of the text
    path: Optional[str] = None
    size: int = 0  # bytes of the file
    ids: Optional[torch.Tensor] = None
    offsets: Optional[torch.Tensor] = None
    stats: Optional[dict] = None


class _WriteErrors:
    """A file object for ``torch.save`` that keeps the OSError of a failed write (torch replaces it by a
    RuntimeError that does not say why)."""

    def __init__(self, f) -> None:
        self.f = f
        self.error: Optional[OSError] = None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.f.flush()


class _Spill:
    """The encoded blocks of a streamed corpus written to an unlinked temporary file during the first epoch and
    read back (os.pread, page cache) in the next ones: no re-encoding, and nothing of it in the process's
    resident memory. 4 bytes per token + 8 per sentence on disk; removed when the trainer lets it go."""

    def __init__(self, directory: Optional[str]) -> None:
        self.f = tempfile.TemporaryFile(prefix="embedfast-w2v-", suffix=".ids", dir=directory, buffering=0)
        self.index: list = []  # (file position, ids, offsets, stats) per block
        self.end = 0
        self.complete = False

    def _pwrite(self, t: torch.Tensor) -> None:
        view = memoryview(t.numpy()).cast("B")
        done = 0
        while done < len(view):
            done += os.pwrite(self.f.fileno(), view[done:], self.end + done)
        self.end += len(view)

    def write(self, ids: torch.Tensor, offsets: torch.Tensor, stats: torch.Tensor) -> None:
        pos = self.end
        self._pwrite(ids)
        self._pwrite(offsets)
        self.index.append((pos, ids.numel(), offsets.numel(), stats))

    def _pread(self, t: torch.Tensor, pos: int) -> None:
        view = memoryview(t.numpy()).cast("B")
        done = 0
        while done < len(view):
            n = os.preadv(self.f.fileno(), [view[done:]], pos + done)
            if n <= 0:
                raise OSError(f"Word2Vec: the spill file of the encoded corpus is short at byte {pos + done}")
            done += n

    def blocks(self):
        for pos, n_ids, n_off, stats in self.index:
            ids = torch.empty(n_ids, dtype=torch.int32)
            offsets = torch.empty(n_off, dtype=torch.int64)
            self._pread(ids, pos)
            self._pread(offsets, pos + 4 * n_ids)
            yield ids, offsets, stats

    def close(self) -> None:
        self.f.close()


def _fingerprint(stats: dict) -> tuple:
    return (int(stats["bytes"]), int(stats["lines"]), int(stats["tokens"]), int(stats["encoded_tokens"]))


def _chunk_bounds(offsets: torch.Tensor, chunk_words: int) -> list:
    """Sentence indices where chunks start (plus the end): sentence i starts a chunk when its first token is the
    first at or after a multiple of chunk_words (i.e. start[i] // C > start[i-1] // C), sentence 0 always."""
    starts = offsets[:-1]
    if starts.numel() == 0:
        return [0]
    key = torch.div(starts, chunk_words, rounding_mode="floor")
    cuts = (key[1:] != key[:-1]).nonzero().flatten() + 1
    return [0, *cuts.tolist(), int(starts.numel())]


def keep_probabilities(counts: torch.Tensor, sample: float) -> torch.Tensor:
    """word2vec's sub-sampling keep probability per word (float64, clipped to 1).

    With t = sample * total_count: keep(w) = (sqrt(c_w / t) + 1) * t / c_w. sample = 0 keeps every word.
    """
    c = counts.to(torch.float64)
    if sample <= 0:
        return torch.ones_like(c)
    t = sample * float(c.sum())
    return ((c / t).sqrt() + 1.0).mul(t).div(c).clamp(max=1.0)


# ---------------------------------------------------------------------------------------------------------
# the trainer
# ---------------------------------------------------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    """Raised by ``Word2Vec.train(checkpoint=...)`` (and the ``embedfast`` command line) on SIGTERM, after the
    running chunk is recorded, so the checkpoint is written and ``finally`` blocks run; a KeyboardInterrupt
    subclass, so code that handles Ctrl-C handles it too."""


class _SignalGuard:
    """Holds SIGINT (and SIGTERM) back while ``critical`` is set, and raises it at ``safe_point()``.

    Installed for one ``train`` call, in the main thread only (signals are delivered there). The previous
    Python-level handler is kept and called at the safe point (for SIGINT that is ``default_int_handler``, which
    raises KeyboardInterrupt); SIGTERM with its default action (terminate) is taken over only when there is a
    checkpoint to write, and then raises :class:`Terminated`. Handlers set to SIG_IGN are left alone.
    """

    def __init__(self, terminate: bool) -> None:
        self.terminate = terminate
        self.critical = False
        self.pending = None
        self._saved: dict = {}

    def __enter__(self) -> "_SignalGuard":
        import threading

        if threading.current_thread() is not threading.main_thread():
            return self
        for sig in (signal.SIGINT, signal.SIGTERM):
            prev = signal.getsignal(sig)
            if callable(prev) or (sig == signal.SIGTERM and prev == signal.SIG_DFL and self.terminate):
                self._saved[sig] = prev
                signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, prev in self._saved.items():
            signal.signal(sig, prev)
        self._saved.clear()
        self.critical = False

    def _deliver(self, signum: int, frame) -> None:
        prev = self._saved.get(signum)
        if callable(prev):
            prev(signum, frame)
        elif signum == signal.SIGTERM:
            raise Terminated("terminated by SIGTERM")
        else:
            raise KeyboardInterrupt

    def _handler(self, signum: int, frame) -> None:
        if self.critical:
            self.pending = signum
            return
        self._deliver(signum, frame)

    def safe_point(self) -> None:
        """End of the critical step: deliver a signal that arrived during it."""
        self.critical = False
        if self.pending is not None:
            signum, self.pending = self.pending, None
            self._deliver(signum, None)


# Bounds of the trainer's arguments: the op's own limits (threads), what fits the types the ops take (int32
# vocabulary ids and sentence lengths, int64 counts and seeds), and sizes far beyond any useful setting whose
# per-thread buffers (2 * window * dim floats) would otherwise end in an allocation failure deep in a chunk.
_INT32_MAX = (1 << 31) - 1
_INT64_MAX = (1 << 63) - 1
_MAX_DIM = 10_000
_MAX_WINDOW = 1_000
_MAX_NEGATIVE = 1_000
_MAX_EPOCHS = 100_000
_MAX_VOCAB = _INT32_MAX
_MAX_THREADS = ops.SGNS_TRAIN_LIMITS["num_threads"][1]  # the op's own limit
_MAX_ALPHA = 1.0
_MAX_NS_EXPONENT = 10.0
_MAX_INIT_SCALE = 1000.0


def _is_divergence(exc: BaseException) -> bool:
    """True for the ops' divergence errors (``sgns_train``'s "training diverged", a non-finite loss)."""
    text = str(exc)
    return isinstance(exc, (ValueError, RuntimeError)) and ("diverge" in text or "finite" in text)


def _op_detail(exc: BaseException) -> str:
    """What the op's divergence error says happened, without its own advice (the trainer gives its own)."""
    text = (str(exc).splitlines() or [""])[0].split(";")[0].split(" with learning rate")[0].strip()
    return text or type(exc).__name__


def _physical_memory() -> float:
    """Bytes of RAM of this machine (inf when unknown)."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return math.inf


def _int(name: str, v, low: int, high: int) -> int:
    """``v`` as int after checking it is an integer (not a bool or float) in [low, high]."""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not low <= v <= high:
        raise ValueError(f"Word2Vec: {name} must be an int in [{low:,}, {high:,}], got {v!r}")
    return int(v)


def _real(name: str, v, low: float, high: float, *, low_open: bool = False, high_name: Optional[str] = None) -> float:
    """``v`` as float after checking it is a finite real number in [low, high] ((low, high] with low_open)."""
    ok = not isinstance(v, bool) and isinstance(v, numbers.Real) and math.isfinite(v) and \
        (low < v if low_open else low <= v) and v <= high
    if not ok:
        hi = f"{high_name}={high!r}" if high_name else f"{high:g}"
        raise ValueError(f"Word2Vec: {name} must be a finite number in {'(' if low_open else '['}{low:g}, {hi}], "
                         f"got {v!r}")
    return float(v)


def _flag(name: str, v) -> bool:
    if not (isinstance(v, bool) or (isinstance(v, numbers.Integral) and v in (0, 1))):
        raise ValueError(f"Word2Vec: {name} must be True or False, got {v!r}")
    return bool(v)


@dataclass
class _Params:
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


class Word2Vec:
    """Train word2vec skip-gram with negative sampling on the CPU with embedfast's fused kernel.

    Example::

        w2v = embedfast.Word2Vec(dim=100, window=5, epochs=5, threads=2)
        w2v.train("corpus.txt")          # builds the vocabulary first when needed
        w2v.vectors.most_similar("king")
        w2v.vectors.save("vectors.txt", format="word2vec")

    Args:
        dim: vector size. window: largest distance of a context word (shrunk at random per center, as word2vec).
        negative: negative samples per pair. sample: sub-sampling threshold (0 disables).
        min_count / max_vocab: vocabulary filter (max_vocab keeps the most frequent words; None: all).
        epochs: passes over the corpus. alpha / min_alpha: learning rate, decayed linearly over the whole run.
        ns_exponent: negatives are drawn from count^ns_exponent. threads: Hogwild workers (None: torch's
        thread count); ``threads=1`` is bit-for-bit reproducible for a given seed.
        max_sentence_length: longer lines are cut into pieces (counted in ``corpus_stats``).
        chunk_words: tokens per call of the fused op (granularity of progress, checkpoints and RNG streams).
        init_scale: ``w_in`` starts uniform in +-init_scale/dim (``w_out`` at zeros). The default 0.5 is
        word2vec.c's initialisation; 1.0 is gensim 4's (``gensim.models.keyedvectors.prep_vectors``), which on
        small corpora trains measurably better (benchmarks/RESULTS.md, quality section) -- pass it to match gensim.
        shared_negatives: HogBatch variant (negatives shared by the contexts of a center, updates as small
        matrix products). exact_sigmoid: exact sigmoid instead of the interpolated table.
        backend / device: where training runs -- ``device`` (default CPU) holds the tables, the encoded corpus
        and the sampling tables during training; ``backend`` "auto" (C++ op on CPU; on a GPU the CUDA kernel when
        built, else Triton), "cpu", "cuda" or "triton" (see ``embedfast.sgns_backend``).

    Every argument is checked here, before any work (ValueError naming it): integers must be ints (not bools or
    floats) and numbers finite; dim <= 10,000, window <= 1,000, negative <= 1,000, epochs <= 100,000,
    threads <= 1,024 (the op's limit), 0 < alpha <= 1, 0 <= min_alpha <= alpha, 0 <= sample <= 1,
    |ns_exponent| <= 10, 0 <= seed < 2**63.

    Words are the corpus' bytes: bytes that are not UTF-8 are kept as surrogate escapes (``embedfast._io``'s
    word rule), so distinct byte strings stay distinct words and are saved back byte for byte;
    ``vocab_stats["non_utf8_words"]`` counts them. Token lists holding such escaped words encode back to the same
    bytes.

    Streaming (attributes, settable per instance; they change memory and speed, never the result):
    ``stream_bytes``: bytes of text encoded per block when a plain file is streamed; ``cache_tokens``: a streamed
    corpus of at most this many encoded tokens keeps its blocks after the first epoch instead of re-encoding the
    text every epoch (4 bytes per token; 0 never keeps them); ``spill``: a larger one writes its encoded blocks
    to an unlinked temporary file (in ``spill_dir``, default the system's temporary directory; 4 bytes per token)
    during the first epoch and reads them back in the next ones instead of re-encoding the text (measured: ~5-10%
    of an epoch's time); False re-encodes.
    """

    stream_bytes: int = 4 << 20
    cache_tokens: int = 8_000_000
    spill: bool = True
    spill_dir: Optional[str] = None

    def __init__(self, dim: int = 100, window: int = 5, negative: int = 5, sample: float = 1e-4, min_count: int = 5,
                 max_vocab: Optional[int] = None, epochs: int = 5, alpha: float = 0.025, min_alpha: float = 1e-4,
                 ns_exponent: float = 0.75, threads: Optional[int] = None, seed: int = 0, *,
                 max_sentence_length: int = 10000, chunk_words: int = 200_000, shared_negatives: bool = True,
                 exact_sigmoid: bool = False, backend: str = "auto", device: "torch.device | str | None" = None,
                 init_scale: float = 0.5) -> None:
        alpha_f = _real("alpha", alpha, 0.0, _MAX_ALPHA, low_open=True)
        self.params = _Params(
            dim=_int("dim", dim, 1, _MAX_DIM), window=_int("window", window, 1, _MAX_WINDOW),
            negative=_int("negative", negative, 0, _MAX_NEGATIVE), sample=_real("sample", sample, 0.0, 1.0),
            min_count=_int("min_count", min_count, 1, _INT64_MAX),
            max_vocab=None if max_vocab is None else _int("max_vocab", max_vocab, 1, _MAX_VOCAB),
            epochs=_int("epochs", epochs, 1, _MAX_EPOCHS), alpha=alpha_f,
            min_alpha=_real("min_alpha", min_alpha, 0.0, alpha_f, high_name="alpha"),
            ns_exponent=_real("ns_exponent", ns_exponent, -_MAX_NS_EXPONENT, _MAX_NS_EXPONENT),
            seed=_int("seed", seed, 0, _INT64_MAX),
            max_sentence_length=_int("max_sentence_length", max_sentence_length, 1, _INT32_MAX),
            chunk_words=_int("chunk_words", chunk_words, 1, _INT32_MAX),
            shared_negatives=_flag("shared_negatives", shared_negatives),
            exact_sigmoid=_flag("exact_sigmoid", exact_sigmoid))
        if threads is not None:
            threads = _int("threads", threads, 1, _MAX_THREADS)
        if isinstance(init_scale, bool) or not isinstance(init_scale, numbers.Real) or \
                not math.isfinite(init_scale) or not 0 < init_scale <= _MAX_INIT_SCALE:
            raise ValueError(f"Word2Vec: init_scale must be a finite number > 0 (at most {_MAX_INIT_SCALE:g}), "
                             f"got {init_scale!r}")
        from .sgns_backend import SGNS_BACKENDS

        if backend not in SGNS_BACKENDS:
            raise ValueError(f"Word2Vec: backend must be one of {SGNS_BACKENDS}, got {backend!r}")
        self.backend = backend
        try:
            self.device = torch.device("cpu") if device is None else torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"Word2Vec: device {device!r} is not a torch device: {exc}") from None
        self.threads = threads
        self.init_scale = float(init_scale)
        self.words: list[str] = []
        self.counts: Optional[torch.Tensor] = None
        self.w_in: Optional[torch.Tensor] = None
        self.w_out: Optional[torch.Tensor] = None
        self.vocab_stats: dict = {}
        self.corpus_stats: dict = {}
        self.loss_history: list[tuple[int, float]] = []  # (words_done, mean loss per pair of the chunk)
        self.train_seconds = 0.0
        self._pos = dict(epoch=0, chunk_in_epoch=0, words_done=0)
        self._diverged: Optional[str] = None  # the divergence error once the weights stopped being finite
        self._reset_data()
        self._tables = None

    def _reset_data(self) -> None:
        self._source: Optional[_Source] = None
        self._cache = None  # encoded blocks of a streamed corpus kept for the next epochs
        self._spill: Optional[_Spill] = None  # or written to a temporary file
        self._live = None  # [epoch, chunk, generator] to go on without re-reading
        self._n_chunks: Optional[int] = None  # chunks per epoch, known after the first pass
        self._full = None  # the whole corpus encoded, built on demand (see _encoded)
        self._expect_fingerprint = None

    # -- vocabulary ------------------------------------------------------------------------------------
    def build_vocab(self, corpus: Corpus) -> "Word2Vec":
        """Count the corpus' words and build the vocabulary; initialise the weights (word2vec's scheme).

        A path that is not a regular file (a named pipe, a folder) is refused before it is opened; a gzip file
        that cannot be decompressed is a ValueError naming it; tables larger than the machine's memory are a
        MemoryError before anything is allocated."""
        p = self.params
        text = _open_text(corpus)
        wb, wo, counts, st = ops.corpus_build_vocab(text.path, data=text.data, min_count=p.min_count,
                                                    max_vocab=-1 if p.max_vocab is None else p.max_vocab,
                                                    num_threads=self._threads())
        stats = dict(zip(ops.VOCAB_STATS, st.tolist()))
        if stats["tokens"] == 0:
            raise ValueError(f"Word2Vec.build_vocab: corpus {text.name!r} is empty ({stats['lines']} lines, "
                             f"{stats['bytes']} bytes, no tokens)")
        if stats["vocab_words"] == 0:
            raise ValueError(f"Word2Vec.build_vocab: all {stats['unique_words']} distinct words of {text.name!r} "
                             f"occur fewer than min_count={p.min_count} times; lower min_count")
        self.words, stats["non_utf8_words"] = decode_words(wb, wo)
        self._word_bytes, self._word_offsets = wb, wo
        self.counts = counts
        self.vocab_stats = stats
        gen = torch.Generator().manual_seed(p.seed)
        n = len(self.words)
        need = 2 * n * p.dim * 4
        too_big = (f"Word2Vec.build_vocab: the tables of {n:,} words x dim {p.dim} need {need / 2**30:.1f} GiB "
                   "(two float32 matrices), {}: lower dim, raise min_count or set max_vocab")
        if need > _physical_memory():  # would pass the allocator (overcommit) and end in the OOM killer
            self.w_in = self.w_out = None
            raise MemoryError(too_big.format("more than this machine's memory"))
        try:
            self.w_in = torch.empty(n, p.dim).uniform_(-self.init_scale / p.dim, self.init_scale / p.dim,
                                                       generator=gen)
            self.w_out = torch.zeros(n, p.dim)
        except (RuntimeError, MemoryError) as exc:  # torch's allocator reports a failed allocation as RuntimeError
            self.w_in = self.w_out = None
            if isinstance(exc, RuntimeError) and "alloc" not in str(exc):
                raise
            raise MemoryError(too_big.format("which could not be allocated")) from None
        if self.device.type != "cpu":  # same initial values on every device
            self.w_in, self.w_out = self.w_in.to(self.device), self.w_out.to(self.device)
        self.loss_history = []
        self.train_seconds = 0.0
        self._pos = dict(epoch=0, chunk_in_epoch=0, words_done=0)
        self._diverged = None
        self._tables = None
        self._reset_data()
        if text.path is not None:  # a plain file: streamed; its totals are those of the vocabulary pass
            fp = (stats["bytes"], stats["lines"], stats["tokens"], stats["vocab_tokens"])
            self._source = _Source(key=text.path, name=text.name, tokens=int(stats["vocab_tokens"]),
                                   fingerprint=tuple(int(x) for x in fp), path=text.path, size=int(stats["bytes"]))
        else:  # an iterable may be one-shot (and gzip is in memory already): encode it now
            self._source = self._encode(text, key=corpus if not _is_path(corpus) else os.fsdecode(corpus))
        return self

    def _threads(self) -> int:
        return self.threads if self.threads is not None else min(_MAX_THREADS, max(1, torch.get_num_threads()))

    def _encode_block(self, path: Optional[str], data: Optional[torch.Tensor], start: int = 0, max_bytes: int = -1):
        p = self.params
        return ops.corpus_encode(path, data=data, word_bytes=self._word_bytes, word_offsets=self._word_offsets,
                                 max_sentence_length=p.max_sentence_length, num_threads=self._threads(), start=start,
                                 max_bytes=max_bytes)

    def _encode(self, text: _Text, key) -> _Source:
        """Encode a whole text in memory (iterables, gzip files)."""
        ids, offsets, st = self._encode_block(text.path, text.data)
        stats = dict(zip(ops.ENCODE_STATS, st.tolist()))
        self.corpus_stats = stats
        if ids.numel() == 0:
            raise ValueError(f"Word2Vec.train: corpus {text.name!r} has no word of the vocabulary "
                             f"({stats['tokens']} tokens)")
        return _Source(key=key, name=text.name, tokens=int(ids.numel()), fingerprint=_fingerprint(stats), ids=ids,
                       offsets=offsets, stats=stats)

    def _file_source(self, text: _Text) -> _Source:
        """A plain file given to train() that is not the vocabulary's: one counting pass for its totals."""
        total = None
        for _, _, st in self._file_blocks(text.path, os.path.getsize(text.path)):
            total = st if total is None else total + st
        stats = dict(zip(ops.ENCODE_STATS, total.tolist())) if total is not None else \
            dict.fromkeys(ops.ENCODE_STATS, 0)
        if stats["encoded_tokens"] == 0:
            raise ValueError(f"Word2Vec.train: corpus {text.name!r} has no word of the vocabulary "
                             f"({stats['tokens']} tokens)")
        return _Source(key=text.path, name=text.name, tokens=int(stats["encoded_tokens"]),
                       fingerprint=_fingerprint(stats), path=text.path, size=int(stats["bytes"]))

    def _file_blocks(self, path: str, size: int):
        """Encoded blocks (ids, offsets, stats) of a plain file, in text order."""
        start, step = 0, self.stream_bytes
        while start < size:
            ids, offsets, st = self._encode_block(path, None, start=start, max_bytes=step)
            n = int(st[0])
            if n <= 0:  # cannot happen with start < size; guards against an endless loop
                raise RuntimeError(f"Word2Vec: corpus_encode read no bytes at offset {start} of {path!r}")
            start += n
            yield ids, offsets, st

    def _blocks(self):
        """Encoded blocks (ids, offsets, stats or None) of one epoch of the training corpus."""
        src = self._source
        if src.ids is not None:
            yield src.ids, src.offsets, None
            return
        if self._cache is not None:
            yield from self._cache
            return
        if self._spill is not None and self._spill.complete:
            yield from self._spill.blocks()
            return
        more = self.params.epochs - self._pos["epoch"] > 1  # another pass will follow
        keep = [] if (more and src.tokens <= self.cache_tokens) else None
        spill = None
        if self._spill is not None:  # an incomplete one (a pass given up half-way): start again
            self._spill.close()
            self._spill = None
        if more and keep is None and self.spill:
            try:
                spill = _Spill(self.spill_dir)
            except OSError:
                spill = None  # no temporary file: re-encode each epoch
        for block in self._file_blocks(src.path, src.size):
            if keep is not None:
                keep.append(block)
            if spill is not None:
                try:
                    spill.write(*block)
                except OSError:  # disk full: give the spill up, re-encode each epoch
                    spill.close()
                    spill = None
            yield block
        if keep is not None:
            self._cache = keep
        if spill is not None:
            spill.complete = True
            self._spill = spill

    def _epoch_chunks(self):
        """Chunks (ids, sentence_offsets, last) of one epoch, cut exactly as ``_chunk_bounds`` cuts the whole
        encoded corpus: the sentences of the open chunk at the end of a block are carried into the next block."""
        src = self._source
        C = self.params.chunk_words
        carry = None  # (ids, offsets from 0, tokens of the epoch before it)
        done = 0  # tokens of the epoch before the current block
        k = 0
        total_stats = None
        for ids, offsets, st in self._blocks():
            if st is not None:
                total_stats = st.clone() if total_stats is None else total_stats + st
            if offsets.numel() <= 1:
                continue
            g0 = done
            if carry is not None:
                c_ids, c_off, g0 = carry
                ids = torch.cat([c_ids, ids])
                offsets = torch.cat([c_off[:-1], offsets + c_off[-1]])
            done = g0 + int(offsets[-1])
            b = _chunk_bounds(offsets + g0, C)
            for a, c in zip(b[:-2], b[1:-1]):  # every chunk but the last may still grow in the next block
                yield ids, offsets[a:c + 1], False
                k += 1
            last = b[-2]
            t0 = int(offsets[last])
            carry = (ids[t0:].clone(), offsets[last:] - t0, g0 + t0)
        if total_stats is not None:
            self.corpus_stats = dict(zip(ops.ENCODE_STATS, total_stats.tolist()))
        if done != src.tokens:
            raise ValueError(f"Word2Vec.train: corpus {src.name!r} has {done} vocabulary tokens in this pass, "
                             f"{src.tokens} expected: the file changed during training")
        if carry is not None:
            self._n_chunks = k + 1
            yield carry[0], carry[1], True

    @property
    def _encoded(self):
        """The whole training corpus encoded in memory: (ids, sentence_offsets, chunk bounds, fingerprint), or None
        when there is no corpus yet (for embedfast.distributed, which shards it; the trainer itself streams)."""
        src = self._source
        if src is None:
            return None
        if self._full is None or self._full[0] is not src:
            if src.ids is not None:
                ids, offsets = src.ids, src.offsets
            else:
                ids, offsets, st = self._encode_block(src.path, None)
                self.corpus_stats = dict(zip(ops.ENCODE_STATS, st.tolist()))
            self._full = (src, (ids, offsets, _chunk_bounds(offsets, self.params.chunk_words), src.fingerprint))
        return self._full[1]

    def _next_chunk(self):
        """(ids, offsets, last) of the chunk at the current position; re-reads the epoch up to it when needed."""
        e, k = self._pos["epoch"], self._pos["chunk_in_epoch"]
        live = self._live
        if live is None or live[0] != e or live[1] != k:
            gen = self._epoch_chunks()
            for _ in range(k):  # resume inside an epoch: encode (without training) the chunks already trained
                if next(gen, None) is None:
                    raise ValueError(f"Word2Vec.train: the corpus has fewer than {k + 1} chunks in an epoch; it is "
                                     "not the corpus this run was trained on")
            live = self._live = [e, k, gen]
        try:
            item = next(live[2], None)
        except BaseException:  # an interrupt or error inside the reader ends the generator: re-read next time
            self._live = None
            raise
        if item is None:
            raise ValueError(f"Word2Vec.train: the corpus ended before chunk {k} of the epoch; it is not the corpus "
                             "this run was trained on")
        live[1] += 1
        if item[2]:  # the epoch's last chunk: the next epoch reads the corpus again
            self._live = None
        return item

    # -- training ----------------------------------------------------------------------------------------
    def train(self, corpus: Optional[Corpus] = None, progress: bool = True, *, max_words: Optional[int] = None,
              checkpoint: Optional[str] = None, checkpoint_every: float = 600.0) -> "Word2Vec":
        """Train (or go on training) until all epochs are done.

        Args:
            corpus: a text file (one sentence per line, whitespace-tokenised; ``.gz`` is decompressed) or an
                iterable of token lists. Optional when ``build_vocab`` got the corpus. The vocabulary is built
                first when there is none. A path that is not a regular file (a named pipe, a folder) is refused.
            progress: show a tqdm bar (words/s, loss, learning rate).
            max_words: stop after about this many more tokens (at the next chunk boundary; 0 trains nothing);
                ``train`` again continues where it stopped, exactly as if it had not stopped.
            checkpoint / checkpoint_every: write a checkpoint there every that many seconds (0: after every
                chunk; ``inf``: only at the end), at the end, and on KeyboardInterrupt (and SIGTERM, which then
                raises :class:`Terminated`). The path is checked before training starts. Saves are atomic.

        Interrupts: a Ctrl-C (SIGINT) that arrives while a chunk is trained is held back until the chunk's
        weights and the position after it are both recorded, so a checkpoint written on the interrupt always
        resumes exactly (``threads=1``: bit for bit the uninterrupted run).

        Divergence: when the weights stop being finite (too high a learning rate), training stops with a
        ValueError naming the epoch, the chunk, the words done and ``alpha``; the model is then unusable (its
        ``vectors``, ``save`` and ``save_checkpoint`` refuse) and the checkpoint file keeps the last good state.
        """
        if self._diverged is not None:
            raise ValueError(self._diverged)
        if max_words is not None and (isinstance(max_words, bool) or not isinstance(max_words, numbers.Integral)
                                      or max_words < 0):
            raise ValueError(f"Word2Vec.train: max_words must be None or an int >= 0, got {max_words!r}")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, numbers.Real) or \
                math.isnan(checkpoint_every) or checkpoint_every < 0:
            raise ValueError(f"Word2Vec.train: checkpoint_every must be a number of seconds >= 0, got "
                             f"{checkpoint_every!r}")
        if checkpoint is not None:
            if not isinstance(checkpoint, (str, os.PathLike)):
                raise TypeError(f"Word2Vec.train: checkpoint must be a path, got {type(checkpoint).__name__}")
            inputs = [os.fsdecode(c) for c in (corpus, None if self._source is None else self._source.path)
                      if c is not None and _is_path(c)]
            checkpoint = check_output_path(checkpoint, inputs=inputs, what="checkpoint")
        if self.w_in is None:
            if corpus is None:
                raise ValueError("Word2Vec.train: no corpus given and no vocabulary built")
            self.build_vocab(corpus)
        for name, low in (("stream_bytes", 1), ("cache_tokens", 0)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise ValueError(f"Word2Vec.train: {name} must be an int >= {low}, got {v!r}")
        src = self._source
        same = src is not None and corpus is not None and (
            corpus is src.key or (_is_path(corpus) and os.fsdecode(corpus) == src.key))
        if corpus is not None and not same:
            text = _open_text(corpus)
            key = corpus if not _is_path(corpus) else os.fsdecode(corpus)
            src = self._encode(text, key) if text.path is None else self._file_source(text)
            expect = self._expect_fingerprint
            if expect is not None and tuple(expect) != src.fingerprint:
                raise ValueError(f"Word2Vec.train: corpus {text.name!r} is not the corpus this checkpoint was "
                                 f"trained on (fingerprint {src.fingerprint} != {tuple(expect)})")
            if self._source is not None and self._source.fingerprint != src.fingerprint:
                self._n_chunks = None  # another corpus: other chunks
            if self._spill is not None:
                self._spill.close()
            self._source, self._cache, self._spill, self._live, self._full = src, None, None, None, None
        elif src is None:
            raise ValueError("Word2Vec.train: give the corpus again (the vocabulary came from a checkpoint)")
        p = self.params
        src = self._source
        if self._tables is None:
            keep = keep_probabilities(self.counts, p.sample)
            thr, alias = ops.sgns_unigram_table(self.counts, p.ns_exponent)
            self._tables = (keep, thr, alias)
        keep, thr, alias = self._tables
        dev = self.w_in.device
        on_cpu = dev.type == "cpu"
        if not on_cpu:  # corpus blocks and tables live on the training device
            keep, thr, alias = (t.to(dev) for t in (keep, thr, alias))
        ids_host, ids_d = None, None
        total = p.epochs * src.tokens  # the whole run, known before the first block is read
        threads = self._threads()
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=self._pos["words_done"], unit="word", unit_scale=True,
                       desc="word2vec", dynamic_ncols=True)
            bad = self.vocab_stats.get("non_utf8_words", 0)
            if bad:
                bar.write(f"word2vec: {bad:,} vocabulary words hold bytes that are not UTF-8 (kept byte for byte; "
                          "shown as surrogate escapes)")
        start_words = self._pos["words_done"]
        t_last_ckpt = time.perf_counter()
        guard = _SignalGuard(terminate=checkpoint is not None)
        with guard:
            try:
                while self._pos["epoch"] < p.epochs:
                    if max_words is not None and self._pos["words_done"] - start_words >= max_words:
                        break
                    e, k = self._pos["epoch"], self._pos["chunk_in_epoch"]
                    if e > 0 and self._n_chunks is None:  # resumed after the first epoch without its chunk count
                        for _ in self._epoch_chunks():
                            pass
                        self._live = None
                    ids, offsets, last = self._next_chunk()
                    if ids is not ids_host:  # a new block
                        ids_host, ids_d = ids, (ids if on_cpu else ids.to(dev))
                    chunk_index = k if e == 0 else e * self._n_chunks + k  # the RNG stream of this chunk
                    t0 = time.perf_counter()
                    # one step: the op's in-place update and the position after it, recorded together (an
                    # interrupt arriving meanwhile is raised after it, at guard.safe_point())
                    guard.critical = True
                    try:
                        st = ops.sgns_train(self.w_in, self.w_out, ids_d, offsets if on_cpu else offsets.to(dev),
                                            keep, thr, alias, window=p.window, negative=p.negative, alpha=p.alpha,
                                            min_alpha=p.min_alpha, words_done=self._pos["words_done"],
                                            total_words=total, seed=p.seed, chunk=chunk_index, num_threads=threads,
                                            shared_negatives=p.shared_negatives, exact_sigmoid=p.exact_sigmoid,
                                            backend=self.backend)
                    except (ValueError, RuntimeError) as exc:
                        if not _is_divergence(exc):
                            raise
                        self._diverge(e, k, total, checkpoint, _op_detail(exc))
                    self.train_seconds += time.perf_counter() - t0
                    stats = dict(zip(ops.TRAIN_STATS, st.tolist()))
                    if not math.isfinite(stats["loss"]):  # NaN/inf scores (the exact sigmoid lets them through)
                        self._diverge(e, k, total, checkpoint, f"the chunk's loss is {stats['loss']}")
                    chunk_tokens = int(offsets[-1]) - int(offsets[0])
                    mean_loss = stats["loss"] / max(stats["pairs"], 1.0)
                    k += 1
                    if last:
                        e, k = e + 1, 0
                    self._pos = dict(epoch=e, chunk_in_epoch=k, words_done=self._pos["words_done"] + chunk_tokens)
                    self.loss_history.append((self._pos["words_done"], mean_loss))
                    guard.safe_point()
                    if bar is not None:
                        bar.update(chunk_tokens)
                        bar.set_postfix(loss=f"{mean_loss:.4f}", alpha=f"{stats['last_alpha']:.5f}", epoch=e + (k > 0))
                    if checkpoint and time.perf_counter() - t_last_ckpt >= checkpoint_every:
                        self._checked_checkpoint(checkpoint, total, guard)
                        t_last_ckpt = time.perf_counter()
                if checkpoint:
                    self._checked_checkpoint(checkpoint, total, guard)
            except KeyboardInterrupt:  # Ctrl-C, or Terminated (SIGTERM): keep the work done so far
                if checkpoint and self._diverged is None:
                    self._checked_checkpoint(checkpoint, total, guard)
                raise
            finally:
                if bar is not None:
                    bar.close()
        if not checkpoint:
            self._check_finite(total)
        return self

    def _diverge(self, epoch: int, chunk: int, total: int, checkpoint: Optional[str], detail: str, *,
                 who: str = "Word2Vec.train", unit: str = "chunk") -> None:
        """Mark the model as diverged (its weights are not finite any more) and raise the error that says so."""
        p = self.params
        where = (f"epoch {epoch + 1} of {p.epochs}, {unit} {chunk}"
                 + (f" of {self._n_chunks}" if self._n_chunks else "")
                 + f", {self._pos['words_done']:,} of {total:,} words done")
        ck = f"; the checkpoint {checkpoint!r} keeps the last good state" if checkpoint else ""
        self._diverged = (f"{who}: training diverged in {where} at learning rate alpha={p.alpha:g} "
                          f"({detail}): the weights are no longer finite. Train again with a lower alpha (e.g. "
                          f"{p.alpha / 4:g}; word2vec's default is 0.025){ck}")
        raise ValueError(self._diverged)

    def _check_finite(self, total: int) -> None:
        """Raise the divergence error when a weight is NaN/inf (once per save or train call: a pass over the
        tables, nothing per chunk)."""
        if not (bool(torch.isfinite(self.w_in).all()) and bool(torch.isfinite(self.w_out).all())):
            if self._diverged is None:
                self._diverge(self._pos["epoch"], self._pos["chunk_in_epoch"], total, None,
                              "NaN/inf found in the tables")
            raise ValueError(self._diverged)

    def _checked_checkpoint(self, path: str, total: int, guard: "_SignalGuard") -> None:
        """Save a checkpoint of finite tables; an interrupt arriving meanwhile is delivered once it is written
        (so no interrupt leaves a temporary file or skips the save)."""
        guard.critical = True
        try:
            self._check_finite(total)
            self.save_checkpoint(path)
        except BaseException:
            guard.critical = False
            raise
        guard.safe_point()

    @property
    def matrix(self) -> torch.Tensor:
        """The input vectors [len(words), dim] (the trained embedding; not a copy)."""
        if self.w_in is None:
            raise ValueError("Word2Vec.matrix: nothing trained yet (call build_vocab/train)")
        return self.w_in

    @property
    def done(self) -> bool:
        """True when all epochs have been trained."""
        return self._pos["epoch"] >= self.params.epochs

    @property
    def words_per_second(self) -> float:
        """Encoded (in-vocabulary) tokens trained per second of kernel time so far."""
        return self._pos["words_done"] / self.train_seconds if self.train_seconds > 0 else 0.0

    # -- results ---------------------------------------------------------------------------------------------
    @property
    def vectors(self):
        """The input vectors as ``embedfast.Vectors(words, matrix)`` (a copy)."""
        if self.w_in is None:
            raise ValueError("Word2Vec.vectors: nothing trained yet (call build_vocab/train)")
        if self._diverged is not None:
            raise ValueError(f"Word2Vec.vectors: no result, {self._diverged}")
        from .vectors import Vectors

        return Vectors(list(self.words), self.w_in.to("cpu", copy=True))

    def save(self, path: str, format: str = "word2vec") -> None:
        """Save the vectors in any format of ``Vectors.save`` (glove, word2vec, word2vec-bin, native)."""
        self.vectors.save(path, format=format)

    def skipgram(self) -> SkipGram:
        """A ``SkipGram`` module holding copies of the trained matrices (to fine-tune with autograd)."""
        if self.w_in is None:
            raise ValueError("Word2Vec.skipgram: nothing trained yet (call build_vocab/train)")
        if self._diverged is not None:
            raise ValueError(f"Word2Vec.skipgram: no result, {self._diverged}")
        m = SkipGram(len(self.words), self.params.dim)
        with torch.no_grad():
            m.in_embed.weight.copy_(self.w_in)
            m.out_weight.copy_(self.w_out)
        return m

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def save_checkpoint(self, path: str) -> None:
        """Write everything needed to resume (weights, vocabulary, position, RNG positions are implied).

        The save is atomic (a unique temporary file next to ``path``, renamed over it when complete): an
        interrupted or failed save, or another process saving to the same path, leaves a whole checkpoint.
        A model whose training diverged is refused (the file keeps its last good state).
        """
        if self.w_in is None:
            raise ValueError("Word2Vec.save_checkpoint: nothing to save (no vocabulary built)")
        if self._diverged is not None:
            raise ValueError(f"Word2Vec.save_checkpoint: not saved, the weights are not finite: {self._diverged}")
        path = check_output_path(path, what="checkpoint")
        state = dict(
            version=_CHECKPOINT_VERSION, params=asdict(self.params), threads=self.threads, words=self.words,
            word_bytes=self._word_bytes, word_offsets=self._word_offsets, counts=self.counts, w_in=self.w_in,
            w_out=self.w_out, position=dict(self._pos), loss_history=self.loss_history,
            train_seconds=self.train_seconds, vocab_stats=self.vocab_stats, corpus_stats=self.corpus_stats,
            fingerprint=self._expect_fingerprint if self._source is None else self._source.fingerprint,
            chunks_per_epoch=self._n_chunks,
        )
        try:
            with atomic_write(path, "wb") as f:
                out = _WriteErrors(f)
                try:
                    torch.save(state, out)
                except RuntimeError:  # torch's writer reports a failed write as "unexpected pos ...": say why
                    if out.error is not None:
                        raise out.error from None
                    raise
        except OSError as exc:  # a full disk, a quota: name the checkpoint (the previous one is untouched)
            if exc.filename is None:
                raise OSError(exc.errno, f"cannot write checkpoint: {exc.strerror or exc}", path) from None
            raise

    @classmethod
    def load_checkpoint(cls, path: str) -> "Word2Vec":
        """Load a checkpoint; ``train(corpus)`` with the same corpus then finishes the run.

        Every field is checked (types, shapes, value ranges, consistency of vocabulary, tables and position)
        before anything reaches the ops: a truncated, foreign or crafted file is a ValueError naming the file
        and the field.
        """
        path = check_input_file(path, "checkpoint")
        where = f"Word2Vec.load_checkpoint: {path!r}"
        if os.path.getsize(path) == 0:
            raise ValueError(f"{where} is empty (0 bytes): not a checkpoint (an interrupted copy?)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except MemoryError:
            raise
        except Exception as exc:  # EOFError, UnpicklingError, RuntimeError (zip), ...: a damaged or foreign file
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(f"{where} cannot be read as a checkpoint (truncated or not a checkpoint): "
                             f"{type(exc).__name__}: {msg[:300]}") from None
        if isinstance(state, dict) and isinstance(state.get("version"), int) and state["version"] < _CHECKPOINT_VERSION:
            raise ValueError(f"{where} was written by an older embedfast (checkpoint format "
                             f"{state['version']}, before the streaming trainer); this version reads format "
                             f"{_CHECKPOINT_VERSION}: train again, or finish the run with the embedfast that wrote it")
        if not isinstance(state, dict) or state.get("version") != _CHECKPOINT_VERSION:
            raise ValueError(f"{where} is not an embedfast Word2Vec checkpoint (version {_CHECKPOINT_VERSION})")
        return cls._from_state(state, where)

    @classmethod
    def _from_state(cls, state: dict, where: str) -> "Word2Vec":
        def bad(field: str, msg: str):
            raise ValueError(f"{where}: field {field!r} {msg}")

        def get(field: str, types, allow_none: bool = False):
            if field not in state:
                bad(field, "is missing")
            v = state[field]
            if v is None and allow_none:
                return v
            if not isinstance(v, types) or isinstance(v, bool) and bool not in (types if isinstance(types, tuple)
                                                                                 else (types,)):
                bad(field, f"has type {type(v).__name__}")
            return v

        def tensor(field: str, dtype: torch.dtype, dims: int) -> torch.Tensor:
            t = get(field, torch.Tensor)
            if t.dtype != dtype or t.dim() != dims or t.layout != torch.strided:
                bad(field, f"must be a {dims}-D {dtype} tensor, got {t.dim()}-D {t.dtype}")
            return t.contiguous()

        p = get("params", dict)
        names = ("dim", "window", "negative", "sample", "min_count", "max_vocab", "epochs", "alpha", "min_alpha",
                 "ns_exponent", "seed", "max_sentence_length", "chunk_words", "shared_negatives", "exact_sigmoid")
        missing = [k for k in names if k not in p]
        if missing:
            bad("params", f"lacks {missing}")
        try:
            self = cls(**{k: p[k] for k in names}, threads=get("threads", int, allow_none=True))
        except ValueError as exc:
            bad("params", f"is out of range: {exc}")
        word_bytes = tensor("word_bytes", torch.uint8, 1)
        word_offsets = tensor("word_offsets", torch.int64, 1)
        n = word_offsets.numel() - 1
        if n < 1:
            bad("word_offsets", f"must have at least 2 entries, got {n + 1}")
        if int(word_offsets[0]) != 0 or int(word_offsets[-1]) != word_bytes.numel():
            bad("word_offsets", f"must start at 0 and end at len(word_bytes)={word_bytes.numel()}, got "
                f"{int(word_offsets[0])} ... {int(word_offsets[-1])}")
        if n > 1 and not bool((word_offsets[1:] > word_offsets[:-1]).all()):
            i = int((word_offsets[1:] <= word_offsets[:-1]).nonzero()[0])
            bad("word_offsets", f"must be strictly increasing (no empty word), but [{i + 1}] = "
                f"{int(word_offsets[i + 1])} <= [{i}] = {int(word_offsets[i])}")
        if n > _MAX_VOCAB:
            bad("word_offsets", f"holds {n} words, more than {_MAX_VOCAB}")
        if bool(torch.isin(word_bytes, torch.tensor([9, 10, 11, 12, 13, 32], dtype=torch.uint8)).any()):
            bad("word_bytes", "holds whitespace (words are whitespace-separated tokens)")
        words, _ = decode_words(word_bytes, word_offsets)
        if len(set(words)) != n:
            bad("word_bytes", "holds a word twice")
        stored = state.get("words")
        if stored is not None and (not isinstance(stored, (list, tuple)) or len(stored) != n
                                   or any(not isinstance(x, str) for x in stored) or list(stored) != words):
            bad("words", "does not match word_bytes / word_offsets")
        counts = tensor("counts", torch.int64, 1)
        if counts.numel() != n:
            bad("counts", f"has {counts.numel()} entries for {n} words")
        if not bool((counts >= 1).all()):
            bad("counts", f"must be >= 1, got {int(counts.min())}")
        dim = self.params.dim
        w = {}
        for field in ("w_in", "w_out"):
            t = tensor(field, torch.float32, 2)
            if tuple(t.shape) != (n, dim):
                bad(field, f"has shape {tuple(t.shape)}, expected ({n}, {dim}) (words x dim)")
            if not bool(torch.isfinite(t).all()):
                bad(field, "holds NaN or inf (a diverged run)")
            w[field] = t
        if w["w_in"].untyped_storage().data_ptr() == w["w_out"].untyped_storage().data_ptr():
            w["w_out"] = w["w_out"].clone()
        fp = get("fingerprint", (tuple, list), allow_none=True)
        if fp is not None and (len(fp) != 4 or any(isinstance(x, bool) or not isinstance(x, int) or x < 0
                                                    for x in fp)):
            bad("fingerprint", f"must be 4 ints >= 0, got {fp!r}")
        n_chunks = get("chunks_per_epoch", int, allow_none=True)
        if n_chunks is not None and n_chunks < 1:
            bad("chunks_per_epoch", f"must be >= 1, got {n_chunks}")
        pos = get("position", dict)
        keys = ("epoch", "chunk_in_epoch", "words_done")
        if set(pos) != set(keys) or any(isinstance(pos[k], bool) or not isinstance(pos[k], int) for k in keys):
            bad("position", f"must hold the ints {keys}, got {pos!r}")
        epochs = self.params.epochs
        if not 0 <= pos["epoch"] <= epochs:
            bad("position", f"epoch {pos['epoch']} is outside [0, {epochs}]")
        limit = n_chunks if n_chunks is not None else None
        if pos["chunk_in_epoch"] < 0 or (limit is not None and pos["chunk_in_epoch"] >= limit) or \
                (pos["epoch"] == epochs and pos["chunk_in_epoch"] != 0):
            bad("position", f"chunk_in_epoch {pos['chunk_in_epoch']} is outside the run ({limit} chunks per epoch)")
        most = epochs * fp[3] if fp is not None else None
        if pos["words_done"] < 0 or (most is not None and pos["words_done"] > most):
            bad("position", f"words_done {pos['words_done']} is outside [0, {most}] (epochs x tokens)")
        if fp is not None:  # every chunk holds at least one token: the words of this epoch bound its chunks
            in_epoch = pos["words_done"] - pos["epoch"] * fp[3]
            if in_epoch < 0 or pos["chunk_in_epoch"] > in_epoch:
                bad("position", f"chunk_in_epoch {pos['chunk_in_epoch']} / words_done {pos['words_done']} do not "
                    f"fit epoch {pos['epoch']} of a corpus of {fp[3]} tokens")
        history = get("loss_history", list)
        try:
            history = [(int(a), float(b)) for a, b in history]
        except (TypeError, ValueError, OverflowError):
            bad("loss_history", "must be a list of (words, loss) pairs")
        seconds = get("train_seconds", (int, float))
        if not math.isfinite(seconds) or seconds < 0:
            bad("train_seconds", f"must be a finite number >= 0, got {seconds!r}")
        stats = {}
        for field in ("vocab_stats", "corpus_stats"):
            d = get(field, dict)
            if any(not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)) for k, v in d.items()):
                bad(field, "must map names to numbers")
            stats[field] = dict(d)
        self.words = words
        self._word_bytes, self._word_offsets = word_bytes, word_offsets
        self.counts, self.w_in, self.w_out = counts, w["w_in"], w["w_out"]
        self._pos = dict(pos)
        self.loss_history = history
        self.train_seconds = float(seconds)
        self.vocab_stats, self.corpus_stats = stats["vocab_stats"], stats["corpus_stats"]
        self._expect_fingerprint = None if fp is None else tuple(fp)
        self._n_chunks = n_chunks
        return self
