"""The loader op ``torch.ops.embedfast.load_vectors``: its fake kernel, the meaning of its outputs and a typed
wrapper. The schema is in csrc/ops.cpp, the CPU kernel in csrc/cpu/; :func:`embedfast.load_vectors` is the
user-facing API built on it."""
from __future__ import annotations

import torch

from .._ext import ops as _ops

__all__ = ["LOAD_STATS", "SKIP_REASONS", "load_vectors_raw"]

#: Meaning of each entry of the `stats` tensor returned by ``torch.ops.embedfast.load_vectors``.
LOAD_STATS = (
    "rows",  # rows kept in the matrix
    "dim",  # vector dimension
    "header_rows",  # N of an "N D" header (-1: no header)
    "header_dim",  # D of an "N D" header (-1: no header)
    "lines",  # lines read (including header, blank and skipped lines)
    "blank_lines",  # empty or whitespace-only lines, ignored
    "skipped_rows",  # malformed rows skipped (skip_errors=True); each listed in `skipped`
    "spaced_words",  # words containing spaces (the last `dim` fields are the vector)
    "invalid_utf8",  # words that are not valid UTF-8 (kept as bytes; decoded with surrogateescape, embedfast._io)
    "bom",  # 1 if the file starts with a UTF-8 byte-order mark
    "crlf_lines",  # lines ending in CR LF
    "truncated_last_line",  # 1 if the last line had no newline (parsed if complete; with a header promising more
    #                       rows: an error)
    "duplicate_words",  # rows whose word occurred on an earlier row (listed in `duplicates`; not removed)
)

#: Reason codes in the second column of `skipped`.
SKIP_REASONS = {
    1: "too few values",
    2: "not a number",
    3: "missing word",
    4: "truncated record",
    5: "value out of range",
    6: "too many values",
}


@torch.library.register_fake("embedfast::load_vectors")
def _load_vectors_fake(path, dim, header, limit, binary, skip_errors, num_threads, dtype):
    ctx = torch.library.get_ctx()
    n = ctx.new_dynamic_size()
    d = ctx.new_dynamic_size() if dim <= 0 else dim
    nbytes = ctx.new_dynamic_size()
    s = ctx.new_dynamic_size()
    m = ctx.new_dynamic_size()
    return (
        torch.empty(n, d, dtype=dtype),
        torch.empty(nbytes, dtype=torch.uint8),
        torch.empty(n + 1, dtype=torch.int64),
        torch.empty(len(LOAD_STATS), dtype=torch.int64),
        torch.empty(s, 2, dtype=torch.int64),
        torch.empty(m, dtype=torch.int64),
    )


def load_vectors_raw(
    path: str,
    *,
    dim: int = 0,
    header: int = -1,
    limit: int = -1,
    binary: bool = False,
    skip_errors: bool = False,
    num_threads: int = 0,
    dtype: torch.dtype = torch.float32,
):
    """Low-level loader: returns (matrix, word_bytes, word_offsets, stats, skipped, duplicates).

    See `embedfast.load_vectors` for the user-facing API and `LOAD_STATS` / `SKIP_REASONS` for the meanings.
    """
    return _ops.load_vectors(str(path), dim, header, limit, binary, skip_errors, num_threads, dtype)
