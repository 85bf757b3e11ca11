"""Multi-source embeddings: build an embedding layer from other pretrained parameters with one gather op.

``MultiSourceEmbedding`` fuses K pretrained tables: for a word v with rows ``index[v, k]`` (-1 where source k
lacks the word)::

    out = sum_k a_k m_vk T_k[index[v, k]] / sum_k a_k m_vk        (renormalize=True; m_vk = index[v, k] >= 0)

with ``a = softmax(logits)`` (learned) or fixed weights, and zeros (or the OOV policy) where no source has the
word. Internally every word owns a *bag* of (source, row, weight) entries (``embedfast.ops.gather_bags``), so the
same module also serves sub-word composition (a word as the mean of its pieces), a Hugging Face model's input
embeddings (sub-word bags), and alignment maps (a word as the probability-weighted mix of the source words it
aligns to, optionally through an orthogonal Procrustes map). ``mode="attention"`` gives dynamic
meta-embeddings (Kiela et al., 2018): each source projected, scored by a learned vector, softmax over the sources
present.
"""
from __future__ import annotations

import collections.abc
import ctypes
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ._io import check_output_path
from .ops import GATHER_BACKENDS, gather_bags
from ._vocab import PAD_SPELLINGS, UNK_SPELLINGS, first_index, read_vocab
from .vectors import Vectors, load_vectors

Vocab = Union[Sequence[str], Mapping[str, int]]

__all__ = [
    "MultiSourceEmbedding",
    "Source",
    "vector_source",
    "subword_source",
    "huggingface_source",
    "alignment_source",
    "procrustes",
    "char_ngrams",
]


# ----------------------------------------------------------------------------------------------------------
# sources: one table plus, for every target word, a bag of (row, weight)
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Source:
    """One source for a target vocabulary: a table [V_k, D_k] and, per target word, a bag of (row, weight).

    ``offsets`` (int64 [V+1]), ``rows`` (int64 [E_k]) and ``weights`` (float [E_k]) are a CSR of the bags; an
    empty bag means the source lacks the word. ``coverage`` counts found / found after lowercasing / missing.
    """

    name: str
    table: torch.Tensor
    offsets: torch.Tensor
    rows: torch.Tensor
    weights: torch.Tensor
    coverage: dict = field(default_factory=dict)

    @property
    def num_words(self) -> int:
        return self.offsets.numel() - 1

    def present(self) -> torch.Tensor:
        """Bool [V]: which target words have a non-empty bag in this source."""
        return self.offsets[1:] > self.offsets[:-1]


def _vocab_list(vocab: Vocab, what: str) -> list[Optional[str]]:
    """The target vocabulary by id (``embedfast._vocab.read_vocab``: a sequence's positions or a mapping's own
    ids; ``None`` at ids of a mapping that no word uses, which are in no source). str, bytes, sets and items
    that are not str are refused."""
    return read_vocab(vocab, what)


def _word_index(vectors: Any, what: str) -> tuple[dict, torch.Tensor]:
    """(word -> row, matrix) of a Vectors-like object (``.words`` and ``.matrix``)."""
    for attr in ("words", "matrix"):
        if not hasattr(vectors, attr):
            raise TypeError(f"{what}: expected an embedfast.Vectors-like object with .words and .matrix, "
                            f"got {type(vectors).__name__}")
    words = list(vectors.words)
    matrix = vectors.matrix
    if not isinstance(matrix, torch.Tensor):
        matrix = torch.as_tensor(matrix)
    if matrix.dim() != 2 or matrix.shape[0] != len(words):
        raise ValueError(f"{what}: matrix has shape {tuple(matrix.shape)} but there are {len(words)} words")
    return first_index(words), matrix


