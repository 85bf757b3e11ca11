"""``Vectors.to_embedding``: an ``nn.Embedding`` for a task vocabulary, initialised from pretrained vectors, and
the :class:`EmbeddingCoverage` it reports.

The option names are the package's one vocabulary (``MultiSourceEmbedding`` takes the same): ``oov=`` is
``"normal"`` (N(0, ``oov_scale``^2)), ``"zeros"`` or ``"mean"`` (and, for vectors with fastText sub-words, the
default ``"subwords"``: a missing word's sub-word vector); ``lowercase_fallback=`` looks up
``word.lower()`` when ``word`` is absent. The former names ``scale=`` and ``lowercase=`` still work, with a
DeprecationWarning.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import warnings
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Union

import torch

from .._vocab import OOV_POLICIES, PAD_SPELLINGS, UNK_SPELLINGS, _as_int, check_oov, first_index, read_vocab

if TYPE_CHECKING:  # pragma: no cover
    from .keyed import Vectors

__all__ = ["EmbeddingCoverage", "OOV_POLICIES", "to_embedding"]

logger = logging.getLogger("embedfast.vectors")


#: Former option names of ``to_embedding`` -> their names now.
_RENAMED = {"scale": "oov_scale", "lowercase": "lowercase_fallback"}


@dataclasses.dataclass
class EmbeddingCoverage:
    """How much of a task vocabulary ``Vectors.to_embedding`` found (specials not counted)."""

    total: int  #: words of the vocabulary that are not special tokens
    found: int
    found_lowercase: int
    missing: int
    missing_words: List[str]
    unused_ids: List[int] = dataclasses.field(default_factory=list)  #: ids of a mapping that no word uses
    found_subwords: int = 0  #: words not in the vectors' dictionary that got their sub-word vector (oov="subwords")
    specials: List[str] = dataclasses.field(default_factory=list)  #: special tokens (not looked up)
    padding_idx: Optional[int] = None

    @property
    def ratio(self) -> float:
        """Fraction of the (non-special) vocabulary that got a pretrained vector."""
        return (self.found + self.found_lowercase + self.found_subwords) / self.total if self.total else 1.0

    def __str__(self) -> str:
        out = (f"{self.found + self.found_lowercase + self.found_subwords}/{self.total} words have vectors "
               f"({100 * self.ratio:.1f}%): {self.found} exact, {self.found_lowercase} after lowercasing, "
               + (f"{self.found_subwords} from sub-words, " if self.found_subwords else "") + f"{self.missing} missing")
        if self.specials:
            out += f"; specials {self.specials}"
        if self.padding_idx is not None:
            out += f"; padding_idx {self.padding_idx}"
        if self.unused_ids:
            out += f"; {len(self.unused_ids)} ids without a word (e.g. {self.unused_ids[:5]})"
        return out


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


def _renamed_options(old: Dict[str, Any], given: Dict[str, Any]) -> Dict[str, Any]:
    """The values of the former option names in ``old``, under their new names (a DeprecationWarning each);
    an unknown name, or a former name given together with its new one, is a TypeError."""
    out = {}
    for name, value in old.items():
        new = _RENAMED.get(name)
        if new is None:
            raise TypeError(f"to_embedding() got an unexpected keyword argument {name!r}")
        if given[new] is not None:
            raise TypeError(f"to_embedding: give {new}= only ({name}= is its former name)")
        warnings.warn(f"to_embedding({name}=...) is deprecated; use {new}=...", DeprecationWarning, stacklevel=4)
        out[new] = value
    return out


def _padding_row(stoi: Dict[str, int], rows: int, padding_idx: Union[int, None, str],
                 pad_token: Optional[str], what: str) -> Optional[int]:
    """The padding row chosen by ``padding_idx`` / ``pad_token`` (see :func:`to_embedding`)."""
    if pad_token is not None and not isinstance(pad_token, str):
        raise TypeError(f"{what}: pad_token must be a str, got {type(pad_token).__name__}")
    if isinstance(padding_idx, str):
        if padding_idx != "auto":
            raise ValueError(f"{what}: padding_idx must be an int, None or 'auto', got {padding_idx!r}")
        if pad_token is not None:
            if pad_token not in stoi:
                raise ValueError(f"{what}: pad_token {pad_token!r} is not in vocab (add it to vocab or to "
                                 "specials=)")
            return stoi[pad_token]
        found_pads = [w for w in PAD_SPELLINGS if w in stoi]
        if len(found_pads) > 1:
            raise ValueError(f"{what}: vocab holds several padding tokens {found_pads}; say which one is "
                             "the padding row with pad_token= (or padding_idx=)")
        return stoi[found_pads[0]] if found_pads else None
    if padding_idx is None:
        if pad_token is not None:
            raise ValueError(f"{what}: pad_token={pad_token!r} conflicts with padding_idx=None")
        return None
    pad = _as_int(padding_idx)
    if pad is None:
        raise TypeError(f"{what}: padding_idx must be an int, None or 'auto', got {type(padding_idx).__name__}")
    if not 0 <= pad < rows:
        raise ValueError(f"{what}: padding_idx={pad} is outside the {rows} rows of the embedding")
    if pad_token is not None and stoi.get(pad_token) != pad:
        raise ValueError(f"{what}: pad_token={pad_token!r} (id {stoi.get(pad_token)}) and "
                         f"padding_idx={pad} disagree")
    return pad


def _initial_weight(v: "Vectors", rows: int, oov: str, oov_scale: float, dtype: torch.dtype,
                    generator: Optional[torch.Generator]) -> torch.Tensor:
    """A ``[rows, D]`` weight filled by the ``oov`` policy."""
    D = v.dim
    _check_rows_fit(rows, D, torch.empty(0, dtype=dtype).element_size(), "to_embedding")
    if oov == "normal":
        return (torch.randn(rows, D, generator=generator, dtype=torch.float32) * oov_scale).to(dtype)
    if oov == "zeros":
        return torch.zeros(rows, D, dtype=dtype)
    mean = v.matrix.double().mean(0) if len(v) else torch.zeros(D, dtype=torch.float64)
    return mean.to(dtype).expand(rows, D).clone()


def to_embedding(v: "Vectors", vocab: Union[Sequence[str], Mapping[str, int]], *, oov: Optional[str] = None,
                 oov_scale: Optional[float] = None, freeze: bool = True, specials: Optional[Sequence[str]] = None,
                 padding_idx: Union[int, None, str] = "auto", pad_token: Optional[str] = None,
                 lowercase_fallback: Optional[bool] = None, generator: Optional[torch.Generator] = None,
                 dtype: Optional[torch.dtype] = None, **renamed: Any) -> torch.nn.Embedding:
    """An ``nn.Embedding`` for a task vocabulary, initialised from the vectors ``v``.

    **freeze defaults to True** (as ``nn.Embedding.from_pretrained``): the weight does not require grad. Pass
    ``freeze=False`` to fine-tune the embedding. (Before this release the default was False.)

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
        oov: initialisation of words not found, specials and unused ids: ``"normal"`` (N(0, oov_scale^2)),
            ``"zeros"``, or ``"mean"`` (mean of all pretrained vectors); ``"subwords"`` (the default for vectors
            with fastText sub-words, e.g. loaded from a ``.bin``; else the default is ``"normal"``): a word
            not found gets its sub-word vector, fastText's vector for an unseen word (counted in
            ``coverage.found_subwords``); words with no n-gram, specials and unused ids get ``"normal"``.
        oov_scale: standard deviation for ``oov="normal"`` (finite, >= 0; default 0.6). Former name ``scale``
            (deprecated).
        freeze: True (default): the weight does not require grad; False: it is trained.
        specials: special tokens (see above); None: recognise the usual spellings, add nothing.
        padding_idx, pad_token: the padding row (see above).
        lowercase_fallback: look up ``word.lower()`` when ``word`` itself is absent (default True). Former
            name ``lowercase`` (deprecated).
        generator: random generator for ``oov="normal"`` (reproducible initialisation).
        dtype: weight dtype (default: the matrix dtype).

    Returns:
        ``nn.Embedding`` with extra attributes ``itos`` (list of words by id, None at unused ids), ``stoi``
        (dict) and ``coverage`` (an :class:`EmbeddingCoverage`: found / found after lowercasing / missing,
        unused ids, specials, padding_idx).
    """
    what = "to_embedding"
    if renamed:
        old = _renamed_options(renamed, {"oov_scale": oov_scale, "lowercase_fallback": lowercase_fallback})
        oov_scale = old.get("oov_scale", oov_scale)
        lowercase_fallback = old.get("lowercase_fallback", lowercase_fallback)
    oov_scale = 0.6 if oov_scale is None else oov_scale
    lowercase_fallback = True if lowercase_fallback is None else lowercase_fallback
    if oov is None:
        oov = "subwords" if v.subwords is not None else "normal"
    use_subwords = oov == "subwords"
    if use_subwords:
        if v.subwords is None:
            raise ValueError(f"{what}: oov='subwords' needs vectors with sub-words (a fastText .bin loaded with "
                             "load_vectors); these have none")
        oov = "normal"
    check_oov(oov, oov_scale, what)
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
    pad = _padding_row(stoi, len(words), padding_idx, pad_token, what)
    if pad is not None and words[pad] is not None:
        special_set.add(words[pad])  # type: ignore[arg-type]
    key_to_index = v.key_to_index
    rows_to: List[int] = []
    rows_from: List[int] = []
    found = found_lower = 0
    missing: List[str] = []
    missing_ids: List[int] = []
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
        elif lowercase_fallback and (j := key_to_index.get(w.lower())) is not None:
            found_lower += 1
        else:
            missing.append(w)
            missing_ids.append(i)
            continue
        rows_to.append(i)
        rows_from.append(j)
    dtype = dtype or v.matrix.dtype
    weight = _initial_weight(v, len(words), oov, oov_scale, dtype, generator)
    if rows_to:
        weight[torch.tensor(rows_to)] = v.matrix[torch.tensor(rows_from)].to(dtype)
    found_sub = 0
    if use_subwords and missing:
        vecs = v.vectors_for(missing)
        has = vecs.ne(0).any(1)  # fastText's vector of a word with no n-gram is zero: left to `oov`
        if bool(has.any()):
            weight[torch.tensor(missing_ids)[has]] = vecs[has].to(dtype)
        found_sub = int(has.sum())
        missing = [w for w, h in zip(missing, has.tolist()) if not h]
    if pad is not None:
        weight[pad] = 0
    if unused:
        logger.warning("to_embedding: %d ids of the vocab mapping have no word (e.g. %s); their rows get the "
                       "'%s' initialisation", len(unused), unused[:5], oov)
    emb = torch.nn.Embedding.from_pretrained(weight, freeze=freeze, padding_idx=pad)
    emb.itos = words  # type: ignore[assignment]
    emb.stoi = stoi  # type: ignore[assignment]
    specials_used = [w for w in words if w is not None and w in special_set]
    emb.coverage = EmbeddingCoverage(total=found + found_lower + found_sub + len(missing), found=found,
                                     found_lowercase=found_lower, missing=len(missing),
                                     missing_words=missing, unused_ids=unused, specials=specials_used,
                                     padding_idx=pad, found_subwords=found_sub)  # type: ignore[assignment]
    return emb
