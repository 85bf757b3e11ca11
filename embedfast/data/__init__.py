"""Data that ships with embedfast (see README.md here for the license of the corpus)."""
from __future__ import annotations

import os

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
