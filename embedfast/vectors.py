"""Pretrained word vectors: load (GloVe / word2vec / fastText text, word2vec binary, gzip, native cache), save,
look up, turn into an ``nn.Embedding``, nearest neighbours, gensim interop.

The parsing is done by the C++ op ``torch.ops.embedfast.load_vectors`` (multi-threaded); this module adds
format detection, gzip, word decoding, duplicates, vocabulary filtering, dtypes and the load report.

Guarantees (details in the docstrings): a native cache is read into memory by default (``mmap=True`` maps it:
then it must not be modified in place while loaded); every save is atomic (a unique temporary file renamed over
the target); words are the file's bytes, decoded as UTF-8 with bytes that are not UTF-8 kept as lone surrogates
(``embedfast._io``), so they stay distinct and are written back byte for byte; ``to_embedding`` never shifts
a user-given id.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import gzip
import json
import logging
import math
import os
import shutil
import struct
import tempfile
import time
import zlib
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ._io import (WORD_ERRORS, atomic_write, atomic_write_binary, check_input_file, check_output_path, count_non_utf8,
                  encode_word)
from ._vocab import (PAD_SPELLINGS, UNK_SPELLINGS, _as_int, _short, decode_words, first_index, read_vocab, split_words,
                     unit_rows)
from .ops import LOAD_STATS, SKIP_REASONS, load_vectors_raw

logger = logging.getLogger("embedfast.vectors")

PathLike = Union[str, "os.PathLike[str]"]

#: Names accepted by ``load_vectors(format=...)`` and ``Vectors.save(format=...)``.
TEXT_FORMATS = ("text", "glove", "word2vec", "fasttext")
LOAD_FORMATS = ("auto",) + TEXT_FORMATS + ("word2vec-bin", "native")
SAVE_FORMATS = ("native", "glove", "word2vec", "word2vec-bin")

_GZIP_MAGIC = b"\x1f\x8b"

# ---- native cache layout --------------------------------------------------------------------------------
# [0:8)   magic b"EMBFVEC\x00"
# [8:12)  format version, uint32 little-endian
# [12:16) length H of the JSON header, uint32 little-endian
# [16:16+H) JSON header (UTF-8): rows, dim, dtype, byte offsets and sizes of every section, file_size
# then, each section starting at a multiple of 64 bytes:
#   matrix   rows*dim values, C order, little-endian, dtype as in the header
#   words    UTF-8 words joined by "\n" (words never contain "\n": save() refuses them)
#   offsets  int64 [rows+1]: byte offset of each word in `words` without separators (offsets[-1] = bytes)
_NATIVE_MAGIC = b"EMBFVEC\x00"
_NATIVE_VERSION = 1
_ALIGN = 64
_NATIVE_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                  "bfloat16": torch.bfloat16}
_PARSE_DTYPES = (torch.float32, torch.float64)


# =========================================================================================================
# Vocabularies given by the user
# =========================================================================================================



def _check_rows_fit(rows: int, dim: int, itemsize: int, what: str) -> None:
    """Refuse, before allocating, a table that could not fit in this machine's memory."""
    try:
        phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return
    need = rows * max(dim, 1) * itemsize
    if need > phys:
        raise MemoryError(f"{what}: a [{rows}, {dim}] table needs {need / 2**30:.1f} GiB, more than this "
                          f"machine's {phys / 2**30:.1f} GiB of memory")


# =========================================================================================================
# Load report
# =========================================================================================================


