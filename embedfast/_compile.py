"""Helpers for torch.compile that cost nothing at import time."""
from __future__ import annotations

import sys

import torch


def constant_under_compile(fn):
    """``torch.compiler.assume_constant_result(fn)`` without importing ``torch._dynamo`` at import time.

    That import costs about a second and ~150 MB of resident memory for every user of the package, compiling or
    not. When dynamo is already loaded the real decorator is used; otherwise the function gets the same marker
    attribute that ``torch._dynamo.assume_constant_result`` sets (tests/test_build.py checks that it still does).
    """
    if "torch._dynamo" in sys.modules:
        return torch.compiler.assume_constant_result(fn)
    fn._dynamo_marked_constant = True
    return fn
