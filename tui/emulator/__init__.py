"""A local, deterministic emulator of the Message Batches API (aiohttp), for demos and tests."""

from tui.emulator.faults import Faults, parse_faults
from tui.emulator.server import EmulatorConfig, RunningEmulator, start_emulator
from tui.emulator.threaded import ThreadedEmulator

__all__ = ["EmulatorConfig", "Faults", "RunningEmulator", "ThreadedEmulator", "parse_faults",
           "start_emulator"]
