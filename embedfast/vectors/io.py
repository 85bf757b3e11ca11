"""``load_vectors``: the user-facing loader (format detection, gzip, words, duplicates, ``vocab=`` and ``limit=``,
dtypes) around the op ``torch.ops.embedfast.load_vectors`` (:mod:`embedfast.vectors.ops`), and its
:class:`LoadReport`."""
from __future__ import annotations

import collections.abc
import dataclasses
import gzip
import logging
import os
import shutil
import tempfile
import time
import zlib
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

import numpy as np
import torch

from .._io import check_input_file
from .._vocab import _as_int, _short, decode_words, read_vocab, split_words
from .fasttext import read_fasttext
from .formats import GZIP_MAGIC, LOAD_FORMATS, TEXT_FORMATS, is_word2vec_binary, resolve_format, sniff
from .keyed import Vectors
from .native import load_native
from .ops import LOAD_STATS, SKIP_REASONS, load_vectors_raw

__all__ = ["LoadReport", "load_vectors"]

logger = logging.getLogger("embedfast.vectors")

PathLike = Union[str, "os.PathLike[str]"]

_PARSE_DTYPES = (torch.float32, torch.float64)


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
    #: fastText .bin: model and loss, format version, nwords, nlabels, bucket, minn, maxn, ntokens, output rows
    model: Optional[Dict[str, Any]] = None
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
        if self.model is not None:
            extra.append("fastText {model}, {bucket} buckets, minn {minn} maxn {maxn}".format(**self.model))
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
        if self.model is not None:
            lines.append("fastText model:      {model} ({loss} loss, version {version}), {nwords} words, {nlabels} "
                         "labels, {bucket} buckets, n-grams {minn}..{maxn}".format(**self.model))
        lines.append(f"load time:           {self.seconds:.3f} s")
        return "\n".join(lines)

    def as_dict(self) -> Dict[str, Any]:
        """The report as plain data (JSON-serialisable)."""
        d = dataclasses.asdict(self)
        d["skipped_rows"] = self.skipped_rows
        d["invalid_utf8"] = self.non_utf8_words
        return d


