"""Word lists and word -> row indexes: the one place every family reads a user's vocabulary, decodes an op's
words and indexes a word list.

- :func:`read_vocab`: every vocabulary argument (a sequence of words or a ``{word: id}`` mapping).
- :func:`first_index`: word -> row of a word list, the FIRST occurrence winning (a file that repeats a word keeps
  its first row, as the loaders count the later ones as duplicates).
- :func:`decode_words` / :func:`split_words`: the ops' words (bytes back to back + offsets, or one
  newline-joined blob) as str by ``embedfast._io``'s word rule (bytes that are not UTF-8 kept as surrogates).
- :func:`unit_rows`: rows scaled to unit length, zero rows staying zero.
"""
from __future__ import annotations

import collections.abc
import math
import operator
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch

from ._io import count_non_utf8, decode_blob, decode_word, encode_word

__all__ = ["PAD_SPELLINGS", "UNK_SPELLINGS", "OOV_POLICIES", "check_oov", "read_vocab", "first_index", "decode_words", "split_words",
           "encode_words", "unit_rows"]


#: Spellings of a padding token recognised in a task vocabulary (``to_embedding`` makes it ``padding_idx``).
PAD_SPELLINGS = ("<pad>", "<PAD>", "<Pad>", "[PAD]", "[pad]", "<|pad|>", "__PAD__", "__pad__")
#: Spellings of an unknown-word token recognised in a task vocabulary (not looked up in the vectors).
UNK_SPELLINGS = ("<unk>", "<UNK>", "<Unk>", "[UNK]", "[unk]", "<|unk|>", "__UNK__", "__unk__", "<oov>", "<OOV>")


def _short(x: Any, n: int = 40) -> str:
    r = repr(x)
    return r if len(r) <= n else r[:n] + "..."


class _CheckedVocab(list):
    """A vocabulary already read by :func:`read_vocab` (words by id, None at unused ids): passed on as is."""


def read_vocab(vocab: Any, what: str, *, ordered: bool = True, allow_gaps: bool = True) -> List[Optional[str]]:
    """The one reader of every vocabulary argument of embedfast's vectors and fusion API.

    - a ``{word: id}`` mapping: ids are the user's and are kept: the result has ``max id + 1`` entries, the
      word of each id, ``None`` for ids no word uses (an error when ``allow_gaps`` is False). Ids must be
      non-negative ints (bool refused); two words with one id, or a key that is not a str: an error naming them.
    - a sequence or other ordered iterable of words: position = id. A word twice: an error naming both indices.
    - with ``ordered=False`` (a filter such as ``load_vectors(vocab=...)``, where ids do not matter) a set is
      accepted too and repeated words are merged; the result holds each distinct word once.

    Always refused (TypeError): a str or bytes (it would be read as a list of characters), an unordered set
    where ids are derived from the order (they would change from run to run), items that are not str.
    """
    if isinstance(vocab, _CheckedVocab):
        if not allow_gaps and None in vocab:
            raise ValueError(f"{what}: id {vocab.index(None)} of the vocab has no word")
        return list(dict.fromkeys(w for w in vocab if w is not None)) if not ordered else vocab
    if vocab is None:
        raise TypeError(f"{what}: vocab must be a sequence of words or a {{word: id}} mapping, got None")
    if isinstance(vocab, (str, bytes, bytearray)):
        kind = type(vocab).__name__
        raise TypeError(f"{what}: vocab must be a sequence of words, not a {kind}; did you mean "
                        f"[{_short(vocab)}] or {_short(vocab)}.split()?")
    if isinstance(vocab, Mapping):
        if not ordered:
            vocab = list(vocab.keys())
        else:
            by_id: Dict[int, str] = {}
            for w, i in vocab.items():
                if not isinstance(w, str):
                    raise TypeError(f"{what}: a vocab mapping must map str words to int ids ({{word: id}}); key "
                                    f"{_short(w)} is a {type(w).__name__}")
                j = _as_int(i)
                if j is None:
                    raise TypeError(f"{what}: the id of {w!r} must be an int, got {type(i).__name__} "
                                    f"{_short(i)}")
                if j < 0:
                    raise ValueError(f"{what}: the id of {w!r} is {j}; ids must be >= 0")
                if j in by_id:
                    raise ValueError(f"{what}: words {by_id[j]!r} and {w!r} both have id {j}; each id must "
                                     "belong to one word")
                by_id[j] = w
            n = max(by_id) + 1 if by_id else 0
            if not allow_gaps and n != len(by_id):
                gap = next(k for k in range(n) if k not in by_id)
                raise ValueError(f"{what}: the vocab mapping's ids must be 0..{len(by_id) - 1} without gaps; "
                                 f"id {gap} has no word (the largest id is {n - 1})")
            if n > 2 * len(by_id) + (1 << 20):
                raise ValueError(f"{what}: the vocab mapping has {len(by_id)} words but its largest id is {n - 1} "
                                 f"(word {by_id[n - 1]!r}); ids leave {n - len(by_id)} rows without a word")
            words: List[Optional[str]] = _CheckedVocab([None] * n)
            for j, w in by_id.items():
                words[j] = w
            return words
    elif isinstance(vocab, collections.abc.Set) and not isinstance(vocab, collections.abc.KeysView):
        if ordered:
            raise TypeError(f"{what}: vocab is a {type(vocab).__name__}, whose order (and so every word's id) "
                            "changes from run to run; pass sorted(vocab) or a list in the order you want")
    if not isinstance(vocab, collections.abc.Iterable):
        raise TypeError(f"{what}: vocab must be a sequence of words or a {{word: id}} mapping, got "
                        f"{type(vocab).__name__}")
    out = vocab if type(vocab) is list else list(vocab)
    if not all(type(w) is str for w in out):
        for i, w in enumerate(out):
            if not isinstance(w, str):
                raise TypeError(f"{what}: vocab[{i}] must be a str, got {type(w).__name__} {_short(w)}")
    if not ordered:
        return list(dict.fromkeys(out))
    if len(set(out)) != len(out):
        first: Dict[str, int] = {}
        for i, w in enumerate(out):
            if w in first:
                raise ValueError(f"{what}: word {w!r} appears twice in vocab (indices {first[w]} and {i}); "
                                 "each word needs one id")
            first[w] = i
    return _CheckedVocab(out)


