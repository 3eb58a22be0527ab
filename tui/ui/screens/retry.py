"""The retry dialog: failures by class, fix-first list, what will be submitted, re-planned live."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Static

from tui.core.cost import Estimate
from tui.core.errors import PERMANENT_ERROR_TYPES, RETRYABLE_ERROR_TYPES, RetryClass, verdict
from tui.core.sanitize import safe_cell, safe_text
from tui.service.actions import ActionFailed, RetryPreview
from tui.ui.screens.confirm import plural, warning_lines

Replan = Callable[[frozenset[str]], Awaitable[RetryPreview]]

EXPIRED = "expired"
CANCELED = "canceled"
PERMANENT = "permanent"
TOGGLES: tuple[str, ...] = (EXPIRED, CANCELED, PERMANENT)
TOGGLE_LABELS: Mapping[str, str] = {
    EXPIRED: "retry expired (e)",
    CANCELED: "retry canceled (c)",
    PERMANENT: "retry permanent errors (p)",
}
LIST_LIMIT = 200
ID_WIDTH = 64
_RETRYABLE = RetryClass.RETRYABLE.value
_CLASS_ORDER = (RetryClass.RETRYABLE, RetryClass.PERMANENT, RetryClass.CANCELED,
                RetryClass.UNKNOWN)


# -- what to include ------------------------------------------------------------------------------


def toggle_on(include: frozenset[str], kind: str) -> bool:
    """Whether `include` retries the failures a toggle stands for."""
    if kind == EXPIRED:
        return _RETRYABLE in include or EXPIRED in include
    return kind in include


def set_toggle(include: frozenset[str], kind: str, on: bool) -> frozenset[str]:
    """`include` with one kind of failure added or removed; other tokens are kept."""
    out = set(include)
    if kind == EXPIRED:
        if on:
            out.add(EXPIRED)
            if out >= RETRYABLE_ERROR_TYPES:  # back to the canonical "retryable"
                out -= RETRYABLE_ERROR_TYPES | {EXPIRED}
                out.add(_RETRYABLE)
        else:
            if _RETRYABLE in out:  # retryable errors stay chosen, expired requests do not
                out.discard(_RETRYABLE)
                out |= RETRYABLE_ERROR_TYPES
            out.discard(EXPIRED)
    elif kind == PERMANENT:
        if on:
            out.add(PERMANENT)
        else:
            out -= PERMANENT_ERROR_TYPES | {PERMANENT}
    elif on:
        out.add(kind)
    else:
        out.discard(kind)
    return frozenset(out)


def toggle_label(kind: str, on: bool) -> Text:
    """The toggle's label says its state in words: it must read without colour too."""
    return Text(f"{TOGGLE_LABELS[kind]}: {'yes' if on else 'no'}")


# -- the summary --------------------------------------------------------------------------------


ESTIMATE_PREFIX = "estimate: "


def estimate_lines(cost: Estimate) -> tuple[str, str]:
    """The token totals, and the cost upper bound: two lines, each whole."""
    label = cost.label()
    label = label[len(ESTIMATE_PREFIX):] if label.startswith(ESTIMATE_PREFIX) else label
    return (f"~{cost.input_tokens:,} input tokens, at most {cost.max_output_tokens:,} output "
            "tokens", label)


def count_rows(rows: Sequence[tuple[str, int, str]], indent: str = "  ") -> str:
    """Aligned lines of (name, count, note): names padded to the longest, counts right-aligned."""
    name_width = max((len(name) for name, _, _ in rows), default=0)
    count_width = max((len(f"{count:,}") for _, count, _ in rows), default=0)
    lines = [f"{indent}{name:<{name_width}}  {count:>{count_width},}   {note}".rstrip()
             for name, count, note in rows]
    return "\n".join(lines)


def _id_list(text: Text, items: Sequence[str], limit: int = LIST_LIMIT) -> None:
    for item in items[:limit]:
        text.append(f"\n  {safe_cell(item, ID_WIDTH)}")
    if len(items) > limit:
        text.append(f"\n  … and {len(items) - limit:,} more")


