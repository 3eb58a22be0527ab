"""Command palette (ctrl+p): the current screen's actions, plus "go to batch" for known ids."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.core.sanitize import safe_cell

if TYPE_CHECKING:
    from tui.ui.app import BatchtopApp

MAX_BATCH_HITS = 20


class ScreenActions(Provider):
    """Every action bound on the screen the palette was opened from (with its key)."""

    def _actions(self) -> list[tuple[str, str, Callable[[], object]]]:
        out: list[tuple[str, str, Callable[[], object]]] = []
        seen: set[str] = set()
        for active in self.screen.active_bindings.values():
            binding = active.binding
            if binding.system or not binding.description or not active.enabled:
                continue
            name = binding.description
            if name in seen or binding.action in ("command_palette", "app.command_palette"):
                continue
            seen.add(name)
            key = self.app.get_key_display(binding)
            run = partial(self.app.run_action, binding.action, active.node)
            out.append((name, f"key {key}" + (f" · {binding.id}" if binding.id else ""), run))
        return out

    async def discover(self) -> Hits:
        for name, help_text, run in self._actions():
            yield DiscoveryHit(name, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, run in self._actions():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, text=name, help=help_text)


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