def _csr(bags: list[list[tuple[int, float]]], dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    counts = torch.tensor([len(b) for b in bags], dtype=torch.int64)
    offsets = torch.zeros(len(bags) + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=offsets[1:])
    rows = torch.tensor([r for b in bags for r, _ in b], dtype=torch.int64)
    weights = torch.tensor([w for b in bags for _, w in b], dtype=dtype)
    return offsets, rows, weights


def vector_source(vocab: Vocab, vectors: Any, *, lowercase_fallback: bool = True, name: Optional[str] = None) -> Source:
    """A word-level source: each target word looked up in ``vectors`` (then lower-cased, if allowed)."""
    words = _vocab_list(vocab, "vector_source")
    index, matrix = _word_index(vectors, "vector_source")
    rows = torch.full((len(words),), -1, dtype=torch.int64)
    found = lower = 0
    for i, w in enumerate(words):
        if w is None:
            continue
        r = index.get(w)
        if r is not None:
            found += 1
        elif lowercase_fallback:
            r = index.get(w.lower())
            if r is not None:
                lower += 1
        if r is not None:
            rows[i] = r
    present = rows >= 0
    offsets = torch.zeros(len(words) + 1, dtype=torch.int64)
    torch.cumsum(present.long(), 0, out=offsets[1:])
    cov = dict(found=found, found_lowercase=lower, missing=len(words) - found - lower)
    return Source(name or f"vectors{matrix.shape[0]}x{matrix.shape[1]}", matrix, offsets, rows[present],
                  torch.ones(int(present.sum()), dtype=torch.float32), cov)


def char_ngrams(word: str, nmin: int = 3, nmax: int = 6) -> list[str]:
    """fastText-style character n-grams of ``<word>`` (lengths nmin..nmax)."""
    w = f"<{word}>"
    return [w[i:i + n] for n in range(nmin, nmax + 1) for i in range(len(w) - n + 1)]


def subword_source(vocab: Vocab, vectors: Any, *, tokenize: Optional[Callable[[str], Sequence[str]]] = None,
                   ngrams: tuple[int, int] = (3, 6), lowercase_fallback: bool = True,
                   name: str = "subwords") -> Source:
    """Sub-word composition: a word as the mean of the vectors of its pieces found in ``vectors``.

    Pieces are ``tokenize(word)`` or, by default, the fastText character n-grams of ``<word>``. A word none of
    whose pieces are known is missing; ``coverage`` also counts pieces looked up and found.
    """
    words = _vocab_list(vocab, "subword_source")
    index, matrix = _word_index(vectors, "subword_source")
    split = tokenize or (lambda w: char_ngrams(w, *ngrams))
    bags: list[list[tuple[int, float]]] = []
    found = lower = pieces = pieces_found = 0
    def pieces_of(w: str) -> list:
        ps = split(w)
        if isinstance(ps, (str, bytes)) or not isinstance(ps, collections.abc.Iterable):
            raise TypeError(f"subword_source: tokenize({w!r}) must return a list of str pieces, got "
                            f"{type(ps).__name__}")
        return list(ps)

    for w in words:
        if w is None:
            bags.append([])
            continue
        ps = pieces_of(w)
        rows = [index[p] for p in ps if p in index]
        pieces += len(ps)
        if not rows and lowercase_fallback and w.lower() != w:
            rows = [index[p] for p in pieces_of(w.lower()) if p in index]
            if rows:
                lower += 1
        elif rows:
            found += 1
        pieces_found += len(rows)
        bags.append([(r, 1.0 / len(rows)) for r in rows])
    off, rows_t, wts = _csr(bags)
    cov = dict(found=found, found_lowercase=lower, missing=len(words) - found - lower, pieces=pieces,
               pieces_found=pieces_found)
    return Source(name, matrix, off, rows_t, wts, cov)


_USUAL_SPECIALS = frozenset(PAD_SPELLINGS + UNK_SPELLINGS + (
    "<s>", "</s>", "<bos>", "<eos>", "<BOS>", "<EOS>", "[CLS]", "[SEP]", "[MASK]", "<mask>", "<MASK>",
    "<|endoftext|>", "<cls>", "<sep>"))


def _tokenizer_specials(tokenizer: Any) -> tuple[set, Optional[int], Callable[[str], Optional[int]]]:
    """(special tokens of a Hugging Face-like tokenizer, its unknown-token id, token -> own id or None)."""
    specials = set()
    for attr in ("all_special_tokens", "additional_special_tokens"):
        try:
            specials.update(t for t in (getattr(tokenizer, attr, None) or ()) if isinstance(t, str))
        except TypeError:
            pass
    unk = getattr(tokenizer, "unk_token_id", None)
    unk = int(unk) if isinstance(unk, int) and not isinstance(unk, bool) else None
    unk_token = getattr(tokenizer, "unk_token", None)
    vocab = None
    if hasattr(tokenizer, "get_vocab"):
        try:
            vocab = tokenizer.get_vocab()
        except Exception:  # noqa: BLE001 - a tokenizer without a readable vocabulary: ask convert_tokens_to_ids
            vocab = None

    def own_id(token: str) -> Optional[int]:
        i = vocab.get(token) if isinstance(vocab, Mapping) else None
        if i is None and hasattr(tokenizer, "convert_tokens_to_ids"):
            try:
                i = tokenizer.convert_tokens_to_ids(token)
            except Exception:  # noqa: BLE001 - no id for it
                i = None
        if isinstance(i, list):
            i = i[0] if len(i) == 1 else None
        if i is None or isinstance(i, bool) or not isinstance(i, int):
            return None
        if unk is not None and i == unk and token != unk_token:
            return None  # the tokenizer maps unknown tokens to its unknown id: not the token's own row
        return int(i)

    return specials, unk, own_id


def huggingface_source(vocab: Vocab, model: Any, tokenizer: Any = None, *, name: str = "huggingface",
                       lowercase_fallback: bool = False, unk_token_id: Optional[int] = None) -> Source:
    """A transformer's input embeddings as a source: each word is the mean of its sub-word tokens' rows.

    ``model`` is a model object with ``get_input_embeddings()`` or a local model directory (loaded offline with
    ``transformers``, imported only here). ``tokenizer`` has ``encode(text, add_special_tokens=False)``
    (a Hugging Face tokenizer) or is a callable ``word -> list[int]``; by default the tokenizer of the directory.

    Special tokens and unknown pieces:

    - a vocabulary word that is a special token (one of the tokenizer's ``all_special_tokens``, or a usual
      spelling such as ``<pad>``, ``[UNK]``, ``<s>``, ``[CLS]``) is not tokenised: it gets the tokenizer's own
      row for that token when the tokenizer has one (``get_vocab()`` / ``convert_tokens_to_ids``, or a callable
      that returns a single id), else it is missing (``<pad>`` is never the mean of ``<``, ``pad``, ``>``).
    - pieces that are the unknown token (``tokenizer.unk_token_id``, or ``unk_token_id=``) are dropped; a word
      with no known piece is missing.

    ``coverage`` counts found / found after lowercasing / missing words, ``specials`` (special words found
    with their own row) and ``unknown_pieces`` (pieces dropped).
    """
    if isinstance(model, str):
        try:
            import transformers
        except ImportError as exc:
            raise ImportError("huggingface_source: loading a model from a directory needs the `transformers` "
                              "package (pip install transformers); or pass a model object") from exc
        path = model
        model = transformers.AutoModel.from_pretrained(path, local_files_only=True)
        if tokenizer is None:
            tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    if not hasattr(model, "get_input_embeddings"):
        raise TypeError(f"huggingface_source: model must have get_input_embeddings(), got {type(model).__name__}")
    if tokenizer is None:
        raise ValueError("huggingface_source: a tokenizer is required when a model object is given")
    table = model.get_input_embeddings().weight.detach()
    if hasattr(tokenizer, "encode"):
        encode = lambda w: list(tokenizer.encode(w, add_special_tokens=False))  # noqa: E731
    elif callable(tokenizer):
        encode = lambda w: list(tokenizer(w))  # noqa: E731
    else:
        raise TypeError("huggingface_source: tokenizer must have encode() or be callable")
    if unk_token_id is not None and (isinstance(unk_token_id, bool) or not isinstance(unk_token_id, int)):
        raise TypeError(f"huggingface_source: unk_token_id must be an int or None, got {unk_token_id!r}")
    if hasattr(tokenizer, "encode"):
        tok_specials, unk, own_id = _tokenizer_specials(tokenizer)
    else:
        tok_specials, unk = set(), None

        def own_id(token: str) -> Optional[int]:
            ids = encode(token)
            return int(ids[0]) if len(ids) == 1 and ids[0] != unk else None
    if unk_token_id is not None:
        unk = unk_token_id
    specials = tok_specials | _USUAL_SPECIALS
    words = _vocab_list(vocab, "huggingface_source")
    bags: list[list[tuple[int, float]]] = []
    found = lower = special_found = unknown_pieces = 0
    V = table.shape[0]

    def known_pieces(w: str) -> list[int]:
        nonlocal unknown_pieces
        ids = []
        for t in encode(w):
            if isinstance(t, bool) or not isinstance(t, int):
                try:
                    t = int(t)
                except (TypeError, ValueError):
                    raise TypeError(f"huggingface_source: tokenizer gave {t!r} for {w!r}, not an int id") from None
            if not 0 <= t < V:
                raise ValueError(f"huggingface_source: tokenizer gave id {t} for {w!r}, outside the {V} "
                                 "rows of the input embeddings")
            if unk is not None and t == unk:
                unknown_pieces += 1
                continue
            ids.append(t)
        return ids

    for w in words:
        if w is None:
            bags.append([])
            continue
        if w in specials:
            i = own_id(w)
            if i is not None and not 0 <= i < V:
                raise ValueError(f"huggingface_source: the tokenizer's id {i} for special token {w!r} is outside "
                                 f"the {V} rows of the input embeddings")
            found += i is not None
            special_found += i is not None
            bags.append([(i, 1.0)] if i is not None else [])
            continue
        ids = known_pieces(w)
        if ids:
            found += 1
        elif lowercase_fallback and w.lower() != w:
            ids = known_pieces(w.lower())
            lower += bool(ids)
        bags.append([(t, 1.0 / len(ids)) for t in ids])
    off, rows_t, wts = _csr(bags)
    return Source(name, table, off, rows_t, wts, dict(found=found, found_lowercase=lower,
                                                      missing=len(words) - found - lower, specials=special_found,
                                                      unknown_pieces=unknown_pieces))


def procrustes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Orthogonal W [D, D] minimising ||x W - y||_F (x, y: [n, D] seed pairs), via the SVD of x^T y."""
    if x.dim() != 2 or x.shape != y.shape:
        raise ValueError(f"procrustes: x and y must be [n, D] of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    u, _, vt = torch.linalg.svd(x.double().T @ y.double())
    return (u @ vt).to(x.dtype)


def alignment_source(vocab: Vocab, source_vectors: Any, alignment: Mapping[str, Sequence[tuple[str, float]]], *,
                     seed_dictionary: Optional[Sequence[tuple[str, str]]] = None, target_vectors: Any = None,
                     normalize: bool = True, name: str = "alignment") -> Source:
    """A word as the probability-weighted mix of the source words it aligns to.

    ``alignment`` maps a target word to ``[(source word, probability), ...]``; pairs whose source word is not in
    ``source_vectors`` are dropped (counted in ``coverage['pairs_dropped']``). With ``seed_dictionary`` (pairs
    ``(source word, target word)``) and ``target_vectors``, the source table is first mapped into the target
    space by the orthogonal Procrustes solution learned from the seed pairs found in both.
    """
    words = _vocab_list(vocab, "alignment_source")
    index, matrix = _word_index(source_vectors, "alignment_source")
    cov: dict = {}
    if seed_dictionary is not None:
        if target_vectors is None:
            raise ValueError("alignment_source: seed_dictionary needs target_vectors to learn the Procrustes map")
        tindex, tmatrix = _word_index(target_vectors, "alignment_source(target_vectors)")
        if tmatrix.shape[1] != matrix.shape[1]:
            raise ValueError(f"alignment_source: Procrustes needs equal dims, got {matrix.shape[1]} (source) and "
                             f"{tmatrix.shape[1]} (target)")
        pairs = [(index[s], tindex[t]) for s, t in seed_dictionary if s in index and t in tindex]
        if len(pairs) < 2:
            raise ValueError(f"alignment_source: only {len(pairs)} seed pairs found in both vocabularies")
        src_rows = torch.tensor([p[0] for p in pairs])
        tgt_rows = torch.tensor([p[1] for p in pairs])
        w = procrustes(matrix[src_rows].float(), tmatrix[tgt_rows].float())
        matrix = (matrix.float() @ w).to(matrix.dtype)
        cov["seed_pairs_used"] = len(pairs)
        cov["seed_pairs_dropped"] = len(seed_dictionary) - len(pairs)
    bags: list[list[tuple[int, float]]] = []
    dropped = found = 0
    for w in words:
        pairs = alignment.get(w, ()) if w is not None else ()
        bag = []
        for s, p in pairs:
            r = index.get(s)
            if r is None:
                dropped += 1
                continue
            if not math.isfinite(float(p)) or float(p) < 0:
                raise ValueError(f"alignment_source: probability {p!r} for ({w!r}, {s!r}) must be finite and >= 0")
            bag.append((r, float(p)))
        total = sum(p for _, p in bag)
        if normalize and total > 0:
            bag = [(r, p / total) for r, p in bag]
        found += bool(bag)
        bags.append(bag)
    off, rows_t, wts = _csr(bags)
    cov.update(found=found, found_lowercase=0, missing=len(words) - found, pairs_dropped=dropped)
    return Source(name, matrix, off, rows_t, wts, cov)


# ----------------------------------------------------------------------------------------------------------
# the module
# ----------------------------------------------------------------------------------------------------------


_HUGE = 2 << 20  # 2 MiB: an x86-64 transparent huge page
_MADV_HUGEPAGE, _MADV_COLLAPSE = 14, 25


def advise_huge_pages(t: torch.Tensor) -> int:
    """Back the memory of CPU tensor ``t`` with 2 MiB transparent huge pages, now (Linux ``madvise``:
    ``MADV_HUGEPAGE``, then ``MADV_COLLAPSE``, Linux 6.1+).

    Random row gathers from a large table miss the TLB on almost every row with 4 KiB pages; on huge pages
    they mostly do not (gather_bags forward 41 -> 24 ms at 3 x 400k x 300, benchmarks/RESULTS.md). The contents,
    the tensor and any views stay as they are; only the whole 2 MiB pages inside ``t``'s storage are advised.
    Returns the number of bytes collapsed: 0 where the platform, the kernel, the memory kind (e.g. a
    file mapping) or ``t``'s size does not allow it, which changes nothing else.
    """
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"advise_huge_pages: argument 't' must be a tensor, got {type(t).__name__}")
    if t.device.type != "cpu" or not sys.platform.startswith("linux"):
        return 0
    st = t.untyped_storage()
    lo = -(-st.data_ptr() // _HUGE) * _HUGE
    hi = (st.data_ptr() + st.nbytes()) // _HUGE * _HUGE
    if hi <= lo:
        return 0
    libc = _libc()
    if libc is None or libc.madvise(lo, hi - lo, _MADV_HUGEPAGE) != 0:
        return 0
    return hi - lo if libc.madvise(lo, hi - lo, _MADV_COLLAPSE) == 0 else 0


def _libc():
    try:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        lib.madvise.restype = ctypes.c_int
        return lib
    except (OSError, AttributeError):
        return None


def _check_tables(tables: Any) -> list[torch.Tensor]:
    if isinstance(tables, torch.Tensor) or not isinstance(tables, (list, tuple)):
        raise TypeError(f"MultiSourceEmbedding: tables must be a list of 2-D tensors, got {type(tables).__name__}")
    tables = list(tables)
    if not tables:
        raise ValueError("MultiSourceEmbedding: at least one table is needed")
    for k, t in enumerate(tables):
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            raise ValueError(f"MultiSourceEmbedding: tables[{k}] must be a 2-D tensor [V_k, D], got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
        if not t.is_floating_point():
            raise ValueError(f"MultiSourceEmbedding: tables[{k}] must be floating-point, got {t.dtype}")
        if t.dtype != tables[0].dtype:
            raise ValueError(f"MultiSourceEmbedding: tables must share one dtype; tables[{k}] is {t.dtype}, "
                             f"tables[0] is {tables[0].dtype}")
        if t.device != tables[0].device:
            raise ValueError(f"MultiSourceEmbedding: tables must be on one device; tables[{k}] is on {t.device}, "
                             f"tables[0] on {tables[0].device}")
    return tables


def _check_bags(tables: list, offsets: torch.Tensor, src: torch.Tensor, rows: torch.Tensor, wts: torch.Tensor) -> None:
    """The CSR of bags is consistent with the tables (once per construction, vectorised)."""
    for name, t in (("bag_offsets", offsets), ("entry_source", src), ("entry_row", rows), ("entry_weight", wts)):
        if not isinstance(t, torch.Tensor) or t.dim() != 1:
            raise ValueError(f"MultiSourceEmbedding: {name} must be a 1-D tensor, got "
                             f"{tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    E = rows.numel()
    if src.numel() != E or wts.numel() != E:
        raise ValueError(f"MultiSourceEmbedding: entry_source ({src.numel()}), entry_row ({E}) and entry_weight "
                         f"({wts.numel()}) must have one value per entry")
    if offsets.numel() < 1 or int(offsets[0]) != 0 or int(offsets[-1]) != E or bool((offsets[1:] < offsets[:-1]).any()):
        raise ValueError(f"MultiSourceEmbedding: bag_offsets must start at 0, never decrease and end at the number "
                         f"of entries ({E}); got {offsets[:3].tolist()}...{offsets[-2:].tolist()}")
    if E == 0:
        return
    K = len(tables)
    if bool(((src < 0) | (src >= K)).any()):
        e = int(((src < 0) | (src >= K)).nonzero()[0, 0])
        raise IndexError(f"MultiSourceEmbedding: entry_source[{e}] = {int(src[e])} is not a source (0..{K - 1})")
    sizes = torch.tensor([t.shape[0] for t in tables], dtype=torch.int64, device=src.device)
    bad = (rows < 0) | (rows >= sizes[src])
    if bool(bad.any()):
        e = int(bad.nonzero()[0, 0])
        raise IndexError(f"MultiSourceEmbedding: entry_row[{e}] = {int(rows[e])} is out of range for source "
                         f"{int(src[e])} ({int(sizes[src[e]])} rows)")
    if wts.is_floating_point() and not bool(torch.isfinite(wts).all()):
        e = int((~torch.isfinite(wts)).nonzero()[0, 0])
        raise ValueError(f"MultiSourceEmbedding: entry_weight[{e}] = {float(wts[e])} is not finite")


def _check_weights(weights: Any, K: int, dtype: torch.dtype) -> torch.Tensor:
    """K source weights as a tensor: finite, >= 0, not all zero (one value per source)."""
    if isinstance(weights, (str, bytes)):
        raise TypeError(f"MultiSourceEmbedding: weights must be {K} numbers, got a {type(weights).__name__} "
                        f"{weights!r}")
    try:
        w0 = torch.as_tensor(weights, dtype=torch.float64).flatten()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise TypeError(f"MultiSourceEmbedding: weights must be {K} numbers, got {weights!r} ({exc})") from None
    if w0.numel() != K:
        raise ValueError(f"MultiSourceEmbedding: weights must have one value per source ({K}), got {w0.numel()}")
    for k, x in enumerate(w0.tolist()):
        if not math.isfinite(x):
            raise ValueError(f"MultiSourceEmbedding: weights[{k}] = {x} is not finite; weights must be finite "
                             "numbers >= 0")
        if x < 0:
            raise ValueError(f"MultiSourceEmbedding: weights[{k}] = {x} is negative; weights must be >= 0")
    if not bool((w0 > 0).any()):
        raise ValueError(f"MultiSourceEmbedding: weights are all zero ({w0.tolist()}); at least one must be > 0")
    return w0.to(dtype)


class MultiSourceEmbedding(nn.Module):
    """Fused embedding from K pretrained tables (one ``gather_bags`` op forward and backward).

    Args:
        tables: K tensors [V_k, D] (float32/float16/bfloat16/float64, one dtype).
        index: LongTensor [V, K]: row of word v in source k, -1 where the source lacks it.
        weights: K fixed weights (or the initial weights when learned; default uniform).
        learn_weights: learn ``logits`` (a = softmax(logits)); else ``weights`` stay fixed.
        freeze_tables: tables are buffers (no gradient, no work in backward); else parameters.
        renormalize: divide by the sum of the weights of the sources present.
        sparse: table gradients as sparse COO rows (like ``nn.Embedding(sparse=True)``); else dense.
        oov: words with no source: ``"zeros"``, ``"random"`` (normal with ``oov_scale``) or ``"mean"``
            (mean of the fused vectors of the covered words).
        mode: ``"weighted"`` (fusion by source weights) or ``"attention"`` (dynamic meta-embeddings:
            per-source linear projection to ``project_to``, a learned scoring vector, softmax over present
            sources).
        project_to: output dimension; sources of another dimension get a learned ``nn.Linear`` projection
            (required when dims differ; always used in attention mode).
        backend: gather kernels: ``"auto"`` (CUDA kernels when built, else Triton, on CUDA tensors; the C++ op
            on CPU tensors), ``"cuda"`` or ``"triton"`` (see ``embedfast.ops.gather_backend``).
        huge_pages: put CPU tables on 2 MiB transparent huge pages (``advise_huge_pages``; in place, also for
            frozen tables, which share memory with the tensors given). Fewer TLB misses in the random row
            gathers; a no-op where Linux does not allow it.

    ``forward(ids)`` takes ids of any shape (int64/int32) and returns ``[*ids.shape, D]``.
    """

    def __init__(self, tables: Sequence[torch.Tensor], index: torch.Tensor, *, weights: Optional[Sequence[float]] = None,
                 learn_weights: bool = True, freeze_tables: bool = True, renormalize: bool = True,
                 sparse: bool = False, oov: str = "zeros", oov_scale: float = 0.1, mode: str = "weighted",
                 project_to: Optional[int] = None, names: Optional[Sequence[str]] = None,
                 generator: Optional[torch.Generator] = None, backend: str = "auto", huge_pages: bool = True):
        super().__init__()
        if not isinstance(index, torch.Tensor) or index.dim() != 2:
            raise ValueError(f"MultiSourceEmbedding: index must be a LongTensor [V, K], got "
                             f"{getattr(index, 'shape', type(index).__name__)}")
        if index.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"MultiSourceEmbedding: index must be int64 (or int32), got {index.dtype}")
        tables = _check_tables(tables)
        if index.shape[1] != len(tables):
            raise ValueError(f"MultiSourceEmbedding: index has {index.shape[1]} columns but there are "
                             f"{len(tables)} tables")
        index = index.long()
        for k, t in enumerate(tables):
            col = index[:, k]
            bad = (col < -1) | (col >= t.shape[0])
            if bool(bad.any()):
                v = int(bad.nonzero()[0, 0])
                raise IndexError(f"MultiSourceEmbedding: index[{v}, {k}] = {int(col[v])} is out of range for source "
                                 f"{k} (tables[{k}] has {t.shape[0]} rows; -1 marks a missing word)")
        present = index >= 0
        counts = present.sum(1)
        offsets = torch.zeros(index.shape[0] + 1, dtype=torch.int64)
        torch.cumsum(counts, 0, out=offsets[1:])
        src = torch.arange(len(tables)).expand_as(index)[present].contiguous()
        rows = index[present].contiguous()
        wts = torch.ones(rows.numel())
        self._init(tables, offsets, src, rows, wts, weights=weights, learn_weights=learn_weights,
                   freeze_tables=freeze_tables, renormalize=renormalize, sparse=sparse, oov=oov,
                   oov_scale=oov_scale, mode=mode, project_to=project_to, names=names, generator=generator,
                   backend=backend, huge_pages=huge_pages)

    # -- construction ---------------------------------------------------------------------------------------

    @classmethod
    def from_bags(cls, tables: Sequence[torch.Tensor], bag_offsets: torch.Tensor, entry_source: torch.Tensor,
                  entry_row: torch.Tensor, entry_weight: Optional[torch.Tensor] = None, **kwargs) -> "MultiSourceEmbedding":
        """Build from bags directly (CSR: ``bag_offsets`` [V+1], ``entry_source``/``entry_row``/``entry_weight`` [E])."""
        for name, t in (("bag_offsets", bag_offsets), ("entry_source", entry_source), ("entry_row", entry_row)):
            if not isinstance(t, torch.Tensor) or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
                raise TypeError(f"MultiSourceEmbedding.from_bags: {name} must be an integer tensor, got "
                                f"{t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}")
        if entry_weight is None:
            entry_weight = torch.ones(entry_row.numel())
        elif not isinstance(entry_weight, torch.Tensor) or not entry_weight.is_floating_point():
            raise TypeError("MultiSourceEmbedding.from_bags: entry_weight must be a floating-point tensor, got "
                            f"{entry_weight.dtype if isinstance(entry_weight, torch.Tensor) else type(entry_weight).__name__}")
        self = cls.__new__(cls)
        nn.Module.__init__(self)
        self._init(tables, bag_offsets.long(), entry_source.long(), entry_row.long(), entry_weight, **kwargs)
        return self

    @classmethod
    def from_sources(cls, sources: Sequence[Source], **kwargs) -> "MultiSourceEmbedding":
        """Fuse prepared sources (``vector_source``, ``subword_source``, ``huggingface_source``,
        ``alignment_source``) over one target vocabulary."""
        sources = list(sources)
        if not sources:
            raise ValueError("MultiSourceEmbedding.from_sources: no sources given")
        V = sources[0].num_words
        for s in sources:
            if s.num_words != V:
                raise ValueError(f"from_sources: source {s.name!r} covers {s.num_words} words, expected {V}")
        counts = torch.stack([s.offsets[1:] - s.offsets[:-1] for s in sources], 1)  # [V, K]
        offsets = torch.zeros(V + 1, dtype=torch.int64)
        torch.cumsum(counts.sum(1), 0, out=offsets[1:])
        # entries of word v: source 0's bag, then source 1's, ...: position = offsets[v] + sum_{j<k} counts[v, j] + i
        E = int(offsets[-1])
        src = torch.empty(E, dtype=torch.int64)
        rows = torch.empty(E, dtype=torch.int64)
        wts = torch.empty(E, dtype=torch.float32)
        before = torch.cumsum(counts, 1) - counts
        for k, s in enumerate(sources):
            n_k = s.rows.numel()
            word = torch.repeat_interleave(torch.arange(V), counts[:, k])
            pos = offsets[word] + before[word, k] + (torch.arange(n_k) - s.offsets[word])
            src[pos] = k
            rows[pos] = s.rows
            wts[pos] = s.weights.float()
        kwargs.setdefault("names", [s.name for s in sources])
        self = cls.from_bags([s.table for s in sources], offsets, src, rows, wts, **kwargs)
        self.coverage = cls._coverage(sources, counts)
        return self

    @classmethod
    def from_vectors(cls, vocab: Vocab, vectors: Sequence[Any], *, lowercase_fallback: bool = True,
                     project_to: Optional[int] = None, **kwargs) -> "MultiSourceEmbedding":
        """Fuse several ``embedfast.Vectors`` for a target vocabulary (list of words, or word -> id)."""
        vocab = _vocab_list(vocab, "MultiSourceEmbedding.from_vectors")
        if isinstance(vectors, (str, bytes)) or not isinstance(vectors, collections.abc.Iterable) \
                or hasattr(vectors, "matrix"):
            raise TypeError("MultiSourceEmbedding.from_vectors: vectors must be a list of Vectors, got "
                            f"{type(vectors).__name__}")
        sources = [vector_source(vocab, v, lowercase_fallback=lowercase_fallback, name=f"source{k}")
                   for k, v in enumerate(vectors)]
        return cls.from_sources(sources, project_to=project_to, **kwargs)

    @classmethod
    def from_huggingface(cls, vocab: Vocab, model: Any, tokenizer: Any = None, **kwargs) -> "MultiSourceEmbedding":
        """A vocabulary's embedding from a transformer's input embeddings (each word: mean of its sub-word rows)."""
        kwargs.setdefault("learn_weights", False)
        vocab = _vocab_list(vocab, "MultiSourceEmbedding.from_huggingface")
        return cls.from_sources([huggingface_source(vocab, model, tokenizer)], **kwargs)

    @classmethod
    def from_alignment(cls, vocab: Vocab, source_vectors: Any, alignment: Mapping[str, Sequence[tuple[str, float]]],
                       *, seed_dictionary=None, target_vectors=None, **kwargs) -> "MultiSourceEmbedding":
        """A vocabulary (e.g. another language) from aligned source words; see ``alignment_source``."""
        kwargs.setdefault("learn_weights", False)
        vocab = _vocab_list(vocab, "MultiSourceEmbedding.from_alignment")
        src = alignment_source(vocab, source_vectors, alignment, seed_dictionary=seed_dictionary,
                               target_vectors=target_vectors)
        return cls.from_sources([src], **kwargs)

    @classmethod
    def from_subwords(cls, vocab: Vocab, vectors: Any, *, tokenize=None, ngrams=(3, 6), **kwargs) -> "MultiSourceEmbedding":
        """A vocabulary from sub-word vectors: each word the mean of its pieces; see ``subword_source``."""
        kwargs.setdefault("learn_weights", False)
        vocab = _vocab_list(vocab, "MultiSourceEmbedding.from_subwords")
        return cls.from_sources([subword_source(vocab, vectors, tokenize=tokenize, ngrams=ngrams)], **kwargs)

    def _init(self, tables, offsets, src, rows, wts, *, weights=None, learn_weights=True, freeze_tables=True,
              renormalize=True, sparse=False, oov="zeros", oov_scale=0.1, mode="weighted", project_to=None,
              names=None, generator=None, backend="auto", huge_pages=True):
        tables = _check_tables(tables)
        K = len(tables)
        dtype = tables[0].dtype
        if mode not in ("weighted", "attention"):
            raise ValueError(f"MultiSourceEmbedding: mode must be 'weighted' or 'attention', got {mode!r}")
        if oov not in ("zeros", "random", "mean"):
            raise ValueError(f"MultiSourceEmbedding: oov must be 'zeros', 'random' or 'mean', got {oov!r}")
        if isinstance(oov_scale, bool) or not isinstance(oov_scale, (int, float)) or not math.isfinite(oov_scale) \
                or oov_scale < 0:
            raise ValueError(f"MultiSourceEmbedding: oov_scale must be a finite number >= 0, got {oov_scale!r}")
        if project_to is not None and (isinstance(project_to, bool) or not isinstance(project_to, int)
                                       or project_to < 1):
            raise ValueError(f"MultiSourceEmbedding: project_to must be an int >= 1 or None, got {project_to!r}")
        if names is not None:
            names = list(names)
            if len(names) != K:
                raise ValueError(f"MultiSourceEmbedding: {len(names)} names for {K} sources")
        _check_bags(tables, offsets, src, rows, wts)
        dims = [t.shape[1] for t in tables]
        if project_to is None and (len(set(dims)) > 1 or mode == "attention"):
            if mode == "attention":
                project_to = max(dims)
            else:
                raise ValueError(f"MultiSourceEmbedding: sources have different dims {dims}; pass project_to=D to "
                                 "learn a per-source linear projection")
        if backend not in GATHER_BACKENDS:
            raise ValueError(f"MultiSourceEmbedding: backend must be one of {GATHER_BACKENDS}, got {backend!r}")
        self.backend = backend
        self.num_sources = K
        self.names = names if names is not None else [f"source{k}" for k in range(K)]
        self.renormalize = bool(renormalize)
        self.sparse = bool(sparse)
        self.mode = mode
        self.freeze_tables = bool(freeze_tables)
        self.num_embeddings = offsets.numel() - 1
        self.wdtype = torch.float64 if dtype == torch.float64 else torch.float32
        self.embedding_dim = project_to if project_to is not None else dims[0]
        for k, t in enumerate(tables):
            t = t.detach()
            if freeze_tables:
                self.register_buffer(f"table_{k}", t)
            else:
                self.register_parameter(f"table_{k}", nn.Parameter(t.clone()))
            if huge_pages:
                advise_huge_pages(getattr(self, f"table_{k}"))
        self.register_buffer("bag_offsets", offsets.contiguous())
        self.register_buffer("entry_source", src.contiguous())
        self.register_buffer("entry_row", rows.contiguous())
        self.register_buffer("entry_weight", wts.to(self.wdtype).contiguous())
        if weights is None:
            w0 = torch.full((K,), 1.0 / K, dtype=self.wdtype)
        else:
            w0 = _check_weights(weights, K, self.wdtype)
        self.learn_weights = bool(learn_weights) and mode == "weighted"
        if self.learn_weights:
            if bool((w0 <= 0).any()):
                raise ValueError("MultiSourceEmbedding: learned weights start from log(weights); give positive weights")
            self.logits = nn.Parameter(torch.log(w0 / w0.sum()))
        else:
            self.register_buffer("fixed_weights", w0)
        # projections: sources whose dim differs from the output (all of them in attention mode)
        self.projections = nn.ModuleDict()
        self._per_source = mode == "attention" or any(d != self.embedding_dim for d in dims)
        if self._per_source:
            for k, d in enumerate(dims):
                if mode == "attention" or d != self.embedding_dim:
                    self.projections[str(k)] = nn.Linear(d, self.embedding_dim, bias=mode == "attention",
                                                         dtype=self.wdtype if dtype == torch.float64 else torch.float32)
            self._build_source_bags()
        if mode == "attention":
            self.scorer = nn.Linear(self.embedding_dim, 1, dtype=self.wdtype if dtype == torch.float64 else torch.float32)
        # OOV policy: words with an empty bag get one entry into an extra table (source K, weight 1).
        self.oov = oov
        empty = (offsets[1:] == offsets[:-1]).nonzero().flatten()
        self.register_buffer("oov_words", empty)
        self.register_buffer("oov_rows", torch.full((self.num_embeddings,), -1, dtype=torch.int64))
        self.oov_rows[empty] = torch.arange(empty.numel()) if oov == "random" else 0
        if oov != "zeros" and empty.numel() > 0:
            D = self.embedding_dim
            if oov == "random":
                ot = torch.randn(empty.numel(), D, generator=generator, dtype=torch.float32) * oov_scale
            else:
                with torch.no_grad():
                    covered = (offsets[1:] > offsets[:-1]).nonzero().flatten()
                    ot = torch.zeros(1, D, dtype=torch.float64)
                    for chunk in covered.split(65536):
                        ot += self._fused(chunk).double().sum(0, keepdim=True)
                    ot = ot / max(1, covered.numel())
            ot = ot.to(dtype if not self._per_source else self.wdtype)
            if freeze_tables:
                self.register_buffer("oov_table", ot)
            else:
                self.oov_table = nn.Parameter(ot)
        else:
            self.oov_table = None
        if not hasattr(self, "coverage"):
            self.coverage = self._coverage_from_bags()

    def _build_source_bags(self):
        for k in range(self.num_sources):
            mask = self.entry_source == k
            word = torch.repeat_interleave(torch.arange(self.num_embeddings),
                                           self.bag_offsets[1:] - self.bag_offsets[:-1])[mask]
            off = torch.zeros(self.num_embeddings + 1, dtype=torch.int64)
            torch.cumsum(torch.bincount(word, minlength=self.num_embeddings), 0, out=off[1:])
            self.register_buffer(f"src{k}_offsets", off)
            self.register_buffer(f"src{k}_rows", self.entry_row[mask].contiguous())
            self.register_buffer(f"src{k}_weights", self.entry_weight[mask].contiguous())

    # -- forward --------------------------------------------------------------------------------------------

    def tables(self) -> list[torch.Tensor]:
        """The K source tables (buffers when frozen, parameters otherwise)."""
        return [getattr(self, f"table_{k}") for k in range(self.num_sources)]

    def source_weights(self) -> torch.Tensor:
        """The K source weights a (softmax of the logits when learned)."""
        return torch.softmax(self.logits, 0) if self.learn_weights else self.fixed_weights

    def _fused(self, ids: torch.Tensor) -> torch.Tensor:
        if not self._per_source:
            return gather_bags(self.tables(), self.source_weights(), self.bag_offsets, self.entry_source,
                               self.entry_row, self.entry_weight, ids, renormalize=self.renormalize,
                               sparse_grad=self.sparse, backend=self.backend)
        # per-source path (projections / attention): one single-table gather per source, then standard layers
        ys, masks = [], []
        one = torch.ones(1, dtype=self.wdtype, device=ids.device)
        for k, t in enumerate(self.tables()):
            off = getattr(self, f"src{k}_offsets")
            rows = getattr(self, f"src{k}_rows")
            y = gather_bags([t], one, off, torch.zeros_like(rows), rows, getattr(self, f"src{k}_weights"), ids,
                            renormalize=True, sparse_grad=self.sparse, backend=self.backend)
            y = y.to(self.wdtype)
            if str(k) in self.projections:
                y = self.projections[str(k)](y)
            ys.append(y)
            masks.append(off[ids + 1] > off[ids])
        y = torch.stack(ys, -2)  # [..., K, D]
        m = torch.stack(masks, -1)  # [..., K]
        if self.mode == "attention":
            score = self.scorer(y).squeeze(-1).masked_fill(~m, float("-inf"))
            alpha = torch.softmax(score, -1).nan_to_num(0.0)  # rows with no source: all zeros
        else:
            alpha = self.source_weights() * m
            if self.renormalize:
                alpha = alpha / alpha.sum(-1, keepdim=True).clamp_min(torch.finfo(alpha.dtype).tiny)
        return (alpha.unsqueeze(-1) * y).sum(-2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Embeddings of ``ids`` (any shape, int64/int32): ``[*ids.shape, D]``."""
        if ids.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"MultiSourceEmbedding: ids must be int64 or int32, got {ids.dtype}")
        ids = ids.long()
        out = self._fused(ids)
        if self.oov_table is not None:
            r = self.oov_rows[ids]
            hit = (r >= 0).unsqueeze(-1)
            out = torch.where(hit, self.oov_table[r.clamp_min(0)].to(out.dtype), out)
        return out

    # -- utilities ------------------------------------------------------------------------------------------

    @torch.no_grad()
    def materialize(self, freeze: bool = True, chunk: int = 65536, dtype: Optional[torch.dtype] = None) -> nn.Embedding:
        """The fused table as ``nn.Embedding.from_pretrained`` (one row per vocabulary word)."""
        rows = [self.forward(c) for c in torch.arange(self.num_embeddings).split(chunk)]
        w = torch.cat(rows) if rows else torch.empty(0, self.embedding_dim)
        if dtype is not None:
            w = w.to(dtype)
        return nn.Embedding.from_pretrained(w, freeze=freeze)

    def _coverage_from_bags(self) -> dict:
        counts = torch.zeros(self.num_embeddings, self.num_sources, dtype=torch.int64)
        word = torch.repeat_interleave(torch.arange(self.num_embeddings), self.bag_offsets[1:] - self.bag_offsets[:-1])
        counts.index_put_((word, self.entry_source), torch.ones_like(word), accumulate=True)
        per = [dict(name=self.names[k], found=int((counts[:, k] > 0).sum()), found_lowercase=0,
                    missing=int((counts[:, k] == 0).sum())) for k in range(self.num_sources)]
        return dict(words=self.num_embeddings, sources=per, no_source=int((counts.sum(1) == 0).sum()))

    @staticmethod
    def _coverage(sources: Sequence[Source], counts: torch.Tensor) -> dict:
        per = []
        for s in sources:
            d = dict(name=s.name)
            d.update(s.coverage)
            per.append(d)
        return dict(words=counts.shape[0], sources=per, no_source=int((counts.sum(1) == 0).sum()))

    def coverage_report(self) -> str:
        """A readable table: per source, words found, found after lowercasing, missing; words with no source."""
        c = self.coverage
        lines = [f"{'source':<16}{'found':>10}{'lowercase':>11}{'missing':>10}"]
        for s in c["sources"]:
            lines.append(f"{s['name']:<16}{s['found']:>10}{s.get('found_lowercase', 0):>11}{s['missing']:>10}")
        lines.append(f"{c['words']} words; {c['no_source']} in no source (oov policy: {self.oov})")
        return "\n".join(lines)

    def extra_repr(self) -> str:
        return (f"{self.num_embeddings}, {self.embedding_dim}, sources={self.num_sources}, mode={self.mode!r}, "
                f"renormalize={self.renormalize}, learn_weights={self.learn_weights}, "
                f"freeze_tables={self.freeze_tables}, sparse={self.sparse}, oov={self.oov!r}")