@dataclasses.dataclass
class LoadReport:
    """Everything ``load_vectors`` noticed about a file. ``str(report)`` gives a readable multi-line summary.

    Nothing in the file is dropped silently: every blank line, skipped row (with its 1-based line number and
    reason), duplicate word, word whose bytes are not UTF-8, and row left out by ``vocab=`` / ``limit=`` is
    counted here.
    """

    path: str
    format: str
    rows: int = 0  #: rows in the returned Vectors
    dim: int = 0
    dtype: str = "float32"
    gzip: bool = False
    header: Optional[Tuple[int, int]] = None  #: (N, D) of an "N D" header, None without one
    lines: int = 0  #: lines read (header, blank and skipped lines included); records for word2vec binary
    rows_parsed: int = 0  #: rows the parser returned (before duplicates and vocab= filtering)
    blank_lines: int = 0
    skipped: List[Tuple[int, str]] = dataclasses.field(default_factory=list)  #: (line, reason) per skipped row
    duplicates: int = 0  #: later occurrences of a word that were dropped (the first occurrence wins)
    duplicate_examples: List[str] = dataclasses.field(default_factory=list)
    #: words whose bytes are not valid UTF-8: kept, each invalid byte as a lone surrogate (``surrogateescape``),
    #: so distinct byte strings stay distinct words and are saved back byte for byte
    non_utf8_words: int = 0
    spaced_words: int = 0  #: words containing spaces
    bom: bool = False
    crlf_lines: int = 0
    truncated_last_line: bool = False  #: the last line had no newline (it was parsed if complete)
    limit: Optional[int] = None
    vocab_requested: Optional[int] = None  #: distinct words asked for with vocab=
    vocab_found: Optional[int] = None
    vocab_missing: List[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def invalid_utf8(self) -> int:
        """Former name of :attr:`non_utf8_words`."""
        return self.non_utf8_words

    @property
    def skipped_rows(self) -> int:
        """Number of malformed rows skipped (``on_error="skip"``)."""
        return len(self.skipped)

    @property
    def dropped_rows(self) -> int:
        """Rows of the file that are not in the result because they were malformed or duplicates."""
        return self.skipped_rows + self.duplicates

    def summary(self) -> str:
        """One line: rows, dim, time, and every non-zero count."""
        parts = [f"{self.rows} x {self.dim} {self.dtype} from {self.path} ({self.format}"
                 f"{', gzip' if self.gzip else ''}) in {self.seconds:.3f} s"]
        counts = [("blank lines", self.blank_lines), ("skipped rows", self.skipped_rows),
                  ("duplicates", self.duplicates), ("non-UTF-8 words", self.non_utf8_words),
                  ("words with spaces", self.spaced_words), ("CRLF lines", self.crlf_lines),
                  ("BOM", int(self.bom)), ("truncated last line", int(self.truncated_last_line))]
        extra = [f"{name}: {n}" for name, n in counts if n]
        if self.vocab_requested is not None:
            extra.append(f"vocab: {self.vocab_found}/{self.vocab_requested} found")
        if self.limit is not None:
            extra.append(f"limit: {self.limit}")
        return parts[0] + ("; " + ", ".join(extra) if extra else "")

    def __str__(self) -> str:
        lines = [
            f"file:                {self.path}",
            f"format:              {self.format}{' (gzip)' if self.gzip else ''}",
            f"rows x dim:          {self.rows} x {self.dim} ({self.dtype})",
            f"header:              {'%d %d' % self.header if self.header else 'none'}",
            f"lines read:          {self.lines}",
            f"rows parsed:         {self.rows_parsed}",
            f"blank lines:         {self.blank_lines}",
            f"skipped rows:        {self.skipped_rows}",
        ]
        for line, reason in self.skipped[:10]:
            lines.append(f"  line {line}: {reason}")
        if self.skipped_rows > 10:
            lines.append(f"  ... and {self.skipped_rows - 10} more")
        lines += [
            f"duplicates dropped:  {self.duplicates}"
            + (f" (e.g. {', '.join(map(repr, self.duplicate_examples[:5]))})" if self.duplicates else ""),
            f"non-UTF-8 words:     {self.non_utf8_words} (bytes kept)",
            f"words with spaces:   {self.spaced_words}",
            f"BOM:                 {'yes' if self.bom else 'no'}",
            f"CRLF lines:          {self.crlf_lines}",
            f"truncated last line: {'yes' if self.truncated_last_line else 'no'}",
        ]
        if self.limit is not None:
            lines.append(f"limit:               {self.limit}")
        if self.vocab_requested is not None:
            lines.append(f"vocab:               {self.vocab_found} of {self.vocab_requested} found")
        lines.append(f"load time:           {self.seconds:.3f} s")
        return "\n".join(lines)

    def as_dict(self) -> Dict[str, Any]:
        """The report as plain data (JSON-serialisable)."""
        d = dataclasses.asdict(self)
        d["skipped_rows"] = self.skipped_rows
        d["invalid_utf8"] = self.non_utf8_words
        return d


# =========================================================================================================
# Vectors
# =========================================================================================================


class Vectors:
    """A vocabulary of words and their vectors (an ``[N, D]`` tensor).

    Args:
        words: the N words, in row order. If a word occurs twice, lookups return its first row.
        matrix: ``[N, D]`` floating-point tensor (kept as given, not copied).

    Lookups: ``len(v)``, ``word in v``, ``v[word]`` (row), ``v.index(word)``, ``v.get_index(word, default)``.
    The word -> row dict is built on the first lookup.
    """

    def __init__(self, words: Sequence[str], matrix: torch.Tensor, *, report: Optional[LoadReport] = None):
        if not isinstance(words, _LazyWords):
            if isinstance(words, (str, bytes)) or not isinstance(words, collections.abc.Iterable):
                raise TypeError(f"Vectors: words must be a sequence of str, got {type(words).__name__}")
            words = words if isinstance(words, list) else list(words)
            if not all(type(w) is str for w in words):
                i, w = next((i, w) for i, w in enumerate(words) if not isinstance(w, str))
                raise TypeError(f"Vectors: words[{i}] must be a str, got {type(w).__name__} {_short(w)}")
        self._setup(words, matrix, report)

    @classmethod
    def _trusted(cls, words: Any, matrix: torch.Tensor, report: Optional[LoadReport]) -> "Vectors":
        """For the loader: words known to be a list of str (or _LazyWords)."""
        self = cls.__new__(cls)
        self._setup(words, matrix, report)
        return self

    def _setup(self, words: Any, matrix: torch.Tensor, report: Optional[LoadReport]) -> None:
        if not isinstance(matrix, torch.Tensor):
            raise TypeError(f"Vectors: matrix must be a torch.Tensor, got {type(matrix).__name__}")
        if matrix.dim() != 2:
            raise ValueError(f"Vectors: matrix must be 2-D [N, D], got shape {tuple(matrix.shape)}")
        if not matrix.is_floating_point():
            raise ValueError(f"Vectors: matrix must be a floating-point tensor, got {matrix.dtype}")
        if isinstance(words, _LazyWords):
            self._lazy: Optional[_LazyWords] = words
            n_words = words.n
            words = None  # type: ignore[assignment]
        else:
            self._lazy = None
            words = words if isinstance(words, list) else list(words)
            n_words = len(words)
        if n_words != matrix.shape[0]:
            raise ValueError(f"Vectors: {n_words} words but the matrix has {matrix.shape[0]} rows "
                             f"(shape {tuple(matrix.shape)})")
        self._word_list: Optional[List[str]] = words
        self._matrix = matrix
        self._index: Optional[Dict[str, int]] = None
        self._normed: Optional[torch.Tensor] = None
        self.report: Optional[LoadReport] = report

    # ---- basic access --------------------------------------------------------------------------------
    @property
    def words(self) -> List[str]:
        """The words, in row order."""
        return self._words

    @property
    def _words(self) -> List[str]:
        if self._word_list is None:
            assert self._lazy is not None
            self._word_list = self._lazy.decode()
            self._lazy = None
        return self._word_list

    @property
    def matrix(self) -> torch.Tensor:
        """The ``[N, D]`` vectors."""
        return self._matrix

    @matrix.setter
    def matrix(self, value: torch.Tensor) -> None:
        if not isinstance(value, torch.Tensor) or value.dim() != 2 or value.shape[0] != len(self):
            raise ValueError(f"Vectors.matrix: expected a [{len(self)}, D] tensor, got "
                             f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
        self._matrix = value
        self._normed = None

    @property
    def dim(self) -> int:
        """Vector dimension D."""
        return int(self._matrix.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self._matrix.dtype

    @property
    def key_to_index(self) -> Dict[str, int]:
        """word -> row (first occurrence), built on first use."""
        if self._index is None:
            self._index = first_index(self._words)
        return self._index

    def __len__(self) -> int:
        return int(self._matrix.shape[0])

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def __getitem__(self, word: str) -> torch.Tensor:
        return self._matrix[self.index(word)]

    def __iter__(self):
        return iter(self._words)

    def __repr__(self) -> str:
        return f"Vectors({len(self)} words x {self.dim}, {self._matrix.dtype})"

    def index(self, word: str) -> int:
        """Row of ``word``; KeyError if absent."""
        try:
            return self.key_to_index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vectors ({len(self)} words)") from None

    def get_index(self, word: str, default: Optional[int] = None) -> Optional[int]:
        """Row of ``word``, or ``default`` if absent."""
        return self.key_to_index.get(word, default)

    def get_vector(self, word: str, norm: bool = False) -> torch.Tensor:
        """Row of ``word`` (unit length with ``norm=True``)."""
        i = self.index(word)
        return self.normed()[i] if norm else self._matrix[i]

    def to(self, dtype: torch.dtype) -> "Vectors":
        """A copy with the matrix converted to ``dtype`` (words shared)."""
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"Vectors.to: dtype must be a floating-point torch.dtype, got {dtype!r}")
        out = Vectors._trusted(self._words, self._matrix.to(dtype), self.report)
        out._index = self._index
        return out

    # ---- similarity ------------------------------------------------------------------------------------
    def normed(self) -> torch.Tensor:
        """Rows scaled to unit L2 norm (float32 or float64; zero rows stay zero). Cached."""
        if self._normed is None:
            m = self._matrix
            if m.dtype not in (torch.float32, torch.float64):
                m = m.float()
            self._normed = unit_rows(m)
        return self._normed

    def most_similar(self, positive: Any = (), negative: Any = (), topn: Optional[int] = 10,
                     restrict_vocab: Optional[int] = None) -> Any:
        """Words closest (cosine) to the mean of the unit ``positive`` vectors minus the ``negative`` ones.

        Same meaning as gensim's ``KeyedVectors.most_similar``: ``positive`` / ``negative`` are a word, a
        vector, or lists of words, vectors or ``(word, weight)`` pairs; the query words are not returned;
        ``restrict_vocab`` searches only the first rows. Returns ``[(word, cosine), ...]`` best first, or, with
        ``topn=None``, the tensor of cosines to every (searched) row. ``topn=0`` gives ``[]``; a negative
        ``topn``, a ``restrict_vocab`` below 1, a query vector that is not finite and a query that sums to zero
        (e.g. the same word positive and negative) are errors. Rows whose cosine is NaN (a NaN in the matrix)
        are never returned as neighbours.
        """
        positive = _as_list(positive)
        negative = _as_list(negative)
        if topn is not None and (isinstance(topn, bool) or not isinstance(topn, (int, np.integer)) or topn < 0):
            raise ValueError(f"most_similar: topn must be an int >= 0 or None, got {topn!r}")
        if restrict_vocab is not None and (isinstance(restrict_vocab, bool)
                                           or not isinstance(restrict_vocab, (int, np.integer)) or restrict_vocab < 1):
            raise ValueError(f"most_similar: restrict_vocab must be an int >= 1 or None, got {restrict_vocab!r}")
        if topn == 0:
            return []
        if not positive and not negative:
            raise ValueError("most_similar: give at least one positive or negative word")
        normed = self.normed()
        items = [(p, 1.0) for p in positive] + [(n, -1.0) for n in negative]
        mean = torch.zeros(self.dim, dtype=normed.dtype)
        exclude = set()
        total = 0.0
        for item, sign in items:
            weight = sign
            if isinstance(item, tuple) and len(item) == 2 and not isinstance(item[0], (int, float)):
                item, weight = item
            if isinstance(item, str):
                i = self.index(item)
                exclude.add(i)
                vec = normed[i]
            else:
                vec = torch.as_tensor(np.asarray(item) if not isinstance(item, torch.Tensor) else item)
                if vec.shape != (self.dim,):
                    raise ValueError(f"most_similar: a query vector must have shape ({self.dim},), "
                                     f"got {tuple(vec.shape)}")
                vec = vec.to(normed.dtype)
                if not bool(torch.isfinite(vec).all()):
                    raise ValueError("most_similar: a query vector holds NaN or inf")
            if not isinstance(weight, (int, float, np.floating, np.integer)) or not math.isfinite(weight):
                raise ValueError(f"most_similar: the weight of a query item must be a finite number, got {weight!r}")
            mean += weight * vec
            total += abs(weight)
        if total > 0:
            mean /= total
        norm = torch.linalg.vector_norm(mean)
        if not bool(norm > 0) or not bool(torch.isfinite(norm)):
            raise ValueError("most_similar: the query (positive minus negative) is a zero vector (or holds NaN); "
                             "no direction to compare with")
        mean = mean / norm
        end = len(self) if restrict_vocab is None else min(int(restrict_vocab), len(self))
        sims = normed[:end] @ mean
        if topn is not None and bool(torch.isnan(sims).any()):
            sims = sims.nan_to_num(nan=float("-inf"))
        if topn is None:
            return sims
        k = min(end, int(topn) + len(exclude))
        vals, idx = torch.topk(sims, k)
        out = []
        for s, i in zip(vals.tolist(), idx.tolist()):
            if i in exclude or s == float("-inf"):  # -inf: a NaN row
                continue
            out.append((self._words[i], float(s)))
            if len(out) == topn:
                break
        return out

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        n = self.normed()
        return float(n[self.index(a)] @ n[self.index(b)])

    # ---- nn.Embedding ------------------------------------------------------------------------------
    def to_embedding(self, vocab: Union[Sequence[str], Mapping[str, int]], *, oov: str = "normal",
                     scale: float = 0.6, freeze: bool = False, specials: Optional[Sequence[str]] = None,
                     padding_idx: Union[int, None, str] = "auto", pad_token: Optional[str] = None,
                     lowercase: bool = True, generator: Optional[torch.Generator] = None,
                     dtype: Optional[torch.dtype] = None) -> torch.nn.Embedding:
        """An ``nn.Embedding`` for a task vocabulary, initialised from these vectors.

        The ids are the user's, never shifted: row ``i`` of the weight is the word whose id is ``i``.

        - ``vocab`` a ``{word: id}`` mapping: ids are kept as given; the weight has ``max id + 1`` rows; ids no
          word uses get the OOV initialisation and are listed in ``coverage.unused_ids`` (and logged). Two words
          with one id, an id that is negative or not an int, or a key that is not a str: an error naming them.
        - ``vocab`` a sequence (list, tuple, ``dict.keys()``, an iterator): the word at position ``i`` has id
          ``i`` (as torchtext's ``itos`` and gensim's ``index_to_key``). A word twice: an error. A str, bytes or
          an unordered ``set``: TypeError (a str would be read as characters; a set's order changes from run
          to run; pass ``sorted(...)``).

        Nothing is added unless asked: ``specials=("<pad>", "<unk>")`` adds those of them missing from
        ``vocab`` *after* its last id, in order (put them at the front of your list to have them first).

        Padding row (``padding_idx``, zero row, no gradient):

        - ``padding_idx="auto"`` (default): the vocab's pad token, if it holds one of the usual spellings
          (``PAD_SPELLINGS``: ``<pad>``, ``<PAD>``, ``[PAD]``, ...); two different spellings: an error (say which
          with ``pad_token=``); none: no padding row.
        - ``pad_token="<blank>"``: that word's id (it must be in ``vocab`` or in ``specials``).
        - ``padding_idx=3``: that id (``0 <= padding_idx < rows``); ``padding_idx=None``: no padding row.

        Special tokens are not looked up in the vectors and not counted in ``coverage``: the padding token, the
        ``specials`` given, and, when ``specials`` is None, the usual spellings of pad and unknown tokens
        present in ``vocab`` (``PAD_SPELLINGS``, ``UNK_SPELLINGS``: ``<unk>``, ``<UNK>``, ``[UNK]``, ...). They
        get the OOV initialisation (the padding row: zeros).

        Args:
            vocab: the task vocabulary (see above).
            oov: initialisation of words not found, specials and unused ids: ``"normal"`` (N(0, scale^2)),
                ``"zeros"``, or ``"mean"`` (mean of all pretrained vectors).
            scale: standard deviation for ``oov="normal"`` (finite, >= 0).
            freeze: if True the weight does not require grad.
            specials: special tokens (see above); None: recognise the usual spellings, add nothing.
            padding_idx, pad_token: the padding row (see above).
            lowercase: look up ``word.lower()`` when ``word`` itself is absent.
            generator: random generator for ``oov="normal"`` (reproducible initialisation).
            dtype: weight dtype (default: the matrix dtype).

        Returns:
            ``nn.Embedding`` with extra attributes ``itos`` (list of words by id, None at unused ids), ``stoi``
            (dict) and ``coverage`` (an :class:`EmbeddingCoverage`: found / found after lowercasing / missing,
            unused ids, specials, padding_idx).
        """
        what = "to_embedding"
        if oov not in ("normal", "zeros", "mean"):
            raise ValueError(f"{what}: oov must be 'normal', 'zeros' or 'mean', got {oov!r}")
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.floating, np.integer)) \
                or not math.isfinite(scale) or scale < 0:
            raise ValueError(f"{what}: scale must be a finite number >= 0, got {scale!r}")
        if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
            raise TypeError(f"{what}: dtype must be a floating-point torch.dtype, got {dtype!r}")
        words = list(read_vocab(vocab, what))
        stoi = first_index(words)
        if specials is None:
            special_set = {w for w in (*PAD_SPELLINGS, *UNK_SPELLINGS) if w in stoi}
        else:
            extra = read_vocab(specials, f"{what}(specials)", ordered=False)
            for w in extra:
                if w not in stoi:
                    stoi[w] = len(words)
                    words.append(w)
            special_set = set(extra)
        # the padding row
        if pad_token is not None and not isinstance(pad_token, str):
            raise TypeError(f"{what}: pad_token must be a str, got {type(pad_token).__name__}")
        pad: Optional[int]
        if isinstance(padding_idx, str):
            if padding_idx != "auto":
                raise ValueError(f"{what}: padding_idx must be an int, None or 'auto', got {padding_idx!r}")
            if pad_token is not None:
                if pad_token not in stoi:
                    raise ValueError(f"{what}: pad_token {pad_token!r} is not in vocab (add it to vocab or to "
                                     "specials=)")
                pad = stoi[pad_token]
            else:
                found_pads = [w for w in PAD_SPELLINGS if w in stoi]
                if len(found_pads) > 1:
                    raise ValueError(f"{what}: vocab holds several padding tokens {found_pads}; say which one is "
                                     "the padding row with pad_token= (or padding_idx=)")
                pad = stoi[found_pads[0]] if found_pads else None
        elif padding_idx is None:
            if pad_token is not None:
                raise ValueError(f"{what}: pad_token={pad_token!r} conflicts with padding_idx=None")
            pad = None
        else:
            pad = _as_int(padding_idx)
            if pad is None:
                raise TypeError(f"{what}: padding_idx must be an int, None or 'auto', got "
                                f"{type(padding_idx).__name__}")
            if not 0 <= pad < len(words):
                raise ValueError(f"{what}: padding_idx={pad} is outside the {len(words)} rows of the embedding")
            if pad_token is not None and stoi.get(pad_token) != pad:
                raise ValueError(f"{what}: pad_token={pad_token!r} (id {stoi.get(pad_token)}) and "
                                 f"padding_idx={pad} disagree")
        if pad is not None and words[pad] is not None:
            special_set.add(words[pad])  # type: ignore[arg-type]
        dtype = dtype or self._matrix.dtype
        key_to_index = self.key_to_index
        rows_to: List[int] = []
        rows_from: List[int] = []
        found = found_lower = 0
        missing: List[str] = []
        unused: List[int] = []
        for i, w in enumerate(words):
            if w is None:
                if i != pad:
                    unused.append(i)
                continue
            if w in special_set:
                continue
            j = key_to_index.get(w)
            if j is not None:
                found += 1
            elif lowercase and (j := key_to_index.get(w.lower())) is not None:
                found_lower += 1
            else:
                missing.append(w)
                continue
            rows_to.append(i)
            rows_from.append(j)
        V, D = len(words), self.dim
        _check_rows_fit(V, D, torch.empty(0, dtype=dtype).element_size(), what)
        if oov == "normal":
            weight = torch.randn(V, D, generator=generator, dtype=torch.float32) * scale
            weight = weight.to(dtype)
        elif oov == "zeros":
            weight = torch.zeros(V, D, dtype=dtype)
        else:
            mean = self._matrix.double().mean(0) if len(self) else torch.zeros(D, dtype=torch.float64)
            weight = mean.to(dtype).expand(V, D).clone()
        if rows_to:
            weight[torch.tensor(rows_to)] = self._matrix[torch.tensor(rows_from)].to(dtype)
        if pad is not None:
            weight[pad] = 0
        if unused:
            logger.warning("to_embedding: %d ids of the vocab mapping have no word (e.g. %s); their rows get the "
                           "'%s' initialisation", len(unused), unused[:5], oov)
        emb = torch.nn.Embedding.from_pretrained(weight, freeze=freeze, padding_idx=pad)
        emb.itos = words  # type: ignore[assignment]
        emb.stoi = stoi  # type: ignore[assignment]
        specials_used = [w for w in words if w is not None and w in special_set]
        emb.coverage = EmbeddingCoverage(total=found + found_lower + len(missing), found=found,
                                         found_lowercase=found_lower, missing=len(missing),
                                         missing_words=missing, unused_ids=unused, specials=specials_used,
                                         padding_idx=pad)  # type: ignore[assignment]
        return emb

    # ---- gensim ------------------------------------------------------------------------------------
    @classmethod
    def from_gensim(cls, kv: Any) -> "Vectors":
        """Vectors from a gensim ``KeyedVectors`` (the matrix shares memory with ``kv.vectors`` if writable)."""
        arr = np.ascontiguousarray(kv.vectors)
        if not arr.flags.writeable:
            arr = arr.copy()
        return cls([str(k) for k in kv.index_to_key], torch.from_numpy(arr))

    def to_gensim(self) -> Any:
        """A gensim ``KeyedVectors`` with these words and vectors (matrix shared when it is float32/64 on CPU)."""
        KeyedVectors = _import_gensim_keyedvectors()
        m = self._matrix.detach().cpu()
        if m.dtype not in (torch.float32, torch.float64):
            m = m.float()
        arr = m.contiguous().numpy()
        kv = KeyedVectors(self.dim, count=0, dtype=arr.dtype)
        kv.index_to_key = list(self._words)
        kv.key_to_index = dict(self.key_to_index)
        kv.vectors = arr
        kv.next_index = len(self._words)
        return kv

    # ---- save --------------------------------------------------------------------------------------
    def save(self, path: PathLike, format: str = "native", *, precision: Optional[int] = None) -> None:
        """Write the vectors.

        Args:
            path: output file (``.gz`` is gzip-compressed for the text formats).
            format: ``"native"`` (embedfast's cache, fastest to reload), ``"glove"`` (text, no header),
                ``"word2vec"`` (text with an "N D" header) or ``"word2vec-bin"`` (word2vec binary, float32).
                The word2vec formats are read by gensim's ``KeyedVectors.load_word2vec_format``.
            precision: significant digits for text formats. Default: the fewest of 6 or 9 digits per row that
                give back exactly the same float32 values.

        Every save is atomic: the file is written under a unique temporary name in the target's folder and
        renamed over ``path`` only when complete, so a failed save (full disk, Ctrl-C) leaves the previous file
        as it was, two processes saving to one path never mix their rows, and a reader that mapped the old file
        (``load_vectors(..., mmap=True)``) keeps reading the old contents. The output folder is checked first.
        Words are written as their original bytes (words loaded from bytes that are not UTF-8 included).
        """
        if format not in SAVE_FORMATS:
            raise ValueError(f"Vectors.save: format must be one of {SAVE_FORMATS}, got {format!r}")
        if precision is not None and (isinstance(precision, bool) or not isinstance(precision, int)
                                      or not 1 <= precision <= 17):
            raise ValueError(f"Vectors.save: precision must be an int from 1 to 17 or None, got {precision!r}")
        path = check_output_path(path, what="Vectors.save: output")
        for w in self._words:
            if not w or "\n" in w or w != w.strip(" \t\r\v\f"):
                raise ValueError(f"Vectors.save: word {w!r} cannot be written (empty, a newline, or "
                                 "leading/trailing whitespace)")
        if format == "word2vec-bin":
            bad = next((w for w in self._words if " " in w or "\t" in w), None)
            if bad is not None:
                raise ValueError(f"Vectors.save: word {bad!r} contains whitespace, which word2vec binary cannot "
                                 "store; use format='glove' or 'native'")
        if format == "native":
            _save_native(self, path)
            return

        def write(f) -> None:
            if format == "word2vec-bin":
                _write_word2vec_binary(self, f)
            else:
                _write_text(self, f, header=(format == "word2vec"), precision=precision)

        atomic_write_binary(path, write)  # .gz compressed

    @classmethod
    def load(cls, path: PathLike, **kwargs: Any) -> "Vectors":
        """Same as :func:`load_vectors`."""
        return load_vectors(path, **kwargs)


