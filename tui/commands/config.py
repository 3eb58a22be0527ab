"""`batchtop config`: create the config file, or show every effective value and its source."""

from __future__ import annotations

import argparse

import orjson

from tui.settings import ensure_config_file, load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "config", parents=parents,
        help="show the effective settings (--show) or create the config file (--init)",
    )
    parser.add_argument("--show", action="store_true",
                        help="print each effective value and where it came from (the default)")
    parser.add_argument("--init", action="store_true",
                        help="create the commented config file if it does not exist")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.init:
        print(ensure_config_file())
        return 0
    settings = load_settings(args)
    rows = settings.effective()
    if getattr(args, "json", False):
        payload = [{"name": n, "value": v, "source": s} for n, v, s in rows]
        print(orjson.dumps(payload, option=orjson.OPT_INDENT_2).decode())
    else:
        width = max(len(name) for name, _, _ in rows)
        value_width = min(40, max(len(value) for _, value, _ in rows))
        for name, value, origin in rows:
            print(f"{name:<{width}}  {value:<{value_width}}  {origin}")
    for warning in settings.warnings:
        print(f"warning: {warning}")
    return 0
