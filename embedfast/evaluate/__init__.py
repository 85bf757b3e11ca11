"""Intrinsic evaluation of word vectors: word-pair similarity, analogies, nearest neighbours, plots.

Every function takes ``vectors``: an :class:`embedfast.Vectors`, or any object with ``.words`` (sequence of
str, most frequent first) and ``.matrix`` ([N, D] tensor or array), or a gensim ``KeyedVectors``.

The semantics follow gensim's ``KeyedVectors.evaluate_word_pairs`` / ``evaluate_word_analogies`` (same
``restrict_vocab`` and ``case_insensitive`` meaning, same answers on the same vectors; a test checks this),
but analogies are solved in batches of matrix products.
Differences from gensim: malformed lines are an error naming the file and line instead of being skipped
quietly, ``oov_ratio`` is a fraction (gensim returns a percentage), and 3CosMul is offered.

Standard files: ``embedfast.data.evaluation_file("wordsim353.tsv" | "simlex999.txt" | "questions-words.txt")``.

- :mod:`.similarity`: ``evaluate_word_pairs``, ``read_word_pairs``, ``spearman``, ``pearson``
- :mod:`.analogy`: ``evaluate_analogies``, ``evaluate_word_analogies`` (gensim's return shape), ``read_analogies``
- :mod:`.neighbours`: ``nearest_neighbours``, ``project_2d``; :mod:`.plots`: ``plot_loss``, ``plot_projection``
"""
from ._common import PathLike  # noqa: F401
from .analogy import evaluate_analogies, evaluate_word_analogies, read_analogies
from .neighbours import nearest_neighbours, project_2d
from .plots import plot_loss, plot_projection
from .similarity import evaluate_word_pairs, pearson, read_word_pairs, spearman

__all__ = [
    "evaluate_word_pairs",
    "evaluate_analogies",
    "evaluate_word_analogies",
    "nearest_neighbours",
    "read_word_pairs",
    "read_analogies",
    "spearman",
    "pearson",
    "plot_loss",
    "plot_projection",
    "project_2d",
]