class _LazyWords:
    """Words of a native file, decoded on first use (``n`` words joined by newlines in ``blob``)."""

    def __init__(self, blob: bytes, n: int):
        self.blob, self.n = blob, n

    def decode(self) -> List[str]:
        return split_words(self.blob, self.n)[0]

    def count_non_utf8(self) -> int:
        """Words holding bytes that are not UTF-8 (one strict decode when there are none)."""
        try:
            self.blob.decode("utf-8")
            return 0
        except UnicodeDecodeError:
            return split_words(self.blob, self.n)[1]


@dataclasses.dataclass
class EmbeddingCoverage:
    """How much of a task vocabulary ``Vectors.to_embedding`` found (specials not counted)."""

    total: int  #: words of the vocabulary that are not special tokens
    found: int
    found_lowercase: int
    missing: int
    missing_words: List[str]
    unused_ids: List[int] = dataclasses.field(default_factory=list)  #: ids of a mapping that no word uses
    specials: List[str] = dataclasses.field(default_factory=list)  #: special tokens (not looked up)
    padding_idx: Optional[int] = None

    @property
    def ratio(self) -> float:
        """Fraction of the (non-special) vocabulary that got a pretrained vector."""
        return (self.found + self.found_lowercase) / self.total if self.total else 1.0

    def __str__(self) -> str:
        out = (f"{self.found + self.found_lowercase}/{self.total} words have vectors ({100 * self.ratio:.1f}%): "
               f"{self.found} exact, {self.found_lowercase} after lowercasing, {self.missing} missing")
        if self.specials:
            out += f"; specials {self.specials}"
        if self.padding_idx is not None:
            out += f"; padding_idx {self.padding_idx}"
        if self.unused_ids:
            out += f"; {len(self.unused_ids)} ids without a word (e.g. {self.unused_ids[:5]})"
        return out