# ----------------------------------------------------------------------------------------------------------
# files: `embedfast fuse A B -o OUT`
# ----------------------------------------------------------------------------------------------------------


def fuse_files(paths: Sequence[str], out: str, *, weights: Optional[Sequence[float]] = None,
               vocab: Optional[Sequence[str]] = None, lowercase_fallback: bool = True, renormalize: bool = True,
               format: str = "auto", binary: bool = False) -> dict:
    """Fuse vectors files (same dimension) into one GloVe-format text file ``out`` (``.gz``: compressed).

    ``format``: the inputs' format, as in ``load_vectors`` (default ``"auto"``: detected); ``binary=True`` is the
    older spelling of ``format="word2vec-bin"``.

    The vocabulary is ``vocab`` (a sequence of words, or a ``{word: id}`` mapping with ids 0..V-1) or the union
    of the files' words (first file's order, then new words of the next ones). Returns the coverage dict. Words
    in no source cannot happen with the union vocabulary; with a given vocabulary they are written as zeros and
    counted in ``coverage['no_source']``. ``weights``: one per file, finite, >= 0, not all zero.

    ``out`` is checked before any file is read (its folder exists and is writable, it is not one of the
    inputs) and written atomically (``Vectors.save``): a failed write leaves a previous ``out`` as it was.
    """
    if isinstance(paths, (str, bytes)) or not isinstance(paths, collections.abc.Iterable):
        raise TypeError(f"fuse_files: paths must be a list of files, got {type(paths).__name__} {paths!r}")
    paths = [os.fspath(p) for p in paths]
    if not paths:
        raise ValueError("fuse_files: no input files given")
    out = check_output_path(out, inputs=paths, what="fuse_files: output")
    if weights is not None:
        _check_weights(weights, len(paths), torch.float64)
    words = None if vocab is None else read_vocab(vocab, "fuse_files", allow_gaps=False)
    if binary:
        if format not in ("auto", "word2vec-bin"):
            raise ValueError(f"fuse_files: binary=True contradicts format={format!r}")
        format = "word2vec-bin"
    vecs = [load_vectors(p, format=format) for p in paths]
    if words is None:
        seen: dict = {}
        for v in vecs:
            for w in v.words:
                seen.setdefault(w, None)
        words = list(seen)
    m = MultiSourceEmbedding.from_vectors(words, vecs, weights=weights, learn_weights=False,
                                          lowercase_fallback=lowercase_fallback, renormalize=renormalize)
    for s, n in zip(m.coverage["sources"], paths):
        s["name"] = n
    w = m.materialize().weight.detach().float()
    Vectors(words, w).save(out, format="glove")
    return m.coverage
