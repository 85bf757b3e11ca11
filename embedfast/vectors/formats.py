"""Vector file formats: the names ``load_vectors`` and ``Vectors.save`` accept, and what a file is, told from its
first bytes (native cache magic, fastText model magic, word2vec binary records, word2vec text header)."""
from __future__ import annotations

__all__ = ["NATIVE_MAGIC", "GZIP_MAGIC", "FASTTEXT_MAGIC", "TEXT_FORMATS", "LOAD_FORMATS", "SAVE_FORMATS", "resolve_format",
           "is_word2vec_binary", "sniff"]

#: Names accepted by ``load_vectors(format=...)`` and ``Vectors.save(format=...)``.
TEXT_FORMATS = ("text", "glove", "word2vec", "fasttext")
LOAD_FORMATS = ("auto",) + TEXT_FORMATS + ("word2vec-bin", "fasttext-bin", "native")
SAVE_FORMATS = ("native", "glove", "word2vec", "word2vec-bin", "fasttext-bin")

GZIP_MAGIC = b"\x1f\x8b"
#: First bytes of an embedfast native cache (layout: :mod:`embedfast.vectors.native`).
NATIVE_MAGIC = b"EMBFVEC\x00"
#: First bytes of a fastText binary model (.bin / .ftz): the int32 793712314, little-endian.
FASTTEXT_MAGIC = b"\xba\x16\x4f\x2f"


_SNIFF_BYTES = 1 << 16


def sniff(path: str, nbytes: int = _SNIFF_BYTES) -> bytes:
    """The first ``nbytes`` bytes of the file (what the format is told from)."""
    with open(path, "rb") as f:
        return f.read(nbytes)


def is_word2vec_binary(head: bytes) -> bool:
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


_FORMAT_DESCRIPTIONS = {"text": "glove text", "glove": "glove text", "word2vec": "word2vec text",
                        "fasttext": "fastText text", "word2vec-bin": "word2vec binary",
                        "fasttext-bin": "a fastText binary model", "native": "an embedfast native cache"}


def _detect_kind(head: bytes) -> str:
    if head[:8] == NATIVE_MAGIC:
        return "native"
    if head[:4] == FASTTEXT_MAGIC:
        return "fasttext-bin"
    if is_word2vec_binary(head):
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


def resolve_format(parse_path: str, path: str, requested: str) -> str:
    """The format to parse ``parse_path`` (the user's ``path``, decompressed) with: detected for ``"auto"``;
    otherwise the requested one, refused when the file is clearly of another kind."""
    head = sniff(parse_path)
    kind = _detect_kind(head)
    if requested == "auto":
        return kind
    for special in ("native", "fasttext-bin"):
        if kind == special and requested != special:
            raise ValueError(f"'{path}' is {_FORMAT_DESCRIPTIONS[special]}, not {_FORMAT_DESCRIPTIONS[requested]}; "
                             f"use format='{special}' or 'auto'")
    if requested == "fasttext-bin" and kind != "fasttext-bin":
        raise ValueError(f"'{path}' is not a fastText binary model (it does not start with fastText's magic bytes "
                         f"{FASTTEXT_MAGIC!r}; it looks like {_FORMAT_DESCRIPTIONS[kind]}); use format='auto'")
    if requested == "native" and kind != "native":
        raise ValueError(f"'{path}' is not an embedfast native cache (it does not start with the magic bytes "
                         f"{NATIVE_MAGIC!r}; it looks like {_FORMAT_DESCRIPTIONS[kind]}); use format='auto'")
    if requested == "word2vec-bin" and kind == "text" and _looks_like_word2vec_text(head):
        raise ValueError(f"'{path}' is word2vec text (an 'N D' header, then a word and D numbers per line), not "
                         "word2vec binary; use format='word2vec' or 'auto'")
    return requested
