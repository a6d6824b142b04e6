"""The ``fspace`` command line: one module per subcommand."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from fspace import __version__

COMMANDS = (
    "info",
    "import_",
    "evaluate",
    "embed",
    "stats",
    "export",
    "experiment",
    "demo",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fspace",
        description="Function-space analysis of neural-network training: record checkpoints, "
        "turn them into function vectors, embed them and browse training trajectories.",
    )
    parser.add_argument("--version", action="version", version=f"fspace {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"fspace.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"fspace.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fspace`` command."""
    import warnings

    from fspace.errors import FspaceError

    args = build_parser().parse_args(argv)
    prefix = f"fspace {args.command}"
    # Warnings are advice to the user here, not a developer's stack location.
    formatwarning = warnings.formatwarning
    warnings.formatwarning = lambda message, *_, **__: f"{prefix}: warning: {message}\n"
    # A --model-factory module is found in the current directory, as `python -m` finds it.
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        return int(args.func(args) or 0)
    except FspaceError as e:
        print(f"{prefix}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"fspace {args.command}: interrupted; everything recorded so far is kept",
            file=sys.stderr,
        )
        return 130
    finally:
        warnings.formatwarning = formatwarning
        if added and cwd in sys.path:
            sys.path.remove(cwd)


if __name__ == "__main__":
    sys.exit(main())
