"""Rare-word pairs for the sub-word benchmark (benchmarks/word2vec/bench_subword.py), from WordNet's
morphological links: a rare word and a frequent word WordNet says it is derived from or gives (pointer ``+``,
"derivationally related form": abolish / abolition, breathe / breath, happy / happiness).

Debian's ``wordnet-base`` package holds the database (``/usr/share/wordnet/data.{noun,verb,adj,adv}``;
``apt-get install wordnet-base``); without it the benchmark skips this test and says so.

Two groups, each word drawn (seeded) once with its most frequent partner (count >= ``min_partner``):

- ``rare``: count ``min_count .. 20`` in the corpus: in every trainer's vocabulary, trained from a handful of
  occurrences;
- ``oov``: count ``1 .. min_count - 1``: in the text but below the minimum count, so no trainer has a row for it
  and each builds its vector from its n-grams alone.

Only single lower-case words of letters; no word of the evaluation files.
"""
from __future__ import annotations

import os
import random
import re

WORDNET = "/usr/share/wordnet"
_POS_FILE = {"n": "data.noun", "v": "data.verb", "a": "data.adj", "s": "data.adj", "r": "data.adv"}
_WORD = re.compile(r"^[a-z]+$")


def _synsets(path: str):
    """Yield (offset, words, pointers) of each synset line of a WordNet data file; pointers are (symbol,
    target offset, target pos, source word number, target word number)."""
    with open(path, encoding="latin-1") as f:
        for line in f:
            if line.startswith(" "):  # the licence header
                continue
            tok = line.split(" | ")[0].split()
            offset, n_words = tok[0], int(tok[3], 16)
            words = [re.sub(r"\(.*\)$", "", tok[4 + 2 * k]).lower() for k in range(n_words)]
            k = 4 + 2 * n_words
            n_ptr = int(tok[k])
            ptrs = []
            for p in range(n_ptr):
                sym, off, pos, st = tok[k + 1 + 4 * p: k + 5 + 4 * p]
                ptrs.append((sym, off, pos, int(st[:2], 16), int(st[2:], 16)))
            yield offset, words, ptrs


def derivation_pairs(wordnet: str = WORDNET) -> set:
    """Every pair {a, b} of single words linked by WordNet's "derivationally related form" pointer (both
    orders)."""
    words_of = {}
    links = []
    for pos, name in (("n", "data.noun"), ("v", "data.verb"), ("a", "data.adj"), ("r", "data.adv")):
        for offset, words, ptrs in _synsets(os.path.join(wordnet, name)):
            words_of[(_POS_FILE[pos], offset)] = words
            for sym, off, tpos, src, dst in ptrs:
                if sym == "+" and src and dst:
                    links.append((words[src - 1], _POS_FILE[tpos], off, dst))
    pairs = set()
    for a, fname, off, dst in links:
        target = words_of.get((fname, off))
        if target is None or dst > len(target):
            continue
        b = target[dst - 1]
        if a != b and _WORD.match(a) and _WORD.match(b):
            pairs.add((a, b))
            pairs.add((b, a))
    return pairs


def rare_pairs(counts: dict, banned: set, *, min_count: int = 5, min_partner: int = 50, n: int = 300,
               seed: int = 13, wordnet: str = WORDNET):
    """``{"rare": (words, partners), "oov": (words, partners)}`` (see the module docstring), or None when the
    WordNet database is not installed."""
    if not os.path.exists(os.path.join(wordnet, "data.noun")):
        return None
    best = {}
    for a, b in derivation_pairs(wordnet):
        ca, cb = counts.get(a, 0), counts.get(b, 0)
        if ca < 1 or ca > 20 or cb < min_partner or a in banned or b in banned:
            continue
        if a not in best or cb > counts[best[a]]:
            best[a] = b
    out = {}
    for group, lo, hi in (("rare", min_count, 20), ("oov", 1, min_count - 1)):
        cands = sorted((a, b) for a, b in best.items() if lo <= counts[a] <= hi)
        random.Random(seed).shuffle(cands)
        chosen = cands[:n]
        out[group] = ([a for a, _ in chosen], [b for _, b in chosen])
    return out
