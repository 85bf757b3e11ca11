"""Coverage of a target vocabulary by fusion sources: per source (``SourceCoverage``) and overall
(``FusionCoverage``).

The field names are those of ``embedfast.Vectors.to_embedding``'s ``EmbeddingCoverage`` where the meaning is the
same (``total``, ``found``, ``found_lowercase``, ``missing``, ``missing_words``, ``ratio``). The old form, the
dicts these objects replace, still reads the same: ``coverage["found"]``, ``coverage["sources"][0]["missing"]``,
``coverage["words"]`` (= ``total``), ``coverage["no_source"]`` (= ``missing``), a builder's own counts such as
``coverage["pieces"]`` (kept in ``extra``), ``.get``, ``in`` and ``as_dict()``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Sequence

import torch

__all__ = ["SourceCoverage", "FusionCoverage"]


class _OldForm:
    """Item access of the dicts of old (``cov["found"]``): fields, then their old names, then ``extra``."""

    _OLD_NAMES: Dict[str, str] = {}

    def _field(self, key: str) -> str:
        key = self._OLD_NAMES.get(key, key)
        return key if key in self.__dataclass_fields__ and key != "extra" else ""

    def __getitem__(self, key: str) -> Any:
        name = self._field(key)
        if name:
            return getattr(self, name)
        return self.extra[key]

    def __setitem__(self, key: str, value: Any) -> None:
        name = self._field(key)
        if name:
            setattr(self, name, value)
        else:
            self.extra[key] = value

    def __contains__(self, key: str) -> bool:
        return bool(self._field(key)) or key in self.extra

    def get(self, key: str, default: Any = None) -> Any:
        """``self[key]``, or ``default`` when there is no such count (as ``dict.get``)."""
        return self[key] if key in self else default

    def keys(self) -> List[str]:
        """The keys of the old dict form (``as_dict()``)."""
        return list(self.as_dict())


@dataclass
class SourceCoverage(_OldForm):
    """How many target words one source has.

    ``found``: words found as written; ``found_lowercase``: found only after lower-casing (``lowercase_fallback``);
    ``missing``: the rest of the ``total`` target words; ``missing_words``: those words, when the builder knows
    the words (empty otherwise). ``extra``: the builder's own counts (``subword_source``: ``pieces``,
    ``pieces_found``; ``huggingface_source``: ``specials``, ``unknown_pieces``; ``alignment_source``:
    ``pairs_dropped``, ``seed_pairs_used``, ``seed_pairs_dropped``).
    """

    name: str
    total: int
    found: int
    found_lowercase: int = 0
    missing: int = 0
    missing_words: List[str] = field(default_factory=list)
    extra: Dict[str, int] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """Fraction of the target words this source has (1.0 for an empty vocabulary)."""
        return (self.found + self.found_lowercase) / self.total if self.total else 1.0

    def as_dict(self) -> Dict[str, Any]:
        """The old dict form: ``name``, ``found``, ``found_lowercase``, ``missing`` and the ``extra`` counts."""
        return dict(name=self.name, found=self.found, found_lowercase=self.found_lowercase, missing=self.missing,
                    **self.extra)

    def __str__(self) -> str:
        return (f"{self.name}: {self.found + self.found_lowercase}/{self.total} words ({100 * self.ratio:.1f}%): "
                f"{self.found} exact, {self.found_lowercase} after lowercasing, {self.missing} missing")


@dataclass
class FusionCoverage(_OldForm):
    """How much of a target vocabulary the fused sources cover.

    ``total``: target words (old key ``"words"``); ``found``: words in at least one source; ``missing``: words in
    no source (old key ``"no_source"``; they get the OOV policy); ``sources``: one ``SourceCoverage`` each.
    """

    total: int
    found: int
    missing: int
    sources: List[SourceCoverage] = field(default_factory=list)
    extra: Dict[str, int] = field(default_factory=dict)

    _OLD_NAMES = {"words": "total", "no_source": "missing"}

    @property
    def ratio(self) -> float:
        """Fraction of the target words in at least one source (1.0 for an empty vocabulary)."""
        return self.found / self.total if self.total else 1.0

    @property
    def found_lowercase(self) -> int:
        """Summed over the sources: words found only after lower-casing."""
        return sum(s.found_lowercase for s in self.sources)

    def as_dict(self) -> Dict[str, Any]:
        """The old dict form: ``words``, ``sources`` (a dict each) and ``no_source``."""
        return dict(words=self.total, sources=[s.as_dict() for s in self.sources], no_source=self.missing, **self.extra)

    def report(self, oov: str = "") -> str:
        """A readable table: per source, words found, found after lowercasing, missing; words with no source."""
        lines = [f"{'source':<16}{'found':>10}{'lowercase':>11}{'missing':>10}"]
        for s in self.sources:
            lines.append(f"{s.name:<16}{s.found:>10}{s.found_lowercase:>11}{s.missing:>10}")
        lines.append(f"{self.total} words; {self.missing} in no source" + (f" (oov policy: {oov})" if oov else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return (f"{self.found}/{self.total} words in at least one source ({100 * self.ratio:.1f}%), "
                f"{self.missing} in none")


def source_coverage(name: str, total: int, found: int, found_lowercase: int = 0,
                    missing_words: Sequence[str] = (), **extra: int) -> SourceCoverage:
    """A ``SourceCoverage`` whose ``missing`` is ``total - found - found_lowercase``."""
    return SourceCoverage(name, total, found, found_lowercase, total - found - found_lowercase, list(missing_words),
                          dict(extra))


def fusion_coverage(counts: torch.Tensor, sources: Sequence[SourceCoverage]) -> FusionCoverage:
    """The overall coverage from the entry counts per (word, source) ``counts`` [V, K]."""
    none = int((counts.sum(1) == 0).sum()) if counts.numel() else counts.shape[0]
    return FusionCoverage(counts.shape[0], counts.shape[0] - none, none, list(sources))


def coverage_from_bags(bag_offsets: torch.Tensor, entry_source: torch.Tensor, names: Sequence[str]) -> FusionCoverage:
    """Coverage of bags built directly (``from_bags`` / an index): a word is found in a source with an entry."""
    V, K = bag_offsets.numel() - 1, len(names)
    counts = torch.zeros(V, K, dtype=torch.int64)
    word = torch.repeat_interleave(torch.arange(V), bag_offsets[1:] - bag_offsets[:-1])
    counts.index_put_((word, entry_source), torch.ones_like(word), accumulate=True)
    per = [source_coverage(names[k], V, int((counts[:, k] > 0).sum())) for k in range(K)]
    return fusion_coverage(counts, per)


def renamed(cov: SourceCoverage, name: str) -> SourceCoverage:
    """``cov`` under another source name."""
    return dataclasses.replace(cov, name=name)


def of_source(cov: Any, name: str, total: int, found: int) -> SourceCoverage:
    """A source's ``SourceCoverage`` named ``name``: its own (a ``SourceCoverage``, or a dict of the old form), or,
    when it has none, ``found`` of ``total`` words counted from its bags."""
    if cov is None:
        return source_coverage(name, total, found)
    if isinstance(cov, Mapping):
        extra = {k: v for k, v in cov.items() if k not in ("name", "found", "found_lowercase", "missing")}
        return source_coverage(name, total, cov.get("found", found), cov.get("found_lowercase", 0), **extra)
    return renamed(cov, name)