def _as_list(x: Any) -> list:
    if x is None:
        return []
    if isinstance(x, (str, np.ndarray, torch.Tensor)):
        return [x]
    if isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str) and isinstance(x[1], (int, float)):
        return [x]
    return list(x)


def _import_gensim_keyedvectors():
    try:
        from gensim.models import KeyedVectors
    except ImportError as exc:
        raise ImportError("this needs gensim: pip install gensim (or pip install 'embedfast[gensim]')") from exc
    return KeyedVectors


# =========================================================================================================
# Writers
# =========================================================================================================

_CHUNK_ROWS = 8192


def _rows_as_float32_numpy(m: torch.Tensor) -> np.ndarray:
    m = m.detach().cpu()
    if m.dtype != torch.float32:
        m = m.float()
    return m.contiguous().numpy()


def _write_text(v: Vectors, f, *, header: bool, precision: Optional[int]) -> None:
    n, d = len(v), v.dim
    if header:
        f.write(f"{n} {d}\n".encode())
    m = v.matrix.detach().cpu()
    as64 = m.dtype == torch.float64
    arr = m.contiguous().numpy() if as64 else _rows_as_float32_numpy(m)
    tight = None if precision is not None else (6 if not as64 else 9)
    wide = precision if precision is not None else (9 if not as64 else 17)
    fmt_wide = " ".join([f"%.{wide}g"] * d) + "\n"
    fmt_tight = " ".join([f"%.{tight}g"] * d) + "\n" if tight else None
    for start in range(0, n, _CHUNK_ROWS):
        block = arr[start:start + _CHUNK_ROWS]
        rows = block.tolist()
        words = v.words[start:start + _CHUNK_ROWS]
        if fmt_tight is not None:
            # a row is written with `tight` digits when that gives back exactly the same values
            text = [fmt_tight % tuple(r) for r in rows]
            back = np.array(" ".join(text).split(), dtype=np.float64).reshape(block.shape).astype(block.dtype)
            ok = (back == block).all(axis=1) | (np.isnan(block).all(axis=1) & np.isnan(back).all(axis=1))
            lines = [w + " " + (t if good else fmt_wide % tuple(r))
                     for w, t, good, r in zip(words, text, ok.tolist(), rows)]
        else:
            lines = [w + " " + fmt_wide % tuple(r) for w, r in zip(words, rows)]
        f.write(_encode_words_text("".join(lines), words))


