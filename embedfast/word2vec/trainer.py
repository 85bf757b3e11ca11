"""The word2vec trainer (``Word2Vec``): skip-gram or CBOW, negative sampling or hierarchical softmax, on
embedfast's fused ops.

The corpus pipeline runs in C++ (``corpus_build_vocab`` / ``corpus_encode``: pread, parallel counting, int32 ids;
``embedfast.word2vec.corpus`` streams it) and training is one fused op per chunk of sentences (``sgns_train``:
sub-sampling, dynamic window, negative sampling, sigmoid, gradient and in-place update, Hogwild across threads).
``embedfast.word2vec.loop`` runs the chunks; its step ``train_chunk`` is shared with ``distributed``.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Optional

import torch

from .._hugepages import advise_huge_pages
from .._io import check_output_path
from .._vocab import decode_words
from . import checkpoint as _checkpoint
from . import loop as _loop
from . import ops
from .corpus import Corpus, CorpusStream, VocabTables, is_path, open_text
from .params import (DEFAULT_ALPHA, DEFAULT_DIM, DEFAULT_NEGATIVE, MAX_THREADS, check_backend, check_device,
                     check_init_scale, check_threads, make_params, resolve_aliases, resolve_model)
from .results import Results
from .subword import NgramTables, initial_ngrams

__all__ = ["Word2Vec"]


def _physical_memory() -> float:
    """Bytes of RAM of this machine (inf when unknown)."""
    try:
        return float(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return math.inf


def _vocab_stats(st: torch.Tensor, name: str, min_count: int) -> dict:
    """``corpus_build_vocab``'s stats as a dict; a ValueError when the corpus gives no vocabulary."""
    stats = dict(zip(ops.VOCAB_STATS, st.tolist()))
    if stats["tokens"] == 0:
        raise ValueError(f"Word2Vec.build_vocab: corpus {name!r} is empty ({stats['lines']} lines, "
                         f"{stats['bytes']} bytes, no tokens)")
    if stats["vocab_words"] == 0:
        raise ValueError(f"Word2Vec.build_vocab: all {stats['unique_words']} distinct words of {name!r} "
                         f"occur fewer than min_count={min_count} times; lower min_count")
    return stats


def _initial_weights(p, n: int, init_scale: float, device: torch.device):
    """(w_in, w_out, w_ngram) of ``n`` words: w_in uniform in +-init_scale/dim (the seed's generator), w_out
    zeros, on ``device`` (the same initial values on every device); w_ngram the n-gram rows of a sub-word model
    (``embedfast.word2vec.subword.initial_ngrams``), else None; a MemoryError before allocating what cannot fit."""
    need = 2 * n * p.dim * 4
    too_big = (f"Word2Vec.build_vocab: the tables of {n:,} words x dim {p.dim} need {need / 2**30:.1f} GiB "
               "(two float32 matrices), {}: lower dim, raise min_count or set max_vocab")
    if need > _physical_memory():  # would pass the allocator (overcommit) and end in the OOM killer
        raise MemoryError(too_big.format("more than this machine's memory"))
    gen = torch.Generator().manual_seed(p.seed)
    try:
        w_in = torch.empty(n, p.dim).uniform_(-init_scale / p.dim, init_scale / p.dim, generator=gen)
        w_out = torch.zeros(n, p.dim)
    except (RuntimeError, MemoryError) as exc:  # torch's allocator reports a failed allocation as RuntimeError
        if isinstance(exc, RuntimeError) and "alloc" not in str(exc):
            raise
        raise MemoryError(too_big.format("which could not be allocated")) from None
    if device.type == "cpu":  # every pair reads and writes random rows of both: 2 MiB pages spare TLB misses, and
        advise_huge_pages(w_in)  # the speed no longer depends on where the allocator happened to put them
        advise_huge_pages(w_out)
    w_ngram = initial_ngrams(p, init_scale, _physical_memory() - need) if p.minn else None
    if w_ngram is not None:
        advise_huge_pages(w_ngram)
    return w_in.to(device), w_out.to(device), (w_ngram.to(device) if w_ngram is not None else None)


def _position_text(w2v, epoch: int, chunk: int, total: int, unit: str) -> str:
    """Where a run is, for messages: epoch, chunk (of how many) and words done."""
    n = w2v._corpus.n_chunks
    return (f"epoch {epoch + 1} of {w2v.params.epochs}, {unit} {chunk}" + (f" of {n}" if n else "")
            + f", {w2v.position['words_done']:,} of {total:,} words done")


