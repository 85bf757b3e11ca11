"""The `embedfast` command line: `embedfast <command> --help` for each command."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Optional, Sequence

# Each command module exposes add_parser(subparsers) -> None and sets `func` on its parser.
_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []


def command(fn: Callable[[argparse._SubParsersAction], None]):
    """Decorator registering a sub-command's parser builder."""
    _COMMANDS.append(fn)
    return fn


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="embedfast", description="Fast word-embedding tools for PyTorch.")
    parser.add_argument("--version", action="version", version=f"embedfast {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # Import the modules that register commands. Registrations land in the module object `embedfast.cli`,
    # which is not this one when run as `python -m embedfast.cli` (then this is __main__): read it from there.
    from . import cli as registry
    from . import cli_commands  # noqa: F401

    for add in registry._COMMANDS:
        add(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc = args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"embedfast {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