def _write_word2vec_binary(v: Vectors, f) -> None:
    n, d = len(v), v.dim
    f.write(f"{n} {d}\n".encode())
    arr = _rows_as_float32_numpy(v.matrix).astype("<f4", copy=False)
    for start in range(0, n, _CHUNK_ROWS):
        block = arr[start:start + _CHUNK_ROWS]
        words = v.words[start:start + _CHUNK_ROWS]
        f.write(b"".join(encode_word(w) + b" " + row.tobytes() + b"\n" for w, row in zip(words, block)))


def _align(x: int) -> int:
    return (x + _ALIGN - 1) // _ALIGN * _ALIGN


def _encode_words_text(text: str, words: Sequence[str]) -> bytes:
    """``text`` (words and ASCII numbers) as bytes, every word as its original bytes (``_io.encode_word``'s rule,
    in one call for the whole text); a word that cannot be written is named."""
    try:
        return text.encode("utf-8", WORD_ERRORS)
    except UnicodeEncodeError:
        for w in words:
            encode_word(w)  # raises ValueError naming the word
        raise


def _join_words(words: List[str]) -> Tuple[bytes, np.ndarray, int]:
    """Words (their original bytes) joined by newlines, int64 offsets [N+1] of each word in the unseparated
    byte string, and how many words hold bytes that are not UTF-8."""
    text = "\n".join(words)
    try:
        blob, non_utf8 = text.encode("utf-8"), 0
    except UnicodeEncodeError:
        blob, non_utf8 = _encode_words_text(text, words), count_non_utf8(words)
    del text
    n = len(words)
    if n == 0:
        return b"", np.zeros(1, np.int64), 0
    raw = np.frombuffer(blob, np.uint8)
    seps = np.flatnonzero(raw == 10)
    if len(seps) != n - 1:
        raise ValueError("Vectors.save: a word contains a newline")
    # end of word i in the separated blob is seps[i] (or len(blob)); minus the i separators before it
    ends = np.empty(n, np.int64)
    ends[:-1] = seps
    ends[-1] = len(blob)
    offsets = np.zeros(n + 1, np.int64)
    offsets[1:] = ends - np.arange(n, dtype=np.int64)
    return blob, offsets, non_utf8


def _save_native(v: Vectors, path: str) -> None:
    m = v.matrix.detach().cpu().contiguous()
    dtype_name = str(m.dtype).replace("torch.", "")
    if dtype_name not in _NATIVE_DTYPES:
        raise ValueError(f"Vectors.save: native format stores float32/float64/float16/bfloat16, not {m.dtype}")
    blob, offsets, non_utf8 = _join_words(v.words)
    n, d = m.shape
    mat_bytes = m.numel() * m.element_size()
    header: Dict[str, Any] = {"rows": int(n), "dim": int(d), "dtype": dtype_name, "byteorder": "little",
                              "matrix_offset": 0, "matrix_nbytes": mat_bytes, "words_offset": 0,
                              "words_nbytes": len(blob), "offsets_offset": 0, "offsets_nbytes": 8 * (n + 1),
                              "file_size": 0, "writer": "embedfast", "non_utf8_words": int(non_utf8),
                              "unique": len(set(v.words)) == len(v)}
    # offsets depend on the header length, which depends on the offsets: fix the width by padding numbers
    for _ in range(3):
        hjson = json.dumps(header, sort_keys=True).encode()
        start = _align(16 + len(hjson) + 32)
        header["matrix_offset"] = start
        header["words_offset"] = _align(start + mat_bytes)
        header["offsets_offset"] = _align(header["words_offset"] + len(blob))
        header["file_size"] = header["offsets_offset"] + 8 * (n + 1)
    hjson = json.dumps(header, sort_keys=True).encode()
    if 16 + len(hjson) > header["matrix_offset"]:  # pragma: no cover - 32 bytes of slack covers digit growth
        raise RuntimeError("native header does not fit")
    with atomic_write(path, "wb") as f:
        f.write(_NATIVE_MAGIC + struct.pack("<II", _NATIVE_VERSION, len(hjson)) + hjson)
        f.write(b"\0" * (header["matrix_offset"] - f.tell()))
        if mat_bytes:
            f.write(m.view(torch.uint8).reshape(-1).numpy().tobytes() if m.dtype == torch.bfloat16
                    else memoryview(m.numpy()).cast("B"))
        f.write(b"\0" * (header["words_offset"] - f.tell()))
        f.write(blob)
        f.write(b"\0" * (header["offsets_offset"] - f.tell()))
        f.write(offsets.astype("<i8").tobytes())