def _as_int(value: Any) -> Optional[int]:
    """``value`` as an int when it is one (Python or numpy integer; not a bool), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


#: Initialisations of the rows that get no pretrained vector (``oov=``), the same in every family.
OOV_POLICIES = ("normal", "zeros", "mean")


def check_oov(oov: Any, oov_scale: Any, what: str) -> None:
    """ValueError naming ``what`` unless ``oov`` is one of :data:`OOV_POLICIES` and ``oov_scale`` (the std of
    ``"normal"``) a finite number >= 0."""
    if oov not in OOV_POLICIES:
        raise ValueError(f"{what}: oov must be 'normal', 'zeros' or 'mean', got {oov!r}")
    if isinstance(oov_scale, bool) or not isinstance(oov_scale, (int, float, np.floating, np.integer)) \
            or not math.isfinite(oov_scale) or oov_scale < 0:
        raise ValueError(f"{what}: oov_scale must be a finite number >= 0, got {oov_scale!r}")


def first_index(words: Iterable[Optional[str]]) -> Dict[str, int]:
    """word -> position of its first occurrence in ``words`` (None entries skipped). No Python loop: the dict is
    built from the reversed list, so earlier positions overwrite later ones."""
    words = words if isinstance(words, list) else list(words)
    index: Dict[Any, int] = dict(zip(reversed(words), range(len(words) - 1, -1, -1)))
    index.pop(None, None)
    return index


def unit_rows(m: torch.Tensor) -> torch.Tensor:
    """Rows of the 2-D ``m`` scaled to unit L2 length; all-zero rows stay zero (their cosine with anything is 0)."""
    norms = torch.linalg.vector_norm(m, dim=1, keepdim=True)
    return m / torch.where(norms > 0, norms, torch.ones_like(norms))


def split_words(blob: bytes, n: int) -> Tuple[List[str], int]:
    """``n`` words joined by newlines -> (words, how many hold bytes that are not UTF-8), by ``_io``'s rule."""
    if not n:
        return [], 0
    text, bad = decode_blob(blob)
    return text.split("\n"), bad


def decode_words(word_bytes: torch.Tensor, offsets: torch.Tensor) -> Tuple[List[str], int]:
    """Decode the op's words (bytes back to back + offsets) by ``_io``'s rule (bytes that are not UTF-8 kept as
    surrogates); returns the words and how many needed it. No Python loop: newlines are inserted between the
    words with numpy, then one decode and one split."""
    n = offsets.numel() - 1
    if n <= 0:
        return [], 0
    wb = word_bytes.numpy()
    off = offsets.numpy()
    if n == 1:
        words = [decode_word(wb.tobytes())]
        return words, count_non_utf8(words)
    if np.any(wb == 10):  # a word with a newline (possible only in word2vec binary): decode one by one
        raw = wb.tobytes()
        words = [decode_word(raw[off[i]:off[i + 1]]) for i in range(n)]
        return words, count_non_utf8(words)
    total = wb.size + n - 1
    # the separator after word i lands at offsets[i+1] + i; everything else is the words' bytes in order
    keep = np.ones(total, bool)
    keep[off[1:-1] + np.arange(n - 1, dtype=np.int64)] = False
    out = np.full(total, 10, np.uint8)
    out[keep] = wb
    del keep
    blob = out.tobytes()
    del out  # keep the peak memory low: only the text and the list exist while splitting
    return split_words(blob, n)


def encode_words(words: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
    """The inverse of :func:`decode_words`: the words' original bytes back to back (uint8) and int64 offsets
    [N+1], for the ops that take words (``_io.encode_word``'s rule: a lone surrogate no byte decodes to is a
    ValueError naming the word)."""
    raw = [encode_word(w) for w in words]
    offsets = np.zeros(len(raw) + 1, np.int64)
    if raw:
        np.cumsum(np.fromiter(map(len, raw), np.int64, len(raw)), out=offsets[1:])
    blob = b"".join(raw)
    data = torch.frombuffer(bytearray(blob), dtype=torch.uint8) if blob else torch.empty(0, dtype=torch.uint8)
    return data, torch.from_numpy(offsets)
