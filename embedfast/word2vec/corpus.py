"""The training corpus of word2vec: text in (a file, gzip, token lists), encoded blocks, spill files, chunks.

A plain-text corpus file is streamed: each epoch encodes it block by block (``corpus_encode`` with a byte range of
whole lines, ``Word2Vec.stream_bytes`` per block) and trains each block's chunks, so memory stays flat however large
the corpus is; a small corpus (at most ``Word2Vec.cache_tokens`` tokens) keeps its encoded blocks for the next
epochs, a larger one may spill them to an unlinked temporary file (:class:`Spill`). Chunks (``chunk_words``) are cut
at the same sentences whatever the block size (:func:`chunk_bounds`), so the result does not depend on it. Iterables
of token lists and gzip files are encoded in memory in one block.

Words are the corpus' bytes: bytes that are not UTF-8 are kept as surrogate escapes (``embedfast._io``'s word
rule), so distinct byte strings stay distinct words and are saved back byte for byte (``Word2Vec.vocab_stats
["non_utf8_words"]`` counts them); token lists holding such escaped words encode back to the same bytes.
"""
from __future__ import annotations

import gzip
import os
import tempfile
import zlib
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence, Union

import torch

from .._io import WORD_ERRORS, check_input_file, encode_word
from . import ops
from .chunks import RangedEpoch, chunk_bounds, gather_chunk

__all__ = ["Corpus", "CorpusStream", "Source", "Spill", "Text", "open_text", "chunk_bounds", "keep_probabilities"]

#: What the trainer takes as a corpus: a file path, or an iterable of token lists.
Corpus = Union[str, "os.PathLike[str]", Iterable[Sequence[str]]]

_WHITESPACE = (" ", "\t", "\n", "\r", "\v", "\f")


def is_path(corpus) -> bool:
    """True when ``corpus`` names a file (str, bytes or os.PathLike) rather than holding token lists."""
    return isinstance(corpus, (str, bytes, os.PathLike))


def sentences_to_bytes(corpus: Iterable[Sequence[str]]) -> bytes:
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
class Text:
    """A corpus opened for the ops: a file ``path`` to read, or its bytes in ``data``; ``name`` for messages."""
    path: Optional[str]
    data: Optional[torch.Tensor]
    name: str


def open_text(corpus: Corpus) -> Text:
    """A file path (gzip decompressed in memory) or an iterable of token lists -> the op's text arguments."""
    if is_path(corpus):
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
            return Text(None, torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else
                         torch.empty(0, dtype=torch.uint8), path)
        return Text(path, None, path)
    if isinstance(corpus, torch.Tensor) or not isinstance(corpus, Iterable):
        raise TypeError(f"corpus must be a file path or an iterable of token lists, got a "
                        f"{type(corpus).__name__}")
    raw = sentences_to_bytes(corpus)
    return Text(None, torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else
                 torch.empty(0, dtype=torch.uint8), "<iterable corpus>")


@dataclass
class Source:
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


class Spill:
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


def fingerprint(stats: dict) -> tuple:
    """(bytes, lines, tokens, encoded tokens) of a text: how a resumed run recognises its corpus."""
    return (int(stats["bytes"]), int(stats["lines"]), int(stats["tokens"]), int(stats["encoded_tokens"]))


def keep_probabilities(counts: torch.Tensor, sample: float) -> torch.Tensor:
    """word2vec's sub-sampling keep probability per word (float64, clipped to 1).

    With t = sample * total_count: keep(w) = (sqrt(c_w / t) + 1) * t / c_w. sample = 0 keeps every word.
    """
    c = counts.to(torch.float64)
    if sample <= 0:
        return torch.ones_like(c)
    t = sample * float(c.sum())
    return ((c / t).sqrt() + 1.0).mul(t).div(c).clamp(max=1.0)


