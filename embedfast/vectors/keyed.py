"""The keyed-vectors API: :class:`Vectors`, a vocabulary of words and their ``[N, D]`` matrix.

Lookups, similarity search (:mod:`embedfast.vectors.similarity`), ``nn.Embedding`` building
(:mod:`embedfast.vectors.embedding`), gensim interop and saving (:mod:`embedfast.vectors.writers`). gensim's
``KeyedVectors`` names work too: ``index_to_key``, ``key_to_index``, ``vectors``, ``vector_size``,
``v[["a", "b"]]``, ``most_similar_cosmul``, ``doesnt_match``, ``n_similarity``, ``evaluate_word_analogies``.
"""
from __future__ import annotations

import collections.abc
import os
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from .._vocab import _short, first_index, unit_rows
from . import embedding as _embedding
from . import similarity as _similarity
from . import subwords as _subwords
from . import writers as _writers
from .native import LazyWords
from .subwords import Subwords

if TYPE_CHECKING:  # pragma: no cover
    from .io import LoadReport

__all__ = ["Vectors"]

PathLike = Union[str, "os.PathLike[str]"]


def _doc_from(func: Callable) -> Callable:
    """A method decorator: the method's docstring is ``func``'s (the function doing its work)."""
    def decorate(method: Callable) -> Callable:
        method.__doc__ = func.__doc__
        return method
    return decorate


