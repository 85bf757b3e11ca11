"""Deprecated location of embedfast's Triton kernels: they now live with their family
(``embedfast.word2vec.triton``, ``embedfast.fusion.triton``). ``embedfast.triton.sgns`` and
``embedfast.triton.gather`` remain for one release as aliases that warn on import. Importing this package never
imports triton."""
