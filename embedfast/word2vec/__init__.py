"""word2vec skip-gram with negative sampling (SGNS): the ``Word2Vec`` trainer and the ``SkipGram`` module.

Layout (schema -> kernel -> wrapper -> module, as every op family):

- ``ops``: the corpus and SGNS ops' fake kernels, autograd, typed wrappers and backend choice
  (``corpus_build_vocab``, ``corpus_encode``, ``sgns_unigram_table``, ``sgns_train``, ``sgns_loss``);
- ``triton`` (+ ``triton_kernels``): the Triton ops, imported lazily, never by ``import embedfast``;
- ``params``: the trainer's parameters and their checks; ``corpus``: the streamed / encoded corpus, spill files,
  chunks; ``loop``: the training loop and its one chunk step; ``interrupts``: SIGINT / SIGTERM during training;
  ``checkpoint``: save / check / load of checkpoints;
- ``trainer``: ``Word2Vec``; ``skipgram``: ``SkipGram``; ``distributed``: data-parallel training over
  ``torch.distributed`` (imported on demand: ``embedfast.word2vec.distributed``).
"""
from .corpus import Corpus, keep_probabilities
from .interrupts import Terminated
from .skipgram import SkipGram
from .trainer import Word2Vec

__all__ = ["Word2Vec", "SkipGram", "Terminated", "Corpus", "keep_probabilities"]
