"""Old import paths kept for one release: each warns (DeprecationWarning) and re-exports its new module."""
from __future__ import annotations

import importlib
import warnings


def alias(old: str, new: str, names) -> dict:
    """Warn that module ``old`` moved to ``new`` and return ``{name: new.name}`` for ``names``."""
    warnings.warn(f"{old} is deprecated and will be removed in the next release; import {new} instead",
                  DeprecationWarning, stacklevel=3)
    mod = importlib.import_module(new)
    return {n: getattr(mod, n) for n in names}