def _native_error(path: str, msg: str) -> ValueError:
    return ValueError(f"'{path}': not a valid embedfast native vectors file: {msg}")


_HUGE_PAGE_MIN_BYTES = 64 << 20  # above glibc's largest mmap threshold (32 MiB): always a mapping of its own


def _read_exactly(fd: int, buf: memoryview, start: int, path: str) -> None:
    """Fill ``buf`` from byte ``start`` of ``fd`` with pread (no mapping: a file truncated or rewritten meanwhile
    gives an error or old/new bytes, never a signal)."""
    pos, size = 0, len(buf)
    while pos < size:
        got = os.preadv(fd, [buf[pos:pos + (1 << 30)]], start + pos)
        if got == 0:
            raise _native_error(path, f"truncated while being read: the file ends at byte {start + pos}")
        pos += got


def _load_native(path: str, *, limit: Optional[int] = None, mmap: bool = False) -> Tuple[Any, torch.Tensor, Dict[str, Any]]:
    with open(path, "rb", buffering=0) as f:
        st0 = os.fstat(f.fileno())
        size = st0.st_size
        head = f.read(16)
        if len(head) < 16 or head[:8] != _NATIVE_MAGIC:
            raise _native_error(path, "bad magic bytes (or file shorter than 16 bytes)")
        version, hlen = struct.unpack("<II", head[8:16])
        if version != _NATIVE_VERSION:
            raise _native_error(path, f"format version {version}, this embedfast reads version {_NATIVE_VERSION}")
        if 16 + hlen > size:
            raise _native_error(path, f"truncated: the JSON header needs {16 + hlen} bytes, file has {size}")
        hbytes = f.read(hlen)
        try:
            h = json.loads(hbytes.decode())
            n, d, dtype_name = int(h["rows"]), int(h["dim"]), h["dtype"]
            sections = {k: (int(h[k + "_offset"]), int(h[k + "_nbytes"])) for k in ("matrix", "words", "offsets")}
            file_size = int(h["file_size"])
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise _native_error(path, f"corrupt JSON header ({exc})") from None
        if dtype_name not in _NATIVE_DTYPES:
            raise _native_error(path, f"unknown dtype {dtype_name!r}")
        dtype = _NATIVE_DTYPES[dtype_name]
        if size != file_size:
            raise _native_error(path, f"{'truncated' if size < file_size else 'has trailing bytes'}: the header "
                                      f"says {file_size} bytes, the file has {size}")
        itemsize = torch.empty(0, dtype=dtype).element_size()
        if n < 0 or d < 0 or sections["matrix"][1] != n * d * itemsize or sections["offsets"][1] != 8 * (n + 1):
            raise _native_error(path, f"section sizes do not match {n} rows x {d} {dtype_name}")
        for name, (off, nb) in sections.items():
            if off < 16 + hlen or off + nb > size or off % _ALIGN:
                raise _native_error(path, f"section {name} [{off}, {off + nb}) lies outside the file or is "
                                          "misaligned")
        mo, mb = sections["matrix"]
        oo, ob = sections["offsets"]
        wo, wb = sections["words"]
        keep = n if limit is None else min(limit, n)
        if mmap:
            # map the whole file privately (copy-on-write): pages are read lazily, the tensors are writable.
            # The file must not be modified in place while mapped (embedfast's saves replace it: safe).
            whole = (torch.from_file(path, shared=False, size=size, dtype=torch.uint8) if size
                     else torch.empty(0, dtype=torch.uint8))
            matrix = whole[mo:mo + mb].view(dtype).view(n, d)[:keep]
            offsets = whole[oo:oo + ob].view(torch.int64).numpy()
            raw = whole[wo:wo + wb].numpy()
        else:
            # copy each section into memory with pread: a later change of the file cannot reach the loaded
            # Vectors; with limit= only the rows kept are read
            fd = f.fileno()
            matrix = torch.empty(keep, d, dtype=dtype)
            nbytes_kept = keep * d * itemsize
            if nbytes_kept >= _HUGE_PAGE_MIN_BYTES:
                # before the first touch: fewer page faults while reading, fewer TLB misses later. Only for
                # buffers so large that malloc gives them their own mapping (freed with them): advising part of
                # the shared heap would leave it marked for every later small allocation.
                from .fusion import advise_huge_pages  # here: fusion imports this module
                advise_huge_pages(matrix)
            if nbytes_kept:
                _read_exactly(fd, memoryview(matrix.view(-1).view(torch.uint8).numpy()), mo, path)
            offsets = np.empty(n + 1, "<i8")
            _read_exactly(fd, memoryview(offsets).cast("B"), oo, path)
            raw = np.empty(wb, np.uint8)
            if wb:
                _read_exactly(fd, memoryview(raw), wo, path)
            again = os.pread(fd, 16 + hlen, 0)
            st1 = os.fstat(fd)
            if (st1.st_size, st1.st_mtime_ns) != (st0.st_size, st0.st_mtime_ns) or again != head + hbytes:
                raise _native_error(path, "the file changed while it was being read; load it again")
    nbytes = wb - max(n - 1, 0)
    if offsets[0] != 0 or offsets[-1] != nbytes or (n and np.any(np.diff(offsets) < 0)):
        raise _native_error(path, "word offsets are corrupt")
    empty = np.flatnonzero(np.diff(offsets) == 0) if n else ()
    if len(empty):
        raise _native_error(path, f"word {int(empty[0])} is empty")
    # the separator after word i sits at offsets[i+1] + i: exactly n - 1 newlines, all of them there
    if n and (int(np.count_nonzero(raw == 10)) != n - 1 or
              (n > 1 and not np.all(raw[offsets[1:-1] + np.arange(n - 1, dtype=np.int64)] == 10))):
        raise _native_error(path, f"the words section does not hold {n} words at the offsets of the offsets section")
    if keep < n:
        cut = int(offsets[keep]) + keep  # bytes of the first `keep` words and their separators
        raw, n = raw[:max(cut - 1, 0)], keep
        h = dict(h)
        h.pop("non_utf8_words", None)  # counted for the whole file
    # words are decoded on first use (most of the reload time otherwise); the check above already
    # guarantees n words
    return _LazyWords(raw.tobytes(), n), matrix, h


# =========================================================================================================
# Loading
# =========================================================================================================


_SNIFF_BYTES = 1 << 16


def _sniff(path: str, nbytes: int = _SNIFF_BYTES) -> bytes:
    with open(path, "rb") as f:
        return f.read(nbytes)


def _is_word2vec_binary(head: bytes) -> bool:
    """A "N D" header line followed by records that are not text: control bytes anywhere in the sample, or a
    first line that is not a word and D numbers and bytes that are not UTF-8."""
    nl = head.find(b"\n")
    if nl < 0:
        return False
    fields = head[:nl].split()
    if len(fields) != 2 or not all(f.isdigit() for f in fields):
        return False
    dim = int(fields[1])
    body = head[nl + 1:]
    if dim <= 0 or not body:
        return False
    if body.translate(None, _TEXT_BYTES):  # some byte that text files do not contain
        return True
    line = body.split(b"\n", 1)[0].split()
    if len(line) >= dim + 1:
        try:
            [float(x) for x in line[-dim:]]
            return False
        except ValueError:
            pass
    if _walk_binary_records(body, int(fields[0]), dim, complete=len(head) < _SNIFF_BYTES):
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the end of the sample does not count
        return not (len(head) >= _SNIFF_BYTES and exc.start >= len(body) - 3)
    return False