def _divergence_message(who: str, where: str, alpha: float, detail: str, checkpoint: Optional[str]) -> str:
    ck = f"; the checkpoint {checkpoint!r} keeps the last good state" if checkpoint else ""
    return (f"{who}: training diverged in {where} at learning rate alpha={alpha:g} ({detail}): the weights are no "
            f"longer finite. Train again with a lower alpha (e.g. {alpha / 4:g}; word2vec's default is 0.025){ck}")


def _check_train_args(max_words, checkpoint, checkpoint_every, corpus, source) -> Optional[str]:
    """Check train()'s arguments; returns the checked checkpoint path."""
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
        inputs = [os.fsdecode(c) for c in (corpus, None if source is None else source.path)
                  if c is not None and is_path(c)]
        checkpoint = check_output_path(checkpoint, inputs=inputs, what="checkpoint")
    return checkpoint


def _training_stream(w2v, corpus) -> CorpusStream:
    """The corpus stream ``train`` reads: the vocabulary built first when there is none, ``corpus`` (when given)
    checked against the one the vocabulary came from; the streaming settings checked."""
    if w2v.w_in is None:
        if corpus is None:
            raise ValueError("Word2Vec.train: no corpus given and no vocabulary built")
        w2v.build_vocab(corpus)
    _check_stream_settings(w2v)
    stream = w2v._corpus
    if corpus is not None:
        stream.use(corpus)
    elif stream.source is None:
        raise ValueError("Word2Vec.train: give the corpus again (the vocabulary came from a checkpoint)")
    return stream


