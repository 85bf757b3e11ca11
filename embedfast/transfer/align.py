"""Word alignment for the transfer pipeline: links per sentence pair, from eflomal (both directions), from
Pharaoh files of any aligner, symmetrised (intersection, union, grow-diag-final-and), counted into
p(source word | target word), or taken from a bilingual dictionary.

Links are lists, one per sentence pair, of ``(i, j)``: word i of the source side with word j of the target
side (Pharaoh ``i-j``). An alignment table maps a target word to ``[(source word, p), ...]``, the form
``MultiSourceEmbedding.from_alignment`` takes.

eflomal draws its random state from ``/dev/urandom`` and has no seed: two runs give slightly different links
(see benchmarks/RESULTS.md, issue 12, for how much); save them (``save_links``) and reuse the file
(``read_pharaoh``) when a run must be repeated exactly.
"""
from __future__ import annotations

import collections
import math
import os
import tempfile
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from .._io import atomic_write, check_input_file
from .text import read_lines

__all__ = ["Links", "eflomal_links", "read_pharaoh", "write_pharaoh", "symmetrize", "LinkCounts", "count_links",
           "read_dictionary", "SYMMETRIZATIONS"]

PathLike = Union[str, "os.PathLike[str]"]
Links = List[List[Tuple[int, int]]]
SYMMETRIZATIONS = ("grow-diag-final-and", "intersection", "union", "forward", "reverse")


def _parse_links(line: str, where: str) -> List[Tuple[int, int]]:
    out = []
    for tok in line.split():
        a, sep, b = tok.partition("-")
        if not sep or not a.isdigit() or not b.isdigit():
            raise ValueError(f"{where}: {tok!r} is not a Pharaoh link i-j (two non-negative integers)")
        out.append((int(a), int(b)))
    return out


def read_pharaoh(path: PathLike, *, source: Optional[Sequence[Sequence[str]]] = None,
                 target: Optional[Sequence[Sequence[str]]] = None) -> Links:
    """Links of a Pharaoh file (one line per sentence pair: ``i-j`` pairs, 0-based source-target). Given the
    sentences, the file must have one line per pair and every index must fall inside its sentence; errors
    name the file and line."""
    p = check_input_file(path, "read_pharaoh")
    links: Links = []
    for n, line in enumerate(read_lines(p, "read_pharaoh"), 1):
        where = f"{p}, line {n}"
        ls = _parse_links(line, where)
        if source is not None and target is not None:
            if n > len(source):
                raise ValueError(f"{where}: the alignment has more lines than the {len(source)} sentence pairs")
            for i, j in ls:
                if i >= len(source[n - 1]) or j >= len(target[n - 1]):
                    raise ValueError(f"{where}: link {i}-{j} is outside the pair's {len(source[n - 1])} source "
                                     f"and {len(target[n - 1])} target words")
        links.append(ls)
    if source is not None and len(links) != len(source):
        raise ValueError(f"{p}: {len(links)} alignment lines but {len(source)} sentence pairs")
    return links


def write_pharaoh(path: PathLike, links: Links) -> None:
    """Save links as a Pharaoh file (atomically)."""
    with atomic_write(path, "wb") as f:
        for ls in links:
            f.write((" ".join(f"{i}-{j}" for i, j in ls) + "\n").encode())


