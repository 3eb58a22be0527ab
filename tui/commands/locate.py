"""`batchtop locate`: print where config, data, cache and audit files live."""

from __future__ import annotations

import argparse

import orjson

from tui.paths import locations


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "locate", parents=parents, help="print where batchtop keeps its files"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    where = locations().as_dict()
    if getattr(args, "json", False):
        print(orjson.dumps(where, option=orjson.OPT_INDENT_2).decode())
    else:
        width = max(len(k) for k in where)
        for key, value in where.items():
            print(f"{key:<{width}}  {value}")
    return 0