class VocabTables:
    """The sampling tables of a vocabulary, each built on first use: ``sampling(device)`` = (keep probabilities,
    alias thresholds, alias table) and ``huffman()`` = word2vec's Huffman tree (offsets, points, codes)."""

    def __init__(self, counts: torch.Tensor, sample: float, ns_exponent: float, huffman: str = "gensim") -> None:
        self.counts, self.sample, self.ns_exponent, self.huffman_ties = counts, sample, ns_exponent, huffman
        self._sampling = self._huffman = None

    def sampling(self, device: "torch.device | None" = None) -> tuple:
        if self._sampling is None:
            self._sampling = (keep_probabilities(self.counts, self.sample),
                              *ops.sgns_unigram_table(self.counts, self.ns_exponent))
        if device is None or torch.device(device).type == "cpu":
            return self._sampling
        return tuple(t.to(device) for t in self._sampling)

    def huffman(self) -> tuple:
        if self._huffman is None:
            self._huffman = ops.word2vec_huffman(self.counts, self.huffman_ties)
        return self._huffman


class CorpusStream:
    """The training corpus of one ``Word2Vec`` and the reader of its chunks, epoch after epoch.

    ``owner`` is the trainer; its public settings are read when needed (``params``, ``num_threads``,
    ``stream_bytes``, ``cache_tokens``, ``spill``, ``spill_dir``). ``word_bytes`` / ``word_offsets`` are the
    vocabulary the text is encoded with; ``stats`` the ``corpus_encode`` stats of the last pass
    (``Word2Vec.corpus_stats``); ``n_chunks`` the chunks per epoch once known; ``expect_fingerprint`` the
    fingerprint of the corpus a checkpoint was trained on.
    """

    def __init__(self, owner) -> None:
        self.owner = owner
        self.word_bytes: Optional[torch.Tensor] = None
        self.word_offsets: Optional[torch.Tensor] = None
        self.stats: dict = {}
        self.source: Optional[Source] = None
        self.expect_fingerprint = None
        self.n_chunks: Optional[int] = None
        self.cut_ranges = 1  # the ranges of the cut n_chunks counts (1: text order; see ranged())
        self.cache = None  # encoded blocks of a streamed corpus kept for the next epochs
        self.spill: Optional[Spill] = None  # or written to a temporary file
        self.live = None  # [epoch, chunk, generator] to go on without re-reading
        self.full = None  # the whole corpus encoded, built on demand (see whole())
        self._ranged = RangedEpoch()  # the cut of ranged()

    def start(self, word_bytes: torch.Tensor, word_offsets: torch.Tensor, text: Text, corpus: Corpus,
              vocab_stats: dict) -> None:
        """Take the vocabulary just built from ``corpus`` (opened as ``text``) and make it the training corpus."""
        self.word_bytes, self.word_offsets = word_bytes, word_offsets
        if text.path is not None:  # a plain file: streamed; its totals are those of the vocabulary pass
            fp = tuple(int(vocab_stats[k]) for k in ("bytes", "lines", "tokens", "vocab_tokens"))
            self.source = Source(key=text.path, name=text.name, tokens=fp[3], fingerprint=fp, path=text.path,
                                 size=fp[0])
        else:  # an iterable may be one-shot (and gzip is in memory already): encode it now
            self.source = self.encode(text, key=corpus if not is_path(corpus) else os.fsdecode(corpus))

    def set_source(self, src: Optional[Source]) -> None:
        """Train on ``src`` from now on (drops what was kept of the previous corpus)."""
        if self.spill is not None:
            self.spill.close()
        self.source, self.cache, self.spill, self.live, self.full = src, None, None, None, None
        self._ranged = RangedEpoch()

    # -- encoding ------------------------------------------------------------------------------------------
    def encode_block(self, path: Optional[str], data: Optional[torch.Tensor], start: int = 0, max_bytes: int = -1):
        """``corpus_encode`` of a text (or of one block of whole lines of a file) with this vocabulary."""
        return ops.corpus_encode(path, data=data, word_bytes=self.word_bytes, word_offsets=self.word_offsets,
                                 max_sentence_length=self.owner.params.max_sentence_length,
                                 num_threads=self.owner.num_threads, start=start, max_bytes=max_bytes)

    def encode(self, text: Text, key) -> Source:
        """Encode a whole text in memory (iterables, gzip files)."""
        ids, offsets, st = self.encode_block(text.path, text.data)
        stats = dict(zip(ops.ENCODE_STATS, st.tolist()))
        self.stats = stats
        if ids.numel() == 0:
            raise ValueError(f"Word2Vec.train: corpus {text.name!r} has no word of the vocabulary "
                             f"({stats['tokens']} tokens)")
        return Source(key=key, name=text.name, tokens=int(ids.numel()), fingerprint=fingerprint(stats), ids=ids,
                      offsets=offsets, stats=stats)

    def file_source(self, text: Text) -> Source:
        """A plain file given to train() that is not the vocabulary's: one counting pass for its totals."""
        total = None
        for _, _, st in self.file_blocks(text.path, os.path.getsize(text.path)):
            total = st if total is None else total + st
        stats = dict(zip(ops.ENCODE_STATS, total.tolist())) if total is not None else \
            dict.fromkeys(ops.ENCODE_STATS, 0)
        if stats["encoded_tokens"] == 0:
            raise ValueError(f"Word2Vec.train: corpus {text.name!r} has no word of the vocabulary "
                             f"({stats['tokens']} tokens)")
        return Source(key=text.path, name=text.name, tokens=int(stats["encoded_tokens"]),
                      fingerprint=fingerprint(stats), path=text.path, size=int(stats["bytes"]))

    def use(self, corpus: Corpus) -> None:
        """Train on ``corpus`` from now on (nothing changes when it is the current one); a checkpoint's corpus
        must have the fingerprint the checkpoint recorded."""
        src = self.source
        if src is not None and (corpus is src.key or (is_path(corpus) and os.fsdecode(corpus) == src.key)):
            return
        text = open_text(corpus)
        key = corpus if not is_path(corpus) else os.fsdecode(corpus)
        new = self.encode(text, key) if text.path is None else self.file_source(text)
        expect = self.expect_fingerprint
        if expect is not None and tuple(expect) != new.fingerprint:
            raise ValueError(f"Word2Vec.train: corpus {text.name!r} is not the corpus this checkpoint was "
                             f"trained on (fingerprint {new.fingerprint} != {tuple(expect)})")
        if src is not None and src.fingerprint != new.fingerprint:
            self.n_chunks = None  # another corpus: other chunks
        self.set_source(new)

    # -- reading -------------------------------------------------------------------------------------------
    def file_blocks(self, path: str, size: int):
        """Encoded blocks (ids, offsets, stats) of a plain file, in text order."""
        start, step = 0, self.owner.stream_bytes
        while start < size:
            ids, offsets, st = self.encode_block(path, None, start=start, max_bytes=step)
            n = int(st[0])
            if n <= 0:  # cannot happen with start < size; guards against an endless loop
                raise RuntimeError(f"Word2Vec: corpus_encode read no bytes at offset {start} of {path!r}")
            start += n
            yield ids, offsets, st

    def blocks(self, more: bool):
        """Encoded blocks (ids, offsets, stats or None) of one epoch; ``more``: another epoch will follow (then
        a streamed corpus is kept in memory or spilled, as the owner's settings say)."""
        src, owner = self.source, self.owner
        if src.ids is not None:
            yield src.ids, src.offsets, None
            return
        if self.cache is not None:
            yield from self.cache
            return
        if self.spill is not None and self.spill.complete:
            yield from self.spill.blocks()
            return
        keep = [] if (more and src.tokens <= owner.cache_tokens) else None
        spill = None
        if self.spill is not None:  # an incomplete one (a pass given up half-way): start again
            self.spill.close()
            self.spill = None
        if more and keep is None and owner.spill:
            try:
                spill = Spill(owner.spill_dir)
            except OSError:
                spill = None  # no temporary file: re-encode each epoch
        for block in self.file_blocks(src.path, src.size):
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
            self.cache = keep
        if spill is not None:
            spill.complete = True
            self.spill = spill

    def epoch_chunks(self, more: bool = False):
        """Chunks (ids, sentence_offsets, last) of one epoch, cut exactly as ``chunk_bounds`` cuts the whole
        encoded corpus: the sentences of the open chunk at the end of a block are carried into the next block."""
        src = self.source
        C = self.owner.params.chunk_words
        carry = None  # (ids, offsets from 0, tokens of the epoch before it)
        done = 0  # tokens of the epoch before the current block
        k = 0
        total_stats = None
        for ids, offsets, st in self.blocks(more):
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
            b = chunk_bounds(offsets + g0, C)
            for a, c in zip(b[:-2], b[1:-1]):  # every chunk but the last may still grow in the next block
                yield ids, offsets[a:c + 1], False
                k += 1
            last = b[-2]
            t0 = int(offsets[last])
            carry = (ids[t0:].clone(), offsets[last:] - t0, g0 + t0)
        if total_stats is not None:
            self.stats = dict(zip(ops.ENCODE_STATS, total_stats.tolist()))
        if done != src.tokens:
            raise ValueError(f"Word2Vec.train: corpus {src.name!r} has {done} vocabulary tokens in this pass, "
                             f"{src.tokens} expected: the file changed during training")
        if carry is not None:
            self.n_chunks, self.cut_ranges = k + 1, 1
            yield carry[0], carry[1], True

    def count_chunks(self, ranges: int = 1) -> None:
        """Learn ``n_chunks`` of the epoch's cut for ``ranges`` threads (a run resumed after the first epoch
        without it, or cut for another number of threads): cut the epoch, or read it in text order."""
        if self.ranged(ranges, force=True) is not None:
            return
        for _ in self.epoch_chunks():
            pass
        self.live = None

    def can_range(self) -> bool:
        """Whether the epoch can be trained in ranges (``ranged``): the encoded corpus is in memory, or a file of
        at most ``cache_tokens`` tokens is (it is then encoded whole once)."""
        src = self.source
        return src is not None and (src.ids is not None or src.tokens <= self.owner.cache_tokens)

    def ranged(self, ranges: int, force: bool = False):
        """(ids, offsets, cuts) of the epoch cut by ``ranged_cuts`` for ``ranges`` > 1 threads, or None when the
        epoch is read in text order (one range; a streamed file larger than ``cache_tokens``, unless ``force``:
        the epoch in progress of a checkpoint was cut in ranges)."""
        if ranges <= 1 or not (force or self.can_range()):
            return None
        cut = self._ranged.get(self.source, self.whole, ranges, self.owner.params.chunk_words)
        self.n_chunks, self.cut_ranges = len(cut[2]), ranges
        return cut

    def next_chunk(self, epoch: int, k: int, more: bool, ranges: int = 1):
        """(ids, offsets, last) of chunk ``k`` of ``epoch``: the epoch cut in ``ranges`` (``ranged``), or read
        in text order (re-reading the epoch up to chunk k when needed)."""
        cut = self.ranged(ranges, force=True) if ranges > 1 else None
        if cut is not None:
            ids, offsets, cuts = cut
            if k >= len(cuts):
                raise ValueError(f"Word2Vec.train: the corpus has {len(cuts)} chunks in an epoch cut for {ranges} "
                                 f"threads, fewer than {k + 1}; it is not the corpus this run was trained on")
            return (*gather_chunk(ids, offsets, cuts[k]), k == len(cuts) - 1)
        live = self.live
        if live is None or live[0] != epoch or live[1] != k:
            gen = self.epoch_chunks(more)
            for _ in range(k):  # resume inside an epoch: encode (without training) the chunks already trained
                if next(gen, None) is None:
                    raise ValueError(f"Word2Vec.train: the corpus has fewer than {k + 1} chunks in an epoch; it is "
                                     "not the corpus this run was trained on")
            live = self.live = [epoch, k, gen]
        try:
            item = next(live[2], None)
        except BaseException:  # an interrupt or error inside the reader ends the generator: re-read next time
            self.live = None
            raise
        if item is None:
            raise ValueError(f"Word2Vec.train: the corpus ended before chunk {k} of the epoch; it is not the corpus "
                             "this run was trained on")
        live[1] += 1
        if item[2]:  # the epoch's last chunk: the next epoch reads the corpus again
            self.live = None
        return item

    def whole(self):
        """The whole corpus encoded in memory: (ids, sentence_offsets, chunk bounds, fingerprint), or None when
        there is no corpus yet."""
        src = self.source
        if src is None:
            return None
        if self.full is None or self.full[0] is not src:
            if src.ids is not None:
                ids, offsets = src.ids, src.offsets
            else:
                ids, offsets, st = self.encode_block(src.path, None)
                self.stats = dict(zip(ops.ENCODE_STATS, st.tolist()))
            self.full = (src, (ids, offsets, chunk_bounds(offsets, self.owner.params.chunk_words), src.fingerprint))
        return self.full[1]
