"""`batchtop emulator`: serve the local Message Batches API until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable

from tui.emulator.faults import parse_faults
from tui.emulator.scenarios import parse_scenario
from tui.emulator.server import EmulatorConfig, start_emulator


def _checked(parse: Callable[[str], object], kind: str) -> Callable[[str], str]:
    """An argparse type that validates with `parse` but keeps the text."""

    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text

    check.__name__ = kind
    return check


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within 0..1, got {text}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
             parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "emulator", parents=parents, help="serve a local, deterministic Message Batches API",
        description="Serve a local emulator of the Message Batches API. The first line on "
                    "stdout is 'listening on http://HOST:PORT'. Stops on SIGINT/SIGTERM.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--scenario", default="empty", type=_checked(parse_scenario, "scenario"),
                        metavar="NAME", help="demo, empty, large:N or many:N (default empty)")
    parser.add_argument("--speed", type=_positive, default=1.0, metavar="FACTOR",
                        help="emulator time runs FACTOR times faster than real time")
    parser.add_argument("--faults", type=_checked(parse_faults, "faults"), metavar="SPEC",
                        help="e.g. 429=0.1,529=0.05,500=0.02,slow=0.5s,cut=0.3,malformed=1,"
                             "unknown=2,retry-after=1,notfound_after_create=2")
    parser.add_argument("--error-rate", type=_fraction, default=0.05, metavar="FRACTION",
                        help="share of requests that end errored (default 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="seed for every generated value")
    parser.add_argument("--api-key", metavar="KEY", help="accept only this key (default: any)")
    parser.add_argument("--live-counts", action="store_true",
                        help="move succeeded/errored counts while batches run (demo only; the "
                             "real API keeps them at 0 until a batch ends)")
    parser.set_defaults(handler=run)


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(host=args.host, port=args.port, scenario=args.scenario,
                          speed=args.speed, faults=args.faults, error_rate=args.error_rate,
                          seed=args.seed, api_key=args.api_key, live_counts=args.live_counts)


async def serve(config: EmulatorConfig) -> int:
    """Start, announce the URL, and run until a stop signal arrives."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        running = await start_emulator(config)
    except OSError as exc:
        print(f"batchtop emulator: cannot listen on {config.host}:{config.port}: {exc}",
              file=sys.stderr)
        return 1
    print(f"listening on {running.url}", flush=True)
    print(f"scenario {config.scenario}, speed x{config.speed:g}, faults {config.faults or 'off'},"
          f" error rate {config.error_rate:g}, seed {config.seed}", file=sys.stderr, flush=True)
    try:
        await stopping.wait()
    finally:
        await running.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(serve(config_from_args(args)))
