"""Checkpoints of the word2vec trainer: everything needed to resume a run exactly (weights, vocabulary,
position, corpus fingerprint; the RNG positions are implied by the position).

Format (``torch.save`` of a dict, read with ``weights_only=True``): ``version`` 2, ``params`` (the fields of
``Params``, plus ``init_scale`` and ``backend``: checkpoints without them load with ``init_scale=0.5`` and
``backend="auto"``, the defaults they were trained with unless set otherwise; ``sg`` and ``hs`` since CBOW and
hierarchical softmax: checkpoints without them are skip-gram with negative sampling, ``sg=1``, ``hs=0``; ``minn``,
``maxn``, ``buckets`` since sub-words: without them plain word2vec), ``threads``, ``words``, ``word_bytes`` /
``word_offsets``, ``counts``, ``w_in`` / ``w_out``, ``w_ngram`` (a sub-word model's n-gram rows, else None or
absent), ``position``, ``loss_history``, ``train_seconds``, ``vocab_stats``, ``corpus_stats``, ``fingerprint``,
``chunks_per_epoch``. Saves are atomic; loads check every field before anything reaches the ops.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict
from typing import Optional

import torch

from .._hugepages import advise_huge_pages
from .._io import atomic_write, check_input_file, check_output_path
from .._vocab import decode_words
from .params import LATER_PARAMS, MAX_THREADS, MAX_VOCAB, PARAM_NAMES
from .subword import check_ngram_table

__all__ = ["CHECKPOINT_VERSION", "save", "load", "from_state"]

CHECKPOINT_VERSION = 2
#: init_scale of a checkpoint written before it was recorded (the trainer's default then and now).
DEFAULT_INIT_SCALE = 0.5


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


def save(w2v, path: str) -> None:
    """``Word2Vec.save_checkpoint``: write ``w2v``'s state to ``path`` atomically (see there)."""
    if w2v.w_in is None:
        raise ValueError("Word2Vec.save_checkpoint: nothing to save (no vocabulary built)")
    if w2v._diverged is not None:
        raise ValueError(f"Word2Vec.save_checkpoint: not saved, the weights are not finite: {w2v._diverged}")
    path = check_output_path(path, what="checkpoint")
    corpus = w2v._corpus
    state = dict(
        version=CHECKPOINT_VERSION, params=dict(asdict(w2v.params), init_scale=w2v.init_scale, backend=w2v.backend),
        threads=w2v.threads, words=w2v.words, word_bytes=corpus.word_bytes, word_offsets=corpus.word_offsets,
        counts=w2v.counts, w_in=w2v.w_in, w_out=w2v.w_out, w_ngram=w2v.w_ngram, position=dict(w2v._pos), loss_history=w2v.loss_history,
        train_seconds=w2v.train_seconds, vocab_stats=w2v.vocab_stats, corpus_stats=corpus.stats,
        fingerprint=corpus.expect_fingerprint if corpus.source is None else corpus.source.fingerprint,
        chunks_per_epoch=corpus.n_chunks,
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



def load(cls, path: str):
    """``Word2Vec.load_checkpoint``: read and check a checkpoint, return a ``cls`` (Word2Vec) ready to resume."""
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
    if isinstance(state, dict) and isinstance(state.get("version"), int) and state["version"] < CHECKPOINT_VERSION:
        raise ValueError(f"{where} was written by an older embedfast (checkpoint format "
                         f"{state['version']}, before the streaming trainer); this version reads format "
                         f"{CHECKPOINT_VERSION}: train again, or finish the run with the embedfast that wrote it")
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{where} is not an embedfast Word2Vec checkpoint (version {CHECKPOINT_VERSION})")
    return from_state(cls, state, where)


def from_state(cls, state: dict, where: str):
    """A ``cls`` (Word2Vec) from a checkpoint's dict; every field is checked (ValueError naming ``where`` and it)."""
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
    names = PARAM_NAMES
    missing = [k for k in names if k not in p and k not in LATER_PARAMS]
    if missing:
        bad("params", f"lacks {missing}")
    try:
        self = cls(**{k: p.get(k, LATER_PARAMS.get(k)) for k in names}, threads=get("threads", int, allow_none=True),
                   init_scale=p.get("init_scale", DEFAULT_INIT_SCALE), backend=p.get("backend", "auto"))
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
    if n > MAX_VOCAB:
        bad("word_offsets", f"holds {n} words, more than {MAX_VOCAB}")
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
    w_ngram = check_ngram_table(state.get("w_ngram"), self.params, bad)
    if w_ngram is not None and any(w_ngram.untyped_storage().data_ptr() == t.untyped_storage().data_ptr()
                                   for t in w.values()):
        w_ngram = w_ngram.clone()
    fp = get("fingerprint", (tuple, list), allow_none=True)
    if fp is not None and (len(fp) != 4 or any(isinstance(x, bool) or not isinstance(x, int) or x < 0
                                                for x in fp)):
        bad("fingerprint", f"must be 4 ints >= 0, got {fp!r}")
    n_chunks = get("chunks_per_epoch", int, allow_none=True)
    if n_chunks is not None and n_chunks < 1:
        bad("chunks_per_epoch", f"must be >= 1, got {n_chunks}")
    pos = dict(get("position", dict))
    keys = ("epoch", "chunk_in_epoch", "words_done")
    pos.setdefault("ranges", 1)  # checkpoints before the ranged order (session 15) trained in text order
    if set(pos) != set(keys) | {"ranges"} or any(isinstance(pos[k], bool) or not isinstance(pos[k], int)
                                                  for k in (*keys, "ranges")):
        bad("position", f"must hold the ints {keys} (and 'ranges'), got {pos!r}")
    if not 1 <= pos["ranges"] <= MAX_THREADS:
        bad("position", f"ranges {pos['ranges']} is outside [1, {MAX_THREADS}]")
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
    corpus = self._corpus
    corpus.word_bytes, corpus.word_offsets = word_bytes, word_offsets
    self.counts, self.w_in, self.w_out, self.w_ngram = counts, w["w_in"], w["w_out"], w_ngram
    for t in (self.w_in, self.w_out) + ((w_ngram,) if w_ngram is not None else ()):  # as the trainer's own tables (Word2Vec.build_vocab): random rows, huge pages
        advise_huge_pages(t)
    self._pos = dict(pos)
    self.loss_history = history
    self.train_seconds = float(seconds)
    self.vocab_stats, corpus.stats = stats["vocab_stats"], stats["corpus_stats"]
    corpus.expect_fingerprint = None if fp is None else tuple(fp)
    corpus.n_chunks, corpus.cut_ranges = n_chunks, pos["ranges"]
    return self