def _gunzip_to_temp(path: str) -> str:
    """Decompress a gzip file into a temporary file (the caller removes it); errors name ``path``."""
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
                 on_error: str = "raise", threads: Optional[int] = None, mmap: bool = False,
                 output_matrix: bool = False) -> Vectors:
    """Load pretrained word vectors.

    Args:
        path: a GloVe / word2vec / fastText text file, a word2vec binary file, a fastText binary model
            (``.bin``), an embedfast native file, or any of these gzip-compressed. It must be a regular file (a named pipe, folder or device is
            refused without being opened).
        format: ``"auto"`` (detect), ``"text"`` / ``"glove"`` (text, an "N D" header is detected),
            ``"word2vec"`` / ``"fasttext"`` (text with a required "N D" header), ``"word2vec-bin"``,
            ``"fasttext-bin"`` (a fastText model: the Vectors carries its sub-words, so ``v[word]`` works for any
            word; a quantised ``.ftz`` is refused with an error saying so), ``"native"``.
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
        output_matrix: fastText ``.bin`` only: also read the model's output matrix (``v.subwords.output``; kept
            when saving back to ``.bin``). By default it is skipped (its size still checked).

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
    for name, flag in (("mmap", mmap), ("output_matrix", output_matrix)):
        if not isinstance(flag, bool):
            raise TypeError(f"load_vectors: {name} must be True or False, got {flag!r}")
    wanted = None if vocab is None else read_vocab(vocab, "load_vectors", ordered=False)
    path = check_input_file(path, what="load_vectors: vectors file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"load_vectors: '{path}' is empty (0 bytes): no vectors to load")

    gz = sniff(path, 2) == GZIP_MAGIC
    parse_path, tmp = path, None
    try:
        if gz:
            tmp = _gunzip_to_temp(path)
            parse_path = tmp
            if os.path.getsize(tmp) == 0:
                raise ValueError(f"load_vectors: '{path}' decompresses to an empty file: no vectors to load")
        fmt = resolve_format(parse_path, path, format)
        report = LoadReport(path=path, format=fmt, gzip=gz, limit=limit)
        subwords = None
        if fmt == "native":
            words, matrix, h = load_native(parse_path, limit=limit, mmap=mmap and not gz)
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
        elif fmt == "fasttext-bin":
            try:
                words, matrix, subwords = read_fasttext(parse_path, report, limit=limit, threads=threads,
                                                        output=output_matrix)
            except Exception as exc:
                raise _exception_like(exc, _name_file(str(exc), parse_path, path)) from None
            dup_rows = None
        else:
            words, matrix, dup_rows = _parse(parse_path, path, fmt, report, limit=limit, on_error=on_error,
                                   threads=threads, parse_dtype=dtype if dtype in _PARSE_DTYPES else torch.float32)
    finally:
        if tmp is not None:
            os.unlink(tmp)

    words_in_file = len(words)
    keep = _rows_to_keep(words, dup_rows, wanted, vocab, report)
    if keep is not None:
        words = [words[i] for i in keep]
        rows = torch.from_numpy(keep)
        matrix = matrix[rows]
        if subwords is not None:
            subwords = subwords.select(rows, words_in_file)
    if subwords is not None and subwords.word_rows.dtype != dtype:
        subwords = subwords.to(dtype)
    if matrix.dtype != dtype:
        matrix = matrix.to(dtype)
    report.rows, report.dim = len(words), int(matrix.shape[1])
    report.dtype = str(dtype).replace("torch.", "")
    report.seconds = time.perf_counter() - t0
    out = Vectors._trusted(words, matrix, report, subwords)
    _log_report(report)
    return out


def _rows_to_keep(words: List[str], dup_rows: Optional[np.ndarray], wanted: Optional[List[str]], vocab: Any,
                  report: LoadReport) -> Optional[np.ndarray]:
    """The rows (sorted int64) left after dropping duplicates (the first occurrence wins; found by the parser,
    or here from the words) and keeping only ``wanted`` (``vocab=``), counted in ``report``; None: all rows."""
    if dup_rows is None and _may_have_duplicates(words):
        index = dict(zip(reversed(words), range(len(words) - 1, -1, -1)))
        dup_mask = np.ones(len(words), bool)
        dup_mask[np.fromiter(index.values(), np.int64, len(index))] = False
        del index
        dup_rows = np.flatnonzero(dup_mask)
    keep = None
    if dup_rows is not None and dup_rows.size:
        keep_mask = np.ones(len(words), bool)
        keep_mask[dup_rows] = False
        keep = np.flatnonzero(keep_mask)
        report.duplicates = int(dup_rows.size)
        report.duplicate_examples = [words[i] for i in dup_rows[:10]]
    if wanted is not None:
        pos = np.arange(len(words)) if keep is None else keep
        full = dict(zip(reversed([words[i] for i in pos]), pos[::-1].tolist()))
        hits = [full.get(w) for w in wanted]
        report.vocab_requested = len(wanted)
        missing = [w for w, i in zip(wanted, hits) if i is None]
        report.vocab_missing = sorted(missing) if isinstance(vocab, collections.abc.Set) else missing
        keep = np.sort(np.array([i for i in hits if i is not None], dtype=np.int64))
        report.vocab_found = int(keep.size)
        del full
    return keep


def _name_file(msg: str, parse_path: str, path: str) -> str:
    """An op's error message naming the user's file (not a temporary gunzipped copy)."""
    if parse_path != path:
        msg = msg.replace(parse_path, path)
    return msg if path in msg else f"'{path}': {msg}"


def _parse(parse_path: str, path: str, fmt: str, report: LoadReport, *, limit: Optional[int], on_error: str,
           threads: Optional[int], parse_dtype: torch.dtype) -> Tuple[List[str], torch.Tensor, Optional[np.ndarray]]:
    """Runs the op; returns (words, matrix, duplicate rows)."""
    header = {"text": -1, "glove": -1, "word2vec": 1, "fasttext": 1}.get(fmt, -1)
    try:
        matrix, word_bytes, offsets, stats, skipped, duplicates = load_vectors_raw(
            parse_path, header=header, limit=-1 if limit is None else limit, binary=(fmt == "word2vec-bin"),
            skip_errors=(on_error == "skip"), num_threads=threads or 0, dtype=parse_dtype)
    except Exception as exc:  # the op's errors, whatever their type's constructor takes
        msg = _name_file(str(exc), parse_path, path)  # gzip: the user's file, not the temporary one
        if fmt in TEXT_FORMATS and is_word2vec_binary(sniff(parse_path)):
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