def eflomal_links(source: Sequence[Sequence[str]], target: Sequence[Sequence[str]], *, model: int = 3,
                  n_samplers: int = 3, iterations: Optional[int] = None, null_prior: float = 0.2,
                  quiet: bool = True) -> Tuple[Links, Links]:
    """(forward, reverse) links of the sentence pairs from eflomal (pip install eflomal, or
    ``embedfast[align]``), both in source-target order. ``model``: 1 IBM1, 2 +HMM, 3 +fertility (eflomal's
    default); ``iterations``: eflomal's own schedule when None. Not seedable (see the module notes)."""
    if len(source) != len(target):
        raise ValueError(f"eflomal_links: {len(source)} source sentences but {len(target)} target sentences")
    if not source:
        raise ValueError("eflomal_links: no sentence pairs")
    try:
        import eflomal
    except ImportError as exc:
        raise ImportError("eflomal_links needs the `eflomal` package: pip install eflomal "
                          "(or pip install 'embedfast[align]')") from exc
    kwargs = {} if iterations is None else {"n_iterations": (iterations, iterations, iterations)}
    aligner = eflomal.Aligner(model=model, n_samplers=n_samplers, null_prior=null_prior, **kwargs)
    with tempfile.TemporaryDirectory(prefix="embedfast-eflomal-") as d:
        fwd, rev = os.path.join(d, "fwd"), os.path.join(d, "rev")
        aligner.align([" ".join(s) + "\n" for s in source], [" ".join(s) + "\n" for s in target],
                      links_filename_fwd=fwd, links_filename_rev=rev, quiet=quiet)
        out = []
        for f in (fwd, rev):
            ls = [_parse_links(line, f"eflomal output, line {n}") for n, line in enumerate(read_lines(f), 1)]
            if len(ls) != len(source):
                raise RuntimeError(f"eflomal_links: eflomal wrote {len(ls)} lines for {len(source)} pairs")
            out.append(ls)
    return out[0], out[1]


_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def _gdfa(fwd: Set[Tuple[int, int]], rev: Set[Tuple[int, int]]) -> Set[Tuple[int, int]]:
    """grow-diag-final-and of one sentence pair (Koehn et al. 2003, as in Moses' symmetriser)."""
    a = fwd & rev
    union = fwd | rev
    src_aligned = {i for i, _ in a}
    tgt_aligned = {j for _, j in a}
    added = True
    while added:
        added = False
        for i, j in sorted(a):
            for di, dj in _NEIGHBOURS:
                p = (i + di, j + dj)
                if p in union and p not in a and (p[0] not in src_aligned or p[1] not in tgt_aligned):
                    a.add(p)
                    src_aligned.add(p[0])
                    tgt_aligned.add(p[1])
                    added = True
    for side in (fwd, rev):  # final-and: a link whose words are both still unaligned
        for i, j in sorted(side):
            if (i, j) not in a and i not in src_aligned and j not in tgt_aligned:
                a.add((i, j))
                src_aligned.add(i)
                tgt_aligned.add(j)
    return a


def symmetrize(forward: Links, reverse: Links, method: str = "grow-diag-final-and") -> Links:
    """One set of links per pair from the two directions: ``grow-diag-final-and`` (default), ``intersection``,
    ``union``, or one direction (``forward`` / ``reverse``)."""
    if method not in SYMMETRIZATIONS:
        raise ValueError(f"symmetrize: method must be one of {SYMMETRIZATIONS}, got {method!r}")
    if len(forward) != len(reverse):
        raise ValueError(f"symmetrize: {len(forward)} forward lines but {len(reverse)} reverse lines")
    out: Links = []
    for f, r in zip(forward, reverse):
        fs, rs = set(f), set(r)
        s = {"intersection": lambda: fs & rs, "union": lambda: fs | rs, "forward": lambda: fs,
             "reverse": lambda: rs, "grow-diag-final-and": lambda: _gdfa(fs, rs)}[method]()
        out.append(sorted(s))
    return out