class Vectors:
    """A vocabulary of words and their vectors (an ``[N, D]`` tensor).

    Args:
        words: the N words, in row order. If a word occurs twice, lookups return its first row.
        matrix: ``[N, D]`` floating-point tensor (kept as given, not copied).

        subwords: fastText sub-words (:class:`~embedfast.vectors.subwords.Subwords`; set by loading a fastText
            ``.bin``): then ``v[word]`` works for any word, from its character n-grams.

    Lookups: ``len(v)``, ``word in v`` (in the dictionary), ``v[word]`` (row; with sub-words any word),
    ``v[["a", "b"]]`` (rows stacked, ``[2, D]``), ``v.vectors_for(words)``, ``v.index(word)``,
    ``v.get_index(word, default)``. The word -> row dict is built on the first lookup. gensim's names:
    ``index_to_key`` (= ``words``), ``key_to_index``, ``vectors`` (= ``matrix``), ``vector_size`` (= ``dim``).
    """

    def __init__(self, words: Sequence[str], matrix: torch.Tensor, *, report: Optional["LoadReport"] = None,
                 subwords: Optional[Subwords] = None):
        if not isinstance(words, LazyWords):
            if isinstance(words, (str, bytes)) or not isinstance(words, collections.abc.Iterable):
                raise TypeError(f"Vectors: words must be a sequence of str, got {type(words).__name__}")
            words = words if isinstance(words, list) else list(words)
            if not all(type(w) is str for w in words):
                i, w = next((i, w) for i, w in enumerate(words) if not isinstance(w, str))
                raise TypeError(f"Vectors: words[{i}] must be a str, got {type(w).__name__} {_short(w)}")
        self._setup(words, matrix, report, subwords)

    @classmethod
    def _trusted(cls, words: Any, matrix: torch.Tensor, report: Optional["LoadReport"],
                 subwords: Optional[Subwords] = None) -> "Vectors":
        """For the loader: words known to be a list of str (or LazyWords)."""
        self = cls.__new__(cls)
        self._setup(words, matrix, report, subwords)
        return self

    def _setup(self, words: Any, matrix: torch.Tensor, report: Optional["LoadReport"],
               subwords: Optional[Subwords]) -> None:
        if not isinstance(matrix, torch.Tensor):
            raise TypeError(f"Vectors: matrix must be a torch.Tensor, got {type(matrix).__name__}")
        if matrix.dim() != 2:
            raise ValueError(f"Vectors: matrix must be 2-D [N, D], got shape {tuple(matrix.shape)}")
        if not matrix.is_floating_point():
            raise ValueError(f"Vectors: matrix must be a floating-point tensor, got {matrix.dtype}")
        self._lazy: Optional[LazyWords] = words if isinstance(words, LazyWords) else None
        if self._lazy is not None:
            n_words, words = self._lazy.n, None
        else:
            words = words if isinstance(words, list) else list(words)
            n_words = len(words)
        if n_words != matrix.shape[0]:
            raise ValueError(f"Vectors: {n_words} words but the matrix has {matrix.shape[0]} rows "
                             f"(shape {tuple(matrix.shape)})")
        self._word_list: Optional[List[str]] = words
        self._matrix = matrix
        self._index: Optional[Dict[str, int]] = None
        self._normed: Optional[torch.Tensor] = None
        self.report: Optional["LoadReport"] = report
        if subwords is not None and (not isinstance(subwords, Subwords) or subwords.word_rows.shape != matrix.shape):
            raise ValueError(f"Vectors: subwords must be a Subwords whose word_rows have the matrix's shape "
                             f"{tuple(matrix.shape)}, got {subwords!r:.80}")
        self.subwords: Optional[Subwords] = subwords

    # ---- basic access (gensim's names alongside) -------------------------------------------------------
    @property
    def words(self) -> List[str]:
        """The words, in row order."""
        if self._word_list is None:
            assert self._lazy is not None
            self._word_list, self._lazy = self._lazy.decode(), None
        return self._word_list

    index_to_key = words  # gensim's name

    @property
    def matrix(self) -> torch.Tensor:
        """The ``[N, D]`` vectors (also ``vectors``, gensim's name). Assign a ``[N, D]`` tensor to replace it."""
        return self._matrix

    @matrix.setter
    def matrix(self, value: torch.Tensor) -> None:
        if not isinstance(value, torch.Tensor) or value.dim() != 2 or value.shape[0] != len(self):
            raise ValueError(f"Vectors.matrix: expected a [{len(self)}, D] tensor, got "
                             f"{tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__}")
        self._matrix = value
        self._normed = None

    vectors = matrix  # gensim's name

    @property
    def dim(self) -> int:
        """Vector dimension D (also ``vector_size``, gensim's name)."""
        return int(self._matrix.shape[1])

    vector_size = dim

    @property
    def dtype(self) -> torch.dtype:
        return self._matrix.dtype

    @property
    def key_to_index(self) -> Dict[str, int]:
        """word -> row (first occurrence), built on first use."""
        if self._index is None:
            self._index = first_index(self.words)
        return self._index

    def __len__(self) -> int:
        return int(self._matrix.shape[0])

    def __contains__(self, word: object) -> bool:
        return word in self.key_to_index

    def __getitem__(self, key: Union[str, Sequence[str]]) -> torch.Tensor:
        """``v["word"]``: its row ``[D]``; ``v[["a", "b"]]``: their rows stacked, ``[2, D]`` (as gensim). With
        sub-words, words not in the dictionary get their sub-word vectors."""
        if isinstance(key, str):
            return self.get_vector(key)
        if isinstance(key, (list, tuple)):
            return self.vectors_for(key)
        raise TypeError(f"Vectors[...]: expected a word or a list of words, got {type(key).__name__}")

    @_doc_from(_subwords.vectors_for)
    def vectors_for(self, words: Sequence[str]) -> torch.Tensor:
        return _subwords.vectors_for(self, words)

    def __iter__(self):
        return iter(self.words)

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
        """Row of ``word`` (unit length with ``norm=True``); with sub-words any word (fastText's vector)."""
        i = self.key_to_index.get(word) if self.subwords is not None else self.index(word)
        if i is not None:
            return self.normed()[i] if norm else self._matrix[i]
        vec = _subwords.vectors_for(self, [word])
        return unit_rows(vec if vec.dtype in (torch.float32, torch.float64) else vec.float())[0] if norm else vec[0]

    def to(self, dtype: torch.dtype) -> "Vectors":
        """A copy with the matrix converted to ``dtype`` (words shared)."""
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"Vectors.to: dtype must be a floating-point torch.dtype, got {dtype!r}")
        sw = None if self.subwords is None else self.subwords.to(dtype)
        out = Vectors._trusted(self.words, self._matrix.to(dtype), self.report, sw)
        out._index = self._index
        return out

    # ---- similarity (embedfast.vectors.similarity) --------------------------------------------------------
    def normed(self) -> torch.Tensor:
        """Rows scaled to unit L2 norm (float32 or float64; zero rows stay zero). Cached."""
        if self._normed is None:
            m = self._matrix
            self._normed = unit_rows(m if m.dtype in (torch.float32, torch.float64) else m.float())
        return self._normed

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(self.get_vector(a, norm=True) @ self.get_vector(b, norm=True))

    @_doc_from(_similarity.most_similar)
    def most_similar(self, positive: Any = (), negative: Any = (), topn: Optional[int] = 10,
                     restrict_vocab: Optional[int] = None) -> Any:
        return _similarity.most_similar(self, positive, negative, topn, restrict_vocab)

    @_doc_from(_similarity.most_similar_cosmul)
    def most_similar_cosmul(self, positive: Any = (), negative: Any = (), topn: Optional[int] = 10,
                            restrict_vocab: Optional[int] = None) -> Any:
        return _similarity.most_similar_cosmul(self, positive, negative, topn, restrict_vocab)

    @_doc_from(_similarity.doesnt_match)
    def doesnt_match(self, words: Sequence[str]) -> str:
        return _similarity.doesnt_match(self, words)

    @_doc_from(_similarity.n_similarity)
    def n_similarity(self, ws1: Sequence[str], ws2: Sequence[str]) -> float:
        return _similarity.n_similarity(self, ws1, ws2)

    def evaluate_word_analogies(self, analogies: PathLike, restrict_vocab: Optional[int] = 300000,
                                case_insensitive: bool = True, dummy4unknown: bool = False,
                                similarity_function: str = "most_similar") -> Any:
        """gensim's ``evaluate_word_analogies``: ``(accuracy, sections)``; see
        :func:`embedfast.evaluate.evaluate_word_analogies`."""
        from .. import evaluate

        return evaluate.evaluate_word_analogies(self, analogies, restrict_vocab=restrict_vocab,
                                                case_insensitive=case_insensitive, dummy4unknown=dummy4unknown,
                                                similarity_function=similarity_function)

    # ---- nn.Embedding (embedfast.vectors.embedding) -------------------------------------------------------
    @_doc_from(_embedding.to_embedding)
    def to_embedding(self, vocab: Union[Sequence[str], Mapping[str, int]], *, oov: Optional[str] = None,
                     oov_scale: Optional[float] = None, freeze: bool = True,
                     specials: Optional[Sequence[str]] = None, padding_idx: Union[int, None, str] = "auto",
                     pad_token: Optional[str] = None, lowercase_fallback: Optional[bool] = None,
                     generator: Optional[torch.Generator] = None, dtype: Optional[torch.dtype] = None,
                     **renamed: Any) -> torch.nn.Embedding:
        return _embedding.to_embedding(self, vocab, oov=oov, oov_scale=oov_scale, freeze=freeze, specials=specials,
                                       padding_idx=padding_idx, pad_token=pad_token,
                                       lowercase_fallback=lowercase_fallback, generator=generator, dtype=dtype,
                                       **renamed)

    # ---- gensim --------------------------------------------------------------------------------------------
    @classmethod
    def from_gensim(cls, kv: Any) -> "Vectors":
        """Vectors from a gensim ``KeyedVectors`` (the matrix shares memory with ``kv.vectors`` if writable)."""
        arr = np.ascontiguousarray(kv.vectors)
        if not arr.flags.writeable:
            arr = arr.copy()
        return cls([str(k) for k in kv.index_to_key], torch.from_numpy(arr))

    def to_gensim(self) -> Any:
        """A gensim ``KeyedVectors`` with these words and vectors (matrix shared when it is float32/64 on CPU)."""
        try:
            from gensim.models import KeyedVectors
        except ImportError as exc:
            raise ImportError("this needs gensim: pip install gensim (or pip install 'embedfast[gensim]')") from exc
        m = self._matrix.detach().cpu()
        arr = (m if m.dtype in (torch.float32, torch.float64) else m.float()).contiguous().numpy()
        kv = KeyedVectors(self.dim, count=0, dtype=arr.dtype)
        kv.index_to_key = list(self.words)
        kv.key_to_index = dict(self.key_to_index)
        kv.vectors = arr
        kv.next_index = len(self)
        return kv

    # ---- save / load ---------------------------------------------------------------------------------------
    @_doc_from(_writers.save_vectors)
    def save(self, path: PathLike, format: str = "native", *, precision: Optional[int] = None) -> None:
        _writers.save_vectors(self, path, format, precision=precision)

    @classmethod
    def load(cls, path: PathLike, **kwargs: Any) -> "Vectors":
        """Same as :func:`embedfast.load_vectors`."""
        from .io import load_vectors

        return load_vectors(path, **kwargs)
