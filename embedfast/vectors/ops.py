"""The loader op ``torch.ops.embedfast.load_vectors``: its fake kernel, the meaning of its outputs and a typed
wrapper. The schema is in csrc/ops.cpp, the CPU kernel in csrc/cpu/; :func:`embedfast.load_vectors` is the
user-facing API built on it."""
from __future__ import annotations

import torch

from .._ext import ops as _ops

__all__ = ["LOAD_STATS", "SKIP_REASONS", "load_vectors_raw", "FASTTEXT_HEADER", "load_fasttext_raw",
           "fasttext_ngram_buckets"]

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


# ---- fastText models ----------------------------------------------------------------------------------------

#: Meaning of each entry of the `header` tensor returned by ``torch.ops.embedfast.load_fasttext`` (fastText's
#: args, then its dictionary's sizes, then what the reader saw).
FASTTEXT_HEADER = (
    "version",  # format version (<= 12)
    "dim", "ws", "epoch", "min_count", "neg", "word_ngrams",
    "loss",  # 1 hs, 2 ns, 3 softmax, 4 ova
    "model",  # 1 cbow, 2 skipgram, 3 supervised
    "bucket", "minn",
    "maxn",  # 0 for version-11 supervised models, whatever the file says (fastText's rule)
    "lr_update_rate",
    "sample_bits",  # the sampling threshold t, a float64, as its 64 bits
    "nwords", "nlabels", "ntokens",
    "output_rows",  # rows of the output matrix (read only when asked)
    "words_read",  # words returned (limit)
    "qout",  # the quantised-output flag as stored
    "invalid_utf8",  # returned entries whose bytes are not valid UTF-8
    "matrix_offset",  # byte offset of the input matrix's values
)


@torch.library.register_fake("embedfast::load_fasttext")
def _load_fasttext_fake(path, limit, output, num_threads):
    ctx = torch.library.get_ctx()
    n, b, o, d = (ctx.new_dynamic_size() for _ in range(4))
    nbytes, e = ctx.new_dynamic_size(), ctx.new_dynamic_size()
    return (torch.empty(n, d), torch.empty(b, d), torch.empty(o, d), torch.empty(nbytes, dtype=torch.uint8),
            torch.empty(e + 1, dtype=torch.int64), torch.empty(e, dtype=torch.int64),
            torch.empty(e, dtype=torch.int64), torch.empty(len(FASTTEXT_HEADER), dtype=torch.int64))


def load_fasttext_raw(path: str, *, limit: int = -1, output: bool = False, num_threads: int = 0):
    """Low-level reader of a fastText ``.bin``: ``(word_rows, ngram_rows, output_rows, word_bytes, word_offsets,
    counts, types, header)``; see :data:`FASTTEXT_HEADER`. ``embedfast.load_vectors`` is the user-facing API."""
    return _ops.load_fasttext(str(path), limit, output, num_threads)


@torch.library.register_fake("embedfast::fasttext_ngram_buckets")
def _fasttext_ngram_buckets_fake(word_bytes, word_offsets, minn, maxn, buckets):
    torch._check(word_bytes.dtype == torch.uint8 and word_bytes.dim() == 1,
                 lambda: "fasttext_ngram_buckets: argument 'word_bytes' must be a 1-D uint8 tensor")
    torch._check(word_offsets.dtype == torch.int64 and word_offsets.dim() == 1 and word_offsets.numel() >= 1,
                 lambda: "fasttext_ngram_buckets: argument 'word_offsets' must be a 1-D int64 tensor of N+1 >= 1")
    e = torch.library.get_ctx().new_dynamic_size()
    return torch.empty_like(word_offsets), torch.empty(e, dtype=torch.int64, device=word_offsets.device)


def fasttext_ngram_buckets(word_bytes: torch.Tensor, word_offsets: torch.Tensor, minn: int, maxn: int,
                           buckets: int):
    """The n-gram buckets of N words by fastText's rule (``csrc/include/embedfast/subwords.h``): ``(offsets
    [N+1], buckets [E])``, word ``i``'s buckets being ``buckets[offsets[i]:offsets[i+1]]`` in fastText's order
    (duplicates kept). Words are UTF-8 bytes back to back (``word_bytes`` uint8) with ``word_offsets`` int64."""
    return _ops.fasttext_ngram_buckets(word_bytes, word_offsets, int(minn), int(maxn), int(buckets))
