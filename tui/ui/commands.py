"""Command palette (ctrl+p): the screen's actions, the open batch's actions, "go to batch";
and the ids of every binding, which `[keymap]` may remap."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.dom import DOMNode
from textual.screen import Screen

from tui.core.models import BatchSnapshot
from tui.core.sanitize import safe_cell

if TYPE_CHECKING:
    from tui.ui.app import BatchtopApp

MAX_BATCH_HITS = 20
UI_PACKAGES = ("tui.ui.screens", "tui.ui.widgets")

Command = tuple[str, str, Callable[[], object]]  # (name, help, run)


class _Matching(Provider):
    """A provider over a list of commands: all of them on discovery, fuzzy-matched on search."""

    def commands(self) -> list[Command]:
        raise NotImplementedError

    async def discover(self) -> Hits:
        for name, help_text, run in self.commands():
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, run in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, text=name, help=help_text)


def screen_commands(screen: Screen[Any]) -> list[Command]:
    """Every action bound on `screen` that can run now (with its key and binding id)."""
    app = screen.app
    out: list[Command] = []
    seen: set[str] = set()
    for active in screen.active_bindings.values():
        binding = active.binding
        if binding.system or not binding.description or not active.enabled:
            continue
        name = binding.description
        if name in seen or binding.action in ("command_palette", "app.command_palette"):
            continue
        seen.add(name)
        key = app.get_key_display(binding)
        run = partial(app.run_action, binding.action, active.node)
        out.append((name, f"key {key}" + (f" · {binding.id}" if binding.id else ""), run))
    return out


class ScreenActions(_Matching):
    """Every action bound on the screen the palette was opened from (with its key)."""

    def commands(self) -> list[Command]:
        return screen_commands(self.screen)


def batch_commands(app: BatchtopApp, batch_id: str) -> list[Command]:
    """What can be done to one batch now: its audit timeline, and the actions its state allows
    (none in read-only mode or before the API is connected)."""
    out: list[Command] = [("Audit timeline of this batch", "every audit record of the batch",
                           partial(app.open_audit, batch_id))]
    services = app.services
    if app.settings.read_only or services is None or services.actions is None:
        return out
    flows = app.flows
    batch: BatchSnapshot | None = app.monitor_state.batches.get(batch_id)
    running = batch is None or not batch.is_ended
    if running:
        out.append(("Cancel this batch", "asks first; finished results are kept",
                    lambda: app.start_action(flows.cancel([batch_id]))))
    if batch is None or batch.is_ended:
        out.append(("Retry failed requests of this batch", "plans, shows, asks first",
                    lambda: app.start_action(flows.retry(batch_id), follow_new=True)))
        out.append(("Delete this batch", "asks first; local copies stay",
                    lambda: app.start_action(flows.delete([batch_id]))))
    out.append(("Attach requests to this batch", "a JSONL file, so failures can be retried",
                lambda: app.start_action(flows.attach(batch_id))))
    out.append(("Label this batch", "a local label, shown in the list",
                lambda: app.start_action(flows.label(batch_id))))
    return out


class BatchActions(_Matching):
    """On a screen about one batch (it has a `batch_id`): the actions on that batch."""

    def commands(self) -> list[Command]:
        batch_id = getattr(self.screen, "batch_id", None)
        if not isinstance(batch_id, str):
            return []
        return batch_commands(cast("BatchtopApp", self.app), batch_id)


class GoToBatch(Provider):
    """`go to msgbatch_…`: moves the cursor to a batch and opens it."""

    async def search(self, query: str) -> Hits:
        app = cast("BatchtopApp", self.app)
        needle = query.strip().lower()
        if len(needle) < 2:
            return
        shown = 0
        for batch_id in app.monitor_state.order:
            if needle not in batch_id.lower():
                continue
            label = safe_cell(batch_id, 40)
            yield Hit(
                0.5,
                Text(f"open batch {label}"),
                partial(app.open_batch, batch_id),
                text=f"open batch {label}",
                help="move the cursor to this batch and open it",
            )
            shown += 1
            if shown >= MAX_BATCH_HITS:
                return


# -- binding ids ------------------------------------------------------------------------------


def _subclasses(cls: type[DOMNode]) -> Iterator[type[DOMNode]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def binding_ids() -> frozenset[str]:
    """The id of every binding of the app, its screens, dialogs and widgets (what `[keymap]`
    can remap), found by importing the UI's modules: a new screen is covered without a list."""
    importlib.import_module("tui.ui.app")
    for package_name in UI_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            importlib.import_module(f"{package_name}.{info.name}")
    ids: set[str] = set()
    for cls in _subclasses(DOMNode):
        if not cls.__module__.startswith("tui.ui."):
            continue
        for klass in cls.__mro__:
            for binding in vars(klass).get("BINDINGS", ()):
                if isinstance(binding, Binding) and binding.id:
                    ids.add(binding.id)
    return frozenset(ids)


def unknown_binding_ids(keymap: Mapping[str, str]) -> list[str]:
    """The ids in `keymap` that no binding has (a typo, or a binding that was renamed)."""
    if not keymap:
        return []
    known = binding_ids()
    return sorted(binding_id for binding_id in keymap if binding_id not in known)