def _check_stream_settings(w2v) -> None:
    for name, low in (("stream_bytes", 1), ("cache_tokens", 0)):
        v = getattr(w2v, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ValueError(f"Word2Vec.train: {name} must be an int >= {low}, got {v!r}")


class Word2Vec(Results):
    """Train word2vec (skip-gram or CBOW, negative sampling or hierarchical softmax) with embedfast's fused kernels.

    Example::

        w2v = embedfast.Word2Vec(dim=100, window=5, epochs=5, threads=2)
        w2v.train("corpus.txt")          # builds the vocabulary first when needed
        w2v.vectors.most_similar("king")
        w2v.vectors.save("vectors.txt", format="word2vec")

    Args:
        dim: vector size. window: largest distance of a context word (shrunk at random per center,
        as word2vec). negative: negative samples per pair (per center for CBOW; 0 with ``hs=1``, where the
        default turns into 0). sample: sub-sampling threshold (0 disables).
        min_count / max_vocab: vocabulary filter (max_vocab keeps the most frequent words; None: all).
        epochs: passes over the corpus. alpha / min_alpha: learning rate, decayed linearly (alpha's default:
        0.025 for skip-gram, 0.05 for CBOW, word2vec.c's defaults). lr_schedule: how it decays with T > 1
        threads. "per-thread" (default): as gensim's ``corpus_file`` workers, each thread's rate falls with its
        own share of an epoch, so in epoch e (from 0) of E it goes from alpha - (alpha - min_alpha) * e / E down
        by 1/T of that epoch's share, and the run ends above min_alpha. "global": word2vec.c's, the rate falls
        with the words of all threads together, to min_alpha at the end of the run. The two are the same with
        one thread and on a GPU (one stream of chunks); the README's word2vec section says why the default
        follows gensim.
        ns_exponent: negatives are drawn from count^ns_exponent. threads: Hogwild workers (None: torch's
        thread count); ``threads=1`` is bit-for-bit reproducible for a given seed. With T > 1 threads on the CPU
        each epoch of a corpus of at most ``cache_tokens`` tokens is cut into T contiguous ranges trained side by
        side (word2vec.c's and gensim's order; a larger streamed file is trained in text order).
        max_sentence_length: longer lines are cut into pieces (counted in ``corpus_stats``).
        chunk_words: tokens per call of the fused op (granularity of progress, checkpoints and RNG streams).
        init_scale: ``w_in`` starts uniform in +-init_scale/dim (``w_out`` at zeros). The default 1.0 is
        gensim 4's initialisation, 0.5 word2vec.c's (the default before issue 14: see the README's word2vec
        section for why it changed; checkpoints that do not record it load with 0.5).
        shared_negatives: HogBatch variant (negatives shared by the contexts of a center, updates as small
        matrix products). exact_sigmoid: exact sigmoid instead of the interpolated table.
        backend / device: where training runs -- ``device`` (default CPU) holds the tables, the encoded corpus
        and the sampling tables during training; ``backend`` "auto" (C++ op on CPU; on a GPU Triton, the CUDA kernel
        only once verified on a GPU), "cpu", "cuda" or "triton" (``embedfast.word2vec.ops.sgns_backend``).
        sg / hs: the model, with gensim's names: ``sg=1`` (default) skip-gram, ``sg=0`` CBOW (the mean of the
        context vectors predicts the center: word2vec's ``-cbow 1``, gensim's ``cbow_mean=1``); ``hs=0`` (default)
        negative sampling, ``hs=1`` hierarchical softmax over word2vec's Huffman tree (``w_out`` then holds the
        tree's inner nodes; negative sampling at the same time is not offered). huffman: how the tree merges nodes
        of equal count: "gensim" (default) in the order of gensim's heap, so that the tree, like the vocabulary's
        order, is gensim's; "word2vec": word2vec.c's two queues (checkpoints written before this argument existed
        load with it: their tree). CBOW and hs run on the CPU op
        and the Triton kernels (no CUDA C++ kernel: ``backend="cuda"`` is refused).
        shared_negatives applies to skip-gram with negative sampling only.
        minn / maxn / buckets: sub-words (fastText's skip-gram, Bojanowski et al. 2017): with ``0 < minn <= maxn``
        a word's input vector is the mean of its own row and the rows of its character n-grams of minn..maxn
        characters, hashed into ``buckets`` rows (``w_ngram``); every row of the bag is trained, so ``vectors``
        gives a vector to any word and ``save(path, format="fasttext-bin")`` writes a fastText ``.bin``.
        ``minn = maxn = 0`` (default): plain word2vec. Skip-gram with negative sampling (CBOW, hs=1:
        NotImplementedError) on the CPU op, or its Triton kernel with ``backend="triton"`` (the only way on a GPU:
        the kernel has not run on one yet, so "auto" refuses); alpha's default is then 0.05 (fastText's).
        vector_size / workers: gensim's names, accepted as aliases of dim / threads (giving both spellings is
        a ValueError).

    Every argument is checked here, before any work (ValueError naming it; the bounds are in
    ``embedfast.word2vec.params``). Words are the corpus' bytes (non-UTF-8 bytes kept as surrogate escapes; see
    ``embedfast.word2vec.corpus``).

    Streaming (attributes, settable per instance; memory and speed, and with one thread never the result):
    ``stream_bytes`` of text encoded per block of a plain file; a corpus of at most ``cache_tokens`` tokens keeps
    its blocks after the first epoch (0: never; with T > 1 threads it is encoded whole and its epochs are cut in
    T ranges, see ``threads``); a larger one, with ``spill``, writes them to an unlinked temporary file (in
    ``spill_dir``) and reads them back in the next epochs (False: re-encode each epoch).

    For drivers of the training loop (``embedfast.word2vec.loop``, ``distributed``): ``num_threads``,
    ``position``, ``diverged``, ``encoded_corpus()``, ``sampling_tables()``, ``set_position()``, ``mark_diverged()``.
    """

    stream_bytes: int = 4 << 20
    cache_tokens: int = 8_000_000
    spill: bool = True
    spill_dir: Optional[str] = None

    def __init__(self, dim: int = DEFAULT_DIM, window: int = 5, negative: int = DEFAULT_NEGATIVE, sample: float = 1e-4,
                 min_count: int = 5, max_vocab: Optional[int] = None, epochs: int = 5, alpha: float = DEFAULT_ALPHA,
                 min_alpha: float = 1e-4, ns_exponent: float = 0.75, threads: Optional[int] = None, seed: int = 0, *,
                 max_sentence_length: int = 10000, chunk_words: int = 200_000, shared_negatives: bool = True,
                 exact_sigmoid: bool = False, backend: str = "auto", device: "torch.device | str | None" = None,
                 init_scale: float = 1.0, vector_size: Optional[int] = None, workers: Optional[int] = None,
                 sg: Optional[int] = None, hs: int = 0, minn: int = 0, maxn: int = 0, buckets: int = 2_000_000,
                 lr_schedule: str = "per-thread", huffman: str = "gensim") -> None:
        dim, threads, sg = resolve_aliases(dim, threads, vector_size, workers, sg)
        hs, negative, alpha = resolve_model(sg, hs, negative, alpha, minn)
        self.params = make_params(
            dim=dim, window=window, negative=negative, sample=sample, min_count=min_count, max_vocab=max_vocab,
            epochs=epochs, alpha=alpha, min_alpha=min_alpha, ns_exponent=ns_exponent, seed=seed,
            max_sentence_length=max_sentence_length, chunk_words=chunk_words, shared_negatives=shared_negatives,
            exact_sigmoid=exact_sigmoid, sg=sg, hs=hs, minn=minn, maxn=maxn, buckets=buckets, lr_schedule=lr_schedule,
            huffman=huffman)
        self.threads = check_threads(threads)
        self.init_scale = check_init_scale(init_scale)
        self.backend = check_backend(backend, sg, hs, self.params.minn)
        self.device = check_device(device)
        if self.params.minn and self.device.type != "cpu" and self.backend != "triton":
            raise NotImplementedError(f"Word2Vec: sub-word skip-gram (minn > 0) on device={device!r} runs only its "
                                      "Triton kernel, which has not run on a GPU yet (embedfast._backend."
                                      "TRITON_UNVERIFIED): pass backend='triton' to use it, or train on the CPU")
        self.words: list[str] = []
        self.counts: Optional[torch.Tensor] = None
        self.w_in: Optional[torch.Tensor] = None
        self.w_out: Optional[torch.Tensor] = None
        self.w_ngram: Optional[torch.Tensor] = None  # the n-gram bucket rows of a sub-word model (minn > 0)
        self.vocab_stats: dict = {}
        self.loss_history: list[tuple[int, float]] = []  # (words_done, mean loss per pair of the chunk)
        self.train_seconds = 0.0
        self._pos = dict(epoch=0, chunk_in_epoch=0, words_done=0, ranges=1)
        self._diverged: Optional[str] = None  # the divergence error once the weights stopped being finite
        self._corpus = CorpusStream(self)
        self._tables: Optional[VocabTables] = None
        self._ngrams: Optional[NgramTables] = None

    @property
    def corpus_stats(self) -> dict:
        """``corpus_encode``'s stats (``embedfast.ops.ENCODE_STATS``) of the training corpus' last full pass."""
        return self._corpus.stats

    @property
    def position(self) -> dict:
        """Where the run is: a copy of {epoch, chunk_in_epoch, words_done, ranges} (ranges: how the epoch in
        progress is cut, ``embedfast.word2vec.loop.order_ranges``)."""
        return dict(self._pos)

    @property
    def diverged(self) -> Optional[str]:
        """The divergence error once training diverged (the model is then unusable), else None."""
        return self._diverged

    @property
    def num_threads(self) -> int:
        """The threads the ops run with (``threads``, or torch's thread count when it is None)."""
        return self.threads if self.threads is not None else min(MAX_THREADS, max(1, torch.get_num_threads()))

    # -- vocabulary ------------------------------------------------------------------------------------
    def build_vocab(self, corpus: Corpus) -> "Word2Vec":
        """Count the corpus' words and build the vocabulary; initialise the weights (word2vec's scheme).
        A path that is not a regular file (a named pipe, a folder) is refused before it is opened; a gzip file
        that cannot be decompressed is a ValueError naming it; tables larger than memory are a MemoryError."""
        p = self.params
        text = open_text(corpus)
        wb, wo, counts, st = ops.corpus_build_vocab(text.path, data=text.data, min_count=p.min_count,
                                                    max_vocab=-1 if p.max_vocab is None else p.max_vocab,
                                                    num_threads=self.num_threads)
        stats = _vocab_stats(st, text.name, p.min_count)
        self.words, stats["non_utf8_words"] = decode_words(wb, wo)
        self.counts, self.vocab_stats = counts, stats
        self.w_in = self.w_out = self.w_ngram = None
        self.w_in, self.w_out, self.w_ngram = _initial_weights(p, len(self.words), self.init_scale, self.device)
        self.loss_history, self.train_seconds, self._diverged, self._tables, self._ngrams = [], 0.0, None, None, None
        self._pos = dict(epoch=0, chunk_in_epoch=0, words_done=0)
        self._corpus = CorpusStream(self)
        self._corpus.start(wb, wo, text, corpus, stats)
        return self

    # -- hooks for drivers of the loop (train, embedfast.word2vec.distributed) ----------------------------
    def encoded_corpus(self):
        """The whole training corpus encoded in memory: (ids, sentence_offsets, chunk bounds, fingerprint), or
        None when there is no corpus yet (``train`` itself streams; ``distributed`` shards this)."""
        return self._corpus.whole()

    def sampling_tables(self, device: "torch.device | None" = None):
        """(keep probabilities, alias thresholds, alias table) of the vocabulary, on ``device`` (default CPU)."""
        return self._vocab_tables().sampling(device)

    def huffman_tables(self):
        """word2vec's Huffman tree of the vocabulary (``ops.word2vec_huffman``: offsets, points, codes), built once."""
        return self._vocab_tables().huffman()

    def ngram_tables(self, device: "torch.device | None" = None) -> NgramTables:
        """The n-gram buckets of every vocabulary word (a sub-word model's; ``subword.NgramTables``), built once
        (moved to ``device`` when given: the training device)."""
        if self._ngrams is None:
            c, p = self._corpus, self.params
            self._ngrams = NgramTables(c.word_bytes, c.word_offsets, p.minn, p.maxn, p.buckets)
        ng = self._ngrams
        if device is not None and ng.offsets.device != torch.device(device):
            ng.offsets, ng.buckets = ng.offsets.to(device), ng.buckets.to(device)
        return ng

    def _vocab_tables(self) -> VocabTables:
        if self._tables is None:
            self._tables = VocabTables(self.counts, self.params.sample, self.params.ns_exponent, self.params.huffman)
        return self._tables

    def set_position(self, epoch: int, chunk_in_epoch: int, words_done: int,
                     chunks_per_epoch: Optional[int] = None, ranges: int = 1) -> None:
        """Record where the run is (what ``done``, checkpoints and a resumed ``train`` go by); ``ranges``: how
        the epoch is cut (``embedfast.word2vec.loop.order_ranges``)."""
        self._pos = dict(epoch=epoch, chunk_in_epoch=chunk_in_epoch, words_done=words_done, ranges=ranges)
        if chunks_per_epoch is not None:
            self._corpus.n_chunks = chunks_per_epoch

    def mark_diverged(self, epoch: int, chunk: int, total: int, checkpoint: Optional[str], detail: str, *,
                      who: str = "Word2Vec.train", unit: str = "chunk") -> None:
        """Mark the model as diverged (its weights are not finite any more) and raise the error that says so."""
        where = _position_text(self, epoch, chunk, total, unit)
        self._diverged = _divergence_message(who, where, self.params.alpha, detail, checkpoint)
        raise ValueError(self._diverged)

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
                raises :class:`~embedfast.word2vec.interrupts.Terminated`). The path is checked before training
                starts. Saves are atomic.

        Interrupts: a Ctrl-C (SIGINT) during a chunk is held back until the chunk's weights and the position
        after it are both recorded, so a checkpoint written on it resumes exactly (``threads=1``: bit for bit).
        Divergence: when the weights stop being finite (too high a learning rate), a ValueError names the epoch,
        the chunk, the words done and ``alpha``; the model is then unusable (``vectors``, ``save`` and
        ``save_checkpoint`` refuse) and the checkpoint file keeps the last good state.
        """
        if self._diverged is not None:
            raise ValueError(self._diverged)
        checkpoint = _check_train_args(max_words, checkpoint, checkpoint_every, corpus, self._corpus.source)
        stream = _training_stream(self, corpus)
        _loop.run(self, stream, progress=progress, max_words=max_words, checkpoint=checkpoint,
                  checkpoint_every=checkpoint_every)
        return self

    # -- checkpoints (embedfast.word2vec.checkpoint) ----------------------------------------------------------
    def save_checkpoint(self, path: str) -> None:
        """Write everything needed to resume (``embedfast.word2vec.checkpoint``), atomically (a unique temporary
        file renamed over ``path``: a failed save or another process saving there leaves a whole checkpoint).
        A model whose training diverged is refused (the file keeps its last good state)."""
        _checkpoint.save(self, path)

    @classmethod
    def load_checkpoint(cls, path: str) -> "Word2Vec":
        """Load a checkpoint; ``train(corpus)`` with the same corpus then finishes the run. Every field is checked
        first (a truncated, foreign or crafted file is a ValueError naming the file and the field); checkpoints
        without ``init_scale`` / ``backend`` load with 0.5 / "auto"."""
        return _checkpoint.load(cls, path)