def _walk_binary_records(body: bytes, rows: int, dim: int, complete: bool) -> bool:
    """True if ``body`` is laid out as word2vec binary records (word, space, 4*dim bytes, optional newline),
    ending exactly after ``rows`` records when the sample is the whole file."""
    pos, r = 0, 0
    while r < rows and pos < len(body):
        sp = body.find(b" ", pos)
        if sp < 0 or b"\n" in body[pos + (body[pos:pos + 1] == b"\n"):sp]:
            return False
        pos = sp + 1 + 4 * dim
        if pos > len(body):
            return not complete
        if body[pos:pos + 1] == b"\n":
            pos += 1
        r += 1
    return r == rows and pos == len(body) if complete else r > 0


_TEXT_BYTES = bytes([9, 10, 11, 12, 13]) + bytes(range(32, 127)) + bytes(range(128, 256))


def _gunzip_to_temp(path: str) -> str:
    fd, tmp = tempfile.mkstemp(prefix="embedfast-", suffix=".vec")
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(path, "rb") as src:
            shutil.copyfileobj(src, out, length=1 << 22)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:  # the disk, not the data (e.g. /tmp full)
            raise OSError(exc.errno, f"'{path}': cannot decompress into a temporary file: "
                                     f"{exc.strerror or exc}") from None
        raise ValueError(f"'{path}': corrupt gzip data, cannot decompress: {exc or type(exc).__name__}") from None
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


_FORMAT_DESCRIPTIONS = {"text": "glove text", "glove": "glove text", "word2vec": "word2vec text",
                        "fasttext": "fastText text", "word2vec-bin": "word2vec binary",
                        "native": "an embedfast native cache"}


def _detect_kind(head: bytes) -> str:
    if head[:8] == _NATIVE_MAGIC:
        return "native"
    if _is_word2vec_binary(head):
        return "word2vec-bin"
    return "text"


def _looks_like_word2vec_text(head: bytes) -> bool:
    """An "N D" header line, then a line of a word and D numbers."""
    lines = head.split(b"\n", 2)
    if len(lines) < 3:
        return False
    fields = lines[0].split()
    if len(fields) != 2 or not all(f.isdigit() for f in fields):
        return False
    dim, row = int(fields[1]), lines[1].split()
    if dim <= 0 or len(row) < dim + 1:
        return False
    try:
        [float(x) for x in row[-dim:]]
    except ValueError:
        return False
    return True


def _resolve_format(parse_path: str, path: str, requested: str) -> str:
    """The format to parse ``parse_path`` (the user's ``path``, decompressed) with: detected for ``"auto"``;
    otherwise the requested one, refused when the file is clearly of another kind."""
    head = _sniff(parse_path)
    kind = _detect_kind(head)
    if requested == "auto":
        return kind
    if kind == "native" and requested != "native":
        raise ValueError(f"'{path}' is an embedfast native cache, not {_FORMAT_DESCRIPTIONS[requested]}; "
                         "use format='native' or 'auto'")
    if requested == "native" and kind != "native":
        raise ValueError(f"'{path}' is not an embedfast native cache (it does not start with the magic bytes "
                         f"{_NATIVE_MAGIC!r}; it looks like {_FORMAT_DESCRIPTIONS[kind]}); use format='auto'")
    if requested == "word2vec-bin" and kind == "text" and _looks_like_word2vec_text(head):
        raise ValueError(f"'{path}' is word2vec text (an 'N D' header, then a word and D numbers per line), not "
                         "word2vec binary; use format='word2vec' or 'auto'")
    return requested


def _exception_like(exc: BaseException, msg: str) -> BaseException:
    """An exception of ``exc``'s type with message ``msg`` when that type can be built from one message, else of
    the closest standard type (a UnicodeDecodeError, for one, needs five arguments)."""
    for cls in (type(exc), ValueError, RuntimeError, OSError, MemoryError):
        if not isinstance(exc, cls):
            continue
        try:
            new = cls(msg)
        except Exception:
            continue
        if str(new) == msg:
            return new
    return RuntimeError(msg)


def _check_int_arg(value: Any, name: str, lo: int, hi: Optional[int] = None) -> Optional[int]:
    if value is None:
        return None
    v = _as_int(value)
    if v is None:
        raise TypeError(f"load_vectors: {name} must be an int or None, got {type(value).__name__} "
                        f"{_short(value)}")
    if v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"from {lo} to {hi}"
        raise ValueError(f"load_vectors: {name} must be {rng} (or None), got {v}")
    return v


_MAX_THREADS = 1024


