"""The single `batchtop` entry point: no sub-command opens the app, sub-commands work headless."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tui import __version__
from tui.settings import ConfigError
from tui.startup import loading

# Exit codes are an API (README "Exit codes"): keep them stable.
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_NOT_FOUND = 4

# Each module exposes register(subparsers, parents); order is the order of `--help`.
COMMAND_MODULES: tuple[str, ...] = (
    "tui.commands.ls",
    "tui.commands.show",
    "tui.commands.results",
    "tui.commands.export",
    "tui.commands.cancel",
    "tui.commands.retry",
    "tui.commands.delete",
    "tui.commands.submit",
    "tui.commands.watch",
    "tui.commands.audit",
    "tui.commands.locate",
    "tui.commands.config",
    "tui.emulator.cli",
)


def _global_options(suppress: bool) -> argparse.ArgumentParser:
    """Options accepted both before and after the sub-command."""
    default = argparse.SUPPRESS if suppress else None
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--profile", metavar="NAME", default=default,
                        help="use this profile (workspace) from the config file")
    parser.add_argument("--base-url", metavar="URL", default=default,
                        help="API base URL (default: ANTHROPIC_BASE_URL or the profile's)")
    parser.add_argument("--read-only", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="refuse every action that changes anything")
    parser.add_argument("--json", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="machine-readable output where output is tabular")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="batchtop",
        description="A terminal monitor for Anthropic Message Batches.",
        parents=[_global_options(suppress=False)],
    )
    parser.add_argument("--version", action="version", version=f"batchtop {__version__}")
    parser.add_argument("--demo", action="store_true",
                        help="open the app on an in-process emulator running the demo scenario")
    parser.add_argument("--watch-profiles", metavar="A,B",
                        help="watch these profiles side by side in the list")
    parser.add_argument("--no-mouse", action="store_true", help="do not capture the mouse")
    parser.set_defaults(handler=None)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    parents = [_global_options(suppress=True)]
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers, parents)
    return parser


def entry() -> int:
    """The `batchtop` command: `main`, once the modules it will need are loaded (`loading`)."""
    with loading():
        args = build_parser().parse_args(sys.argv[1:])
        if args.handler is None:
            importlib.import_module("tui.ui.launch")
        else:
            for name in getattr(sys.modules[args.handler.__module__], "PRELOAD", ()):
                importlib.import_module(name)
    return run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` (default: the process's arguments) and run the command, in-process."""
    return run(build_parser().parse_args(list(sys.argv[1:] if argv is None else argv)))


def run(args: argparse.Namespace) -> int:
    """Run the parsed command (no command: the app); the exit code."""
    handler = args.handler
    if handler is None:
        from tui.ui.launch import run_app

        return run_app(args)
    try:
        return int(handler(args))
    except ConfigError as exc:
        print(f"batchtop: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