@dataclass
class LinkCounts:
    """How often each (target word, source word) pair was linked, and each target word's total links."""

    pairs: Dict[str, collections.Counter] = field(default_factory=dict)
    links_out_of_range: int = 0

    def links(self, target_word: str) -> int:
        c = self.pairs.get(target_word)
        return sum(c.values()) if c else 0

    def table(self, *, min_links: int = 1, min_prob: float = 0.0, stopwords: Iterable[str] = (),
              source_stopwords: Iterable[str] = ()) -> Dict[str, List[Tuple[str, float]]]:
        """The alignment table: target word -> [(source word, p(source | target)), ...], most probable first.

        Links to ``source_stopwords`` are left out before p is counted; target words in ``stopwords`` or with
        fewer than ``min_links`` links are left out; pairs with p < ``min_prob`` are dropped (p is not
        renormalised: the carrying step does that)."""
        if isinstance(min_links, bool) or not isinstance(min_links, int) or min_links < 1:
            raise ValueError(f"LinkCounts.table: min_links must be an int >= 1, got {min_links!r}")
        if not (isinstance(min_prob, (int, float)) and math.isfinite(min_prob) and 0 <= min_prob <= 1):
            raise ValueError(f"LinkCounts.table: min_prob must be in [0, 1], got {min_prob!r}")
        stop, sstop = set(stopwords), set(source_stopwords)
        out: Dict[str, List[Tuple[str, float]]] = {}
        for t, c in self.pairs.items():
            if t in stop:
                continue
            items = [(s, n) for s, n in c.items() if s not in sstop]
            total = sum(n for _, n in items)
            if total < min_links:
                continue
            row = sorted(((s, n / total) for s, n in items if n / total >= min_prob), key=lambda x: (-x[1], x[0]))
            if row:
                out[t] = row
        return out


def count_links(source: Sequence[Sequence[str]], target: Sequence[Sequence[str]], links: Links) -> LinkCounts:
    """Link counts of (target word, source word) over all pairs."""
    if not (len(source) == len(target) == len(links)):
        raise ValueError(f"count_links: {len(source)} source sentences, {len(target)} target sentences and "
                         f"{len(links)} link lines must be equal")
    pairs: Dict[str, collections.Counter] = {}
    bad = 0
    for s, t, ls in zip(source, target, links):
        for i, j in ls:
            if i >= len(s) or j >= len(t):
                bad += 1
                continue
            c = pairs.get(t[j])
            if c is None:
                c = pairs[t[j]] = collections.Counter()
            c[s[i]] += 1
    return LinkCounts(pairs, bad)


def read_dictionary(path: PathLike, *, reverse: bool = False) -> Dict[str, List[Tuple[str, float]]]:
    """A bilingual dictionary as an alignment table. Lines ``source_word target_word [weight]`` (tabs or
    spaces; ``#`` comments and blank lines skipped); with ``reverse=True`` lines are ``target source``. A
    target word with several source words gets them all: uniform weights, or the given ones normalised. A
    line with one word, more than three fields, or a weight that is not a finite number >= 0: an error naming
    the file and line."""
    p = check_input_file(path, "read_dictionary")
    acc: Dict[str, Dict[str, float]] = {}
    for n, line in enumerate(read_lines(p, "read_dictionary"), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) not in (2, 3):
            raise ValueError(f"{p}, line {n}: expected 'source target [weight]', got {len(parts)} fields: {line!r}")
        s, t = (parts[1], parts[0]) if reverse else (parts[0], parts[1])
        w = 1.0
        if len(parts) == 3:
            try:
                w = float(parts[2])
            except ValueError:
                raise ValueError(f"{p}, line {n}: weight {parts[2]!r} is not a number") from None
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"{p}, line {n}: weight {parts[2]!r} must be finite and >= 0")
        row = acc.setdefault(t, {})
        row[s] = row.get(s, 0.0) + w
    if not acc:
        raise ValueError(f"read_dictionary: {p} has no entries")
    out: Dict[str, List[Tuple[str, float]]] = {}
    for t, row in acc.items():
        top = max(row.values())
        if not math.isfinite(top):
            raise ValueError(f"read_dictionary: {p}: the weights of {t!r} add up past the float range")
        if top > 0:  # scaled by the largest first, so that large weights do not overflow the sum
            scaled = {s: w / top for s, w in row.items()}
            total = sum(scaled.values())
            out[t] = sorted(((s, w / total) for s, w in scaled.items()), key=lambda x: (-x[1], x[0]))
    return out
