"""Deprecated alias of ``embedfast.fusion.triton`` (the Triton kernels of ``gather_bags``), kept for one release.

Importing it warns (DeprecationWarning) and imports the Triton kernels, exactly as importing
``embedfast.fusion.triton`` does (``TRITON_INTERPRET`` must be set before, as there).
"""
import warnings

from ..fusion.triton import (INTERPRETED, MAX_TABLES, OPTIMIZERS, gather_bags_fused_update,  # noqa: F401
                             gather_bags_triton, gather_bags_triton_backward, gather_bags_triton_backward_update,
                             rowwise_adagrad_state)
from ..fusion.triton import __all__  # noqa: F401

warnings.warn("embedfast.triton.gather is deprecated: import embedfast.fusion.triton instead", DeprecationWarning,
              stacklevel=2)