def load_vectors(path: PathLike, *, format: str = "auto", limit: Optional[int] = None,
                 vocab: Optional[Iterable[str]] = None, dtype: torch.dtype = torch.float32,
                 on_error: str = "raise", threads: Optional[int] = None, mmap: bool = False) -> Vectors:
    """Load pretrained word vectors.

    Args:
        path: a GloVe / word2vec / fastText text file, a word2vec binary file, an embedfast native file, or
            any of these gzip-compressed. It must be a regular file (a named pipe, folder or device is
            refused without being opened).
        format: ``"auto"`` (detect), ``"text"`` / ``"glove"`` (text, an "N D" header is detected),
            ``"word2vec"`` / ``"fasttext"`` (text with a required "N D" header), ``"word2vec-bin"``, ``"native"``.
            A file that is clearly of another kind than the one requested (a native cache read as text, text read
            as word2vec binary, ...) is refused with an error saying what it is.
        limit: read only the first ``limit`` rows of the file (an int >= 0).
        vocab: keep only these words (any collection of str, a set included: the result keeps the file's row
            order; repeated words count once; a str is refused). The report says how many were found and lists
            the missing ones.
        dtype: float32 / float64 (parsed directly), float16 / bfloat16 (converted after parsing).
        on_error: ``"raise"``: a malformed row raises ValueError naming the file and line; ``"skip"``: it is
            skipped, and listed (line number, reason) in ``report.skipped``.
        threads: parser threads, 1 to 1024 (default or 0: ``torch.get_num_threads()``).
        mmap: native caches only. False (default): the file is read into memory (pread, no mapping), so the
            loaded Vectors never changes and the process never gets a signal, whatever later happens to the
            file. True: the matrix is mapped from the file (copy-on-write, pages read lazily on first use:
            zero-copy, near-instant). Then the file must not be modified in place (``cp`` over it, truncation)
            while the Vectors is alive: such a change shows through or ends the process with SIGBUS. Saving
            with embedfast over that path is safe: embedfast's saves always write a new file and rename it over
            the old one, so the mapped Vectors keeps reading the old contents. Gzip-compressed caches and the
            text / binary formats are always read into memory.

    Returns:
        :class:`Vectors` with ``.report`` (a :class:`LoadReport`). Words are decoded from UTF-8; bytes that are
        not UTF-8 are kept as lone surrogates (``surrogateescape``), so distinct byte strings stay distinct
        words and are saved back byte for byte; they are counted in ``report.non_utf8_words``. A word that
        occurs twice keeps its first row (counted).
    """
    t0 = time.perf_counter()
    try:
        path = os.fspath(path)
    except TypeError:
        raise TypeError(f"load_vectors: path must be a str or os.PathLike, got {type(path).__name__}") from None
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(format, str) or format not in LOAD_FORMATS:
        raise ValueError(f"load_vectors: format must be one of {LOAD_FORMATS}, got {format!r}")
    if not isinstance(on_error, str) or on_error not in ("raise", "skip"):
        raise ValueError(f"load_vectors: on_error must be 'raise' or 'skip', got {on_error!r}")
    if not isinstance(dtype, torch.dtype) or dtype not in (torch.float32, torch.float64, torch.float16,
                                                           torch.bfloat16):
        raise ValueError(f"load_vectors: dtype must be torch.float32, float64, float16 or bfloat16, got {dtype!r}")
    limit = _check_int_arg(limit, "limit", 0)
    threads = _check_int_arg(threads, "threads", 0, _MAX_THREADS)
    if not isinstance(mmap, bool):
        raise TypeError(f"load_vectors: mmap must be True or False, got {mmap!r}")
    wanted = None if vocab is None else read_vocab(vocab, "load_vectors", ordered=False)
    path = check_input_file(path, what="load_vectors: vectors file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"load_vectors: '{path}' is empty (0 bytes): no vectors to load")

    gz = _sniff(path, 2) == _GZIP_MAGIC
    parse_path, tmp = path, None
    try:
        if gz:
            tmp = _gunzip_to_temp(path)
            parse_path = tmp
            if os.path.getsize(tmp) == 0:
                raise ValueError(f"load_vectors: '{path}' decompresses to an empty file: no vectors to load")
        fmt = _resolve_format(parse_path, path, format)
        report = LoadReport(path=path, format=fmt, gzip=gz, limit=limit)
        if fmt == "native":
            words, matrix, h = _load_native(parse_path, limit=limit, mmap=mmap and not gz)
            report.rows_parsed = report.lines = words.n
            report.dim = int(h["dim"])
            if h.get("unique") and wanted is None:
                # saved without duplicates: nothing to decode or check now
                nu = h.get("non_utf8_words")
                report.non_utf8_words = int(nu) if isinstance(nu, int) else words.count_non_utf8()
                if matrix.dtype != dtype:
                    matrix = matrix.to(dtype)
                report.rows, report.dtype = words.n, str(dtype).replace("torch.", "")
                report.seconds = time.perf_counter() - t0
                _log_report(report)
                return Vectors._trusted(words, matrix, report)
            words, report.non_utf8_words = split_words(words.blob, words.n)
            dup_rows = None
        else:
            words, matrix, dup_rows = _parse(parse_path, path, fmt, report, limit=limit, on_error=on_error,
                                   threads=threads, parse_dtype=dtype if dtype in _PARSE_DTYPES else torch.float32)
    finally:
        if tmp is not None:
            os.unlink(tmp)

    # duplicates: the first occurrence wins. The parser finds repeated words (as bytes, which is the same as on
    # the decoded words: distinct bytes decode to distinct str); native files are checked here.
    if dup_rows is None and _may_have_duplicates(words):
        index = dict(zip(reversed(words), range(len(words) - 1, -1, -1)))
        dup_mask = np.ones(len(words), bool)
        dup_mask[np.fromiter(index.values(), np.int64, len(index))] = False
        del index
        dup_rows = np.flatnonzero(dup_mask)
    if dup_rows is not None and dup_rows.size:
        keep_mask = np.ones(len(words), bool)
        keep_mask[dup_rows] = False
        keep = np.flatnonzero(keep_mask)
        report.duplicates = int(dup_rows.size)
        report.duplicate_examples = [words[i] for i in dup_rows[:10]]
        words = [words[i] for i in keep]
        matrix = matrix[torch.from_numpy(keep)]

    if wanted is not None:
        full = dict(zip(reversed(words), range(len(words) - 1, -1, -1)))
        hits = [full.get(w) for w in wanted]
        report.vocab_requested = len(wanted)
        missing = [w for w, i in zip(wanted, hits) if i is None]
        report.vocab_missing = sorted(missing) if isinstance(vocab, collections.abc.Set) else missing
        keep = np.sort(np.array([i for i in hits if i is not None], dtype=np.int64))
        report.vocab_found = int(keep.size)
        del full
        words = [words[i] for i in keep]
        matrix = matrix[torch.from_numpy(keep)]

    if matrix.dtype != dtype:
        matrix = matrix.to(dtype)
    report.rows, report.dim = len(words), int(matrix.shape[1])
    report.dtype = str(dtype).replace("torch.", "")
    report.seconds = time.perf_counter() - t0
    out = Vectors._trusted(words, matrix, report)
    _log_report(report)
    return out


def _parse(parse_path: str, path: str, fmt: str, report: LoadReport, *, limit: Optional[int], on_error: str,
           threads: Optional[int], parse_dtype: torch.dtype) -> Tuple[List[str], torch.Tensor, Optional[np.ndarray]]:
    """Runs the op; returns (words, matrix, duplicate rows)."""
    header = {"text": -1, "glove": -1, "word2vec": 1, "fasttext": 1}.get(fmt, -1)
    try:
        matrix, word_bytes, offsets, stats, skipped, duplicates = load_vectors_raw(
            parse_path, header=header, limit=-1 if limit is None else limit, binary=(fmt == "word2vec-bin"),
            skip_errors=(on_error == "skip"), num_threads=threads or 0, dtype=parse_dtype)
    except Exception as exc:  # the op's errors, whatever their type's constructor takes
        msg = str(exc)
        if parse_path != path:  # gzip: name the user's file, not the temporary one
            msg = msg.replace(parse_path, path)
        if path not in msg:
            msg = f"'{path}': {msg}"
        if fmt in TEXT_FORMATS and _is_word2vec_binary(_sniff(parse_path)):
            msg += f" ('{path}' looks like a word2vec binary file: use format='word2vec-bin' or 'auto')"
        raise _exception_like(exc, msg) from None
    s = dict(zip(LOAD_STATS, stats.tolist()))
    report.lines = s["lines"]
    report.rows_parsed = s["rows"]
    report.dim = s["dim"]
    report.header = (s["header_rows"], s["header_dim"]) if s["header_rows"] >= 0 else None
    report.blank_lines = s["blank_lines"]
    report.spaced_words = s["spaced_words"]
    report.bom = bool(s["bom"])
    report.crlf_lines = s["crlf_lines"]
    report.truncated_last_line = bool(s["truncated_last_line"])
    report.skipped = [(int(line), SKIP_REASONS.get(int(code), f"reason {int(code)}"))
                      for line, code in skipped.tolist()]
    words, report.non_utf8_words = decode_words(word_bytes, offsets)
    return words, matrix, duplicates.numpy()


def _may_have_duplicates(words: List[str]) -> bool:
    """False when all words are distinct, shown by distinct str hashes (sorted int64 array: much less memory than
    a set of the words; the hashes stay cached in the str objects for the index built later). True when two
    hashes are equal (then the caller checks with a dict)."""
    if len(words) < 2:
        return False
    h = np.fromiter(map(hash, words), np.int64, len(words))
    h.sort()
    return bool(np.any(h[1:] == h[:-1]))


def _log_report(report: LoadReport) -> None:
    logger.info("load_vectors: %s", report.summary())
    if report.dropped_rows:
        where = ", ".join(f"line {ln} ({why})" for ln, why in report.skipped[:5])
        more = " ..." if report.skipped_rows > 5 else ""
        logger.warning("load_vectors: '%s': %d malformed rows skipped%s; %d duplicate words dropped%s",
                       report.path, report.skipped_rows, f" [{where}{more}]" if where else "", report.duplicates,
                       f" (e.g. {', '.join(map(repr, report.duplicate_examples[:3]))})" if report.duplicates
                       else "")
