r"""embedfast's native vectors cache: write (``Vectors.save(format="native")``) and read (``load_vectors``).

Layout (format version 1; files written by every earlier embedfast stay readable):

- ``[0:8)`` magic ``b"EMBFVEC\x00"``; ``[8:12)`` format version, uint32 little-endian; ``[12:16)`` length H of
  the JSON header, uint32 little-endian; ``[16:16+H)`` the JSON header (UTF-8): rows, dim, dtype, byte offsets
  and sizes of every section, file_size;
- then, each section starting at a multiple of 64 bytes: ``matrix`` (rows*dim values, C order, little-endian,
  dtype as in the header); ``words`` (the words' bytes joined by "\n": words never contain "\n", save() refuses
  them); ``offsets`` (int64 [rows+1]: byte offset of each word in `words` without separators, offsets[-1] =
  bytes).
"""
from __future__ import annotations

import json
import os
import struct
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from .._io import atomic_write, count_non_utf8
from .._vocab import split_words
from .formats import NATIVE_MAGIC
from .writers import encode_words_text

if TYPE_CHECKING:  # pragma: no cover
    from .keyed import Vectors

__all__ = ["NATIVE_MAGIC", "NATIVE_VERSION", "save_native", "load_native", "LazyWords"]

NATIVE_VERSION = 1
_ALIGN = 64
_NATIVE_DTYPES = {"float32": torch.float32, "float64": torch.float64, "float16": torch.float16,
                  "bfloat16": torch.bfloat16}


class LazyWords:
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


def _align(x: int) -> int:
    return (x + _ALIGN - 1) // _ALIGN * _ALIGN


def _join_words(words: List[str]) -> Tuple[bytes, np.ndarray, int]:
    """Words (their original bytes) joined by newlines, int64 offsets [N+1] of each word in the unseparated
    byte string, and how many words hold bytes that are not UTF-8."""
    text = "\n".join(words)
    try:
        blob, non_utf8 = text.encode("utf-8"), 0
    except UnicodeEncodeError:
        blob, non_utf8 = encode_words_text(text, words), count_non_utf8(words)
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


def save_native(v: "Vectors", path: str) -> None:
    """Write ``v`` as a native cache at ``path`` (atomically: a temporary file renamed over it)."""
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
        f.write(NATIVE_MAGIC + struct.pack("<II", NATIVE_VERSION, len(hjson)) + hjson)
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


def load_native(path: str, *, limit: Optional[int] = None,
                mmap: bool = False) -> Tuple[LazyWords, torch.Tensor, Dict[str, Any]]:
    """(words, matrix, header) of a native cache, every section checked; the first ``limit`` rows only."""
    with open(path, "rb", buffering=0) as f:
        st0 = os.fstat(f.fileno())
        size = st0.st_size
        head = f.read(16)
        if len(head) < 16 or head[:8] != NATIVE_MAGIC:
            raise _native_error(path, "bad magic bytes (or file shorter than 16 bytes)")
        version, hlen = struct.unpack("<II", head[8:16])
        if version != NATIVE_VERSION:
            raise _native_error(path, f"format version {version}, this embedfast reads version {NATIVE_VERSION}")
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
                from .._hugepages import advise_huge_pages
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
    return LazyWords(raw.tobytes(), n), matrix, h