def retry_summary(preview: RetryPreview) -> Text:
    """Everything the retry dialog shows above its warnings, as inert text."""
    text = Text()
    text.append(safe_cell(preview.batch_id, ID_WIDTH), "bold")
    if preview.label:
        text.append(f"  “{safe_cell(preview.label, 60)}”")
    text.append("\nFailed requests by class\n", "bold")
    classes = [(retry_class.value, preview.by_class.get(retry_class.value, 0),
                verdict(retry_class)) for retry_class in _CLASS_ORDER]
    classes.append(("succeeded", preview.succeeded, ""))
    text.append(count_rows(classes) + "\n")
    if preview.by_reason:
        reasons = sorted(preview.by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        text.append("By reason\n", "bold")
        text.append(count_rows([(safe_cell(name, 40), count, "") for name, count in reasons])
                    + "\n")
    text.append("\nWill submit ", "bold")
    sizes = " + ".join(f"{size:,}" for size in preview.batch_sizes) or "0"
    text.append(f"{plural(preview.request_count, 'request')} of "
                f"{preview.selected_count:,} selected, in {plural(preview.batches, 'batch')} "
                f"({sizes})")
    text.append(f"\nNew batch label: {safe_cell(preview.new_label, 100)}")
    tokens, cost = estimate_lines(preview.estimate)
    text.append("\nEstimate  ", "bold")
    text.append(f"{tokens}\n          {cost}")
    if preview.fix_first:
        text.append(f"\n\nFix first: {plural(len(preview.fix_first), 'permanent error')}", "bold")
        rows = [f"{safe_cell(cid, ID_WIDTH)}  {safe_cell(kind, 40)}"
                for cid, kind in preview.fix_first]
        _id_list(text, rows)
    if preview.missing_originals:
        text.append(f"\n\nMissing originals: {len(preview.missing_originals):,} selected "
                    "requests have no known params and cannot be resubmitted", "bold")
        _id_list(text, preview.missing_originals)
    return text


def consequence(preview: RetryPreview) -> str:
    return (f"Creates {plural(preview.batches, 'new batch')} with the same custom_ids and their "
            "original params; the original batch is left as it is.")


# -- the dialog ---------------------------------------------------------------------------------


class RetryModal(ModalScreen[RetryPreview | None]):
    """Shows a retry plan; the toggles re-plan it. Dismisses with the plan to run, or None.

    `preview` is always the newest plan shown (what a "no" refuses).
    """

    DEFAULT_CSS = """
    RetryModal {
        align: center middle;
    }
    RetryModal > #retry-box {
        width: 100;
        max-width: 95%;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    RetryModal #retry-body {
        height: 1fr;
    }
    RetryModal #retry-warnings {
        height: auto;
        margin-top: 1;
        color: $warning;
    }
    RetryModal #retry-toggles {
        height: auto;
        margin-top: 1;
    }
    RetryModal #retry-toggles > Checkbox {
        margin-right: 2;
    }
    RetryModal #retry-status {
        height: auto;
        color: $text-muted;
    }
    RetryModal #retry-status.-error {
        color: $error;
    }
    RetryModal #retry-consequence {
        height: auto;
        margin-top: 1;
        text-style: bold;
    }
    RetryModal #retry-buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    RetryModal #retry-buttons > Button {
        margin-left: 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Retry", id="retry.yes"),
        Binding("n", "cancel", "No", id="retry.no"),
        Binding("escape,q", "cancel", "No", show=False, id="retry.escape"),
        Binding("e", "toggle_kind('expired')", "Expired", id="retry.toggle_expired"),
        Binding("c", "toggle_kind('canceled')", "Canceled", id="retry.toggle_canceled"),
        Binding("p", "toggle_kind('permanent')", "Permanent", id="retry.toggle_permanent"),
    ]

    def __init__(self, preview: RetryPreview, replan: Replan) -> None:
        super().__init__()
        self._preview = preview
        self._replan = replan
        self._planning = False

    @property
    def preview(self) -> RetryPreview:
        return self._preview

    @property
    def planning(self) -> bool:
        return self._planning

    def compose(self) -> ComposeResult:
        with Vertical(id="retry-box") as box:
            box.border_title = "Retry failed requests"
            box.border_subtitle = "y retry · n / esc no · e c p choose"
            with VerticalScroll(id="retry-body"):
                yield Static(id="retry-summary")
            yield Static(id="retry-warnings")
            with Horizontal(id="retry-toggles"):
                for kind in TOGGLES:
                    on = toggle_on(self._preview.include, kind)
                    yield Checkbox(toggle_label(kind, on), on, id=f"retry-{kind}", compact=True)
            yield Static(id="retry-status")
            yield Static(id="retry-consequence")
            with Horizontal(id="retry-buttons"):
                yield Button("Cancel", id="retry-no")
                yield Button("Retry", variant="primary", id="retry-yes")

    def on_mount(self) -> None:
        self._status("")
        self._show(self._preview)
        self.query_one("#retry-no", Button).focus()

    def _show(self, preview: RetryPreview) -> None:
        self._preview = preview
        self.query_one("#retry-summary", Static).update(retry_summary(preview))
        warnings = self.query_one("#retry-warnings", Static)
        warnings.update(warning_lines(preview.warnings))
        warnings.display = bool(preview.warnings)
        self.query_one("#retry-consequence", Static).update(Text(consequence(preview)))
        yes = self.query_one("#retry-yes", Button)
        yes.label = f"Retry {plural(preview.request_count, 'request')}"
        self._sync_buttons()

    def _sync_buttons(self) -> None:
        self.query_one("#retry-yes", Button).disabled = self._planning or not self._preview.allowed
        for kind in TOGGLES:
            self.query_one(f"#retry-{kind}", Checkbox).disabled = self._planning

    def _status(self, message: str, *, error: bool = False) -> None:
        status = self.query_one("#retry-status", Static)
        status.update(Text(safe_text(message)))
        status.set_class(error, "-error")
        status.display = bool(message)

    # -- re-planning ----------------------------------------------------------------------------

    def action_toggle_kind(self, kind: str) -> None:
        if not self._planning:
            box = self.query_one(f"#retry-{kind}", Checkbox)
            box.value = not box.value

    @on(Checkbox.Changed)
    def _on_toggle(self, event: Checkbox.Changed) -> None:
        event.stop()
        kind = (event.checkbox.id or "").removeprefix("retry-")
        if kind not in TOGGLES:
            return
        event.checkbox.label = toggle_label(kind, event.value)
        if toggle_on(self._preview.include, kind) == event.value:
            return
        self._run_replan(set_toggle(self._preview.include, kind, event.value))

    @work(exclusive=True, group="retry-replan", exit_on_error=False)
    async def _run_replan(self, include: frozenset[str]) -> None:
        self._planning = True
        self._sync_buttons()
        self._status("planning…")
        try:
            preview = await self._replan(include)
        except ActionFailed as exc:
            self._status(f"cannot plan: {exc}", error=True)
            self._revert_toggles()
        else:
            self._status("")
            self._planning = False
            self._show(preview)
        finally:
            self._planning = False
            self._sync_buttons()

    def _revert_toggles(self) -> None:
        for kind in TOGGLES:
            box = self.query_one(f"#retry-{kind}", Checkbox)
            on = toggle_on(self._preview.include, kind)
            with box.prevent(Checkbox.Changed):
                box.value = on
            box.label = toggle_label(kind, on)

    # -- answers --------------------------------------------------------------------------------

    @on(Button.Pressed, "#retry-yes")
    def _on_yes(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_confirm()

    @on(Button.Pressed, "#retry-no")
    def _on_no(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    def action_confirm(self) -> None:
        if not self._planning and self._preview.allowed:
            self.dismiss(self._preview)

    def action_cancel(self) -> None:
        self.dismiss(None)
