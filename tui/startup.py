"""Process start-up: load the modules a command needs without the cyclic collector's passes."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def loading() -> Iterator[None]:
    """Import inside this block with the collector off, then freeze what exists out of its
    later passes.

    Imports make about a million objects that live as long as the process and almost no
    garbage. Walking them cost a third of the start-up (1.5 s to 0.95 s for the app), and
    each later full pass over them stalled the app's event loop by about 0.1 s. Only for
    the process's own start (`tui.cli.entry`): freezing keeps whatever garbage exists at
    that moment too, which there is next to none but in a long-running test process.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
