"""Sub-commands of the `embedfast` CLI, one section per op family. Heavy imports stay inside the handlers."""
from __future__ import annotations

import argparse

from .cli import command

# ---- demo -------------------------------------------------------------------------------------------


@command
def _demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="a short end-to-end tour on the embedded corpus",
                       description="A short tour of what embedfast does and how fast, on embedded defaults.")
    p.add_argument("--quick", action="store_true", help="smaller sizes (seconds, not a minute)")
    p.add_argument("--workdir", default=None, help="where to write demo files (default: a temporary folder)")

    def run(args):
        from .demo import run_demo

        return run_demo(quick=args.quick, workdir=args.workdir)

    p.set_defaults(func=run)


# ---- vectors (load / convert / info) -----------------------------------------------------------------


# ---- sgns (train / eval) -----------------------------------------------------------------------------


# ---- fusion ------------------------------------------------------------------------------------------
