"""Data that ships with embedfast (see README.md here for the license of the corpus)."""
from __future__ import annotations

import gzip
import os
from typing import List, Tuple

DATA_DIR = os.path.dirname(os.path.abspath(__file__))


def default_corpus_path() -> str:
    """Path of the embedded English corpus (WordNet 3.0 glosses, gzip, one sentence per line)."""
    return os.path.join(DATA_DIR, "wordnet_glosses.txt.gz")


def evaluation_file(name: str) -> str:
    """Path of a standard evaluation file ('wordsim353.tsv', 'simlex999.txt', 'questions-words.txt').

    These ship with gensim's test data; install the `gensim` extra to have them.
    """
    try:
        import gensim
    except ImportError as exc:
        raise FileNotFoundError(
            f"evaluation file {name!r} comes from gensim's test data; pip install gensim (or embedfast[gensim])"
        ) from exc
    path = os.path.join(os.path.dirname(gensim.__file__), "test", "test_data", name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found in the installed gensim")
    return path


def supersenses_path() -> str:
    """Path of the WordNet supersense labels of the embedded corpus (``wordnet_supersenses.tsv.gz``: one line
    ``lexname<TAB>synset<TAB>kind`` per corpus line, in the corpus's order; kind ``d`` definition, ``e`` usage
    example; see README.md here and ``examples/build_supersenses.py``)."""
    return os.path.join(DATA_DIR, "wordnet_supersenses.tsv.gz")


def supersense_glosses(kinds: str = "d") -> List[Tuple[str, str, str]]:
    """The labelled gloss parts of the embedded corpus: ``(text, supersense, synset)`` for every corpus line
    whose kind is in ``kinds`` (``"d"``: definitions, ``"e"``: usage examples, ``"de"``: both), in corpus order.

    The supersense is the WordNet 3.0 lexicographer file of the gloss's synset (45 classes: ``noun.animal``,
    ``verb.motion``, ``adj.all``, ...). A labels file that does not match the corpus line for line is an error.
    """
    if not isinstance(kinds, str) or not kinds or set(kinds) - {"d", "e"}:
        raise ValueError(f"supersense_glosses: kinds must be 'd', 'e' or 'de', got {kinds!r}")
    with gzip.open(default_corpus_path(), "rt", encoding="utf-8") as f:
        texts = f.read().splitlines()
    with gzip.open(supersenses_path(), "rt", encoding="utf-8") as f:
        labels = f.read().splitlines()
    if len(labels) != len(texts):
        raise ValueError(f"supersense_glosses: {supersenses_path()} has {len(labels)} lines, the corpus "
                         f"{default_corpus_path()} {len(texts)}")
    out = []
    for lineno, (text, row) in enumerate(zip(texts, labels), 1):
        fields = row.split("\t")
        if len(fields) != 3 or fields[2] not in ("d", "e"):
            raise ValueError(f"{supersenses_path()}:{lineno}: expected lexname<TAB>synset<TAB>d|e, got {row!r}")
        if fields[2] in kinds:
            out.append((text, fields[0], fields[1]))
    return out
