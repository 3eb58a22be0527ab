"""Submit a request file: a path, the checked and split preview, an optional dry run, confirm."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

import orjson
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tui.core.requests import RequestProblem
from tui.core.sanitize import safe_cell, safe_text
from tui.service.actions import ActionFailed, ReadOnlyError, SubmitPreview
from tui.ui.render import byte_size
from tui.ui.screens.confirm import warning_lines
from tui.ui.screens.retry import estimate_lines

Planner = Callable[[str, str | None], Awaitable[SubmitPreview]]
"""(path, label or None for the default) -> a preview; problems are in it, not raised."""
DryRun = Callable[[SubmitPreview], Awaitable[Mapping[str, Any]]]

LABEL_WIDTH = 60
PATH_WIDTH = 100
MESSAGE_WIDTH = 200
DRY_RUN_CHARS = 20_000


def expand_path(text: str) -> str:
    return os.path.expanduser(text.strip())


def problem_line(problem: RequestProblem) -> str:
    """One problem as "line 12  params.max_tokens: must be…" (0 means the whole file)."""
    where = f"line {problem.line:,}" if problem.line else "file"
    head = f"{where:>12}  "
    field = f"{safe_cell(problem.field, 60)}: " if problem.field else ""
    return head + field + safe_cell(problem.message, MESSAGE_WIDTH)


def submit_summary(preview: SubmitPreview) -> Text:
    """The file, the counts, the split, the labels and the estimate, as inert text."""
    text = Text()
    text.append("File      ", "bold")
    text.append(f"{safe_cell(preview.source_file, PATH_WIDTH)} · {preview.lines:,} lines")
    text.append("\nRequests  ", "bold")
    text.append(f"{preview.request_count:,} valid")
    if preview.problem_count:
        text.append(f" · {preview.problem_count:,} problems (nothing can be submitted until "
                    "they are fixed)", "bold")
    if preview.batch_sizes:
        text.append("\nBatches   ", "bold")
        parts = [f"{size:,} requests ({byte_size(size_bytes)})"
                 for size, size_bytes in zip(preview.batch_sizes, preview.batch_bytes,
                                             strict=True)]
        text.append(f"{preview.batches:,}: " + " + ".join(parts))
        text.append(f" · at most {preview.max_per_batch:,} per batch")
        labels = [safe_cell(label, LABEL_WIDTH) for label in preview.labels if label]
        if labels:
            text.append("\nLabels    ", "bold")
            text.append(", ".join(labels[:3]) + (" …" if len(labels) > 3 else ""))
    tokens, cost = estimate_lines(preview.estimate)
    text.append("\nEstimate  ", "bold")
    text.append(f"{tokens}\n          {cost}")
    return text


def problems_text(preview: SubmitPreview) -> Text:
    lines = [problem_line(problem) for problem in preview.problems]
    if preview.omitted_problems:
        lines.append(f"… and {preview.omitted_problems:,} more problems")
    return Text("\n".join(lines))


def dry_run_text(message: Mapping[str, Any]) -> Text:
    """The Messages API response, pretty JSON, inert and cut to a readable length."""
    raw = orjson.dumps(message, option=orjson.OPT_INDENT_2).decode("utf-8", "replace")
    if len(raw) > DRY_RUN_CHARS:
        raw = raw[:DRY_RUN_CHARS] + f"\n… ({len(raw) - DRY_RUN_CHARS:,} more characters)"
    text = Text()
    text.append("Dry run: the Messages API answered\n", "bold")
    text.append(safe_text(raw))
    return text


class SubmitScreen(ModalScreen[SubmitPreview | None]):
    """Type a path (and an optional label), enter checks it; y submits the checked preview.

    `preview` is the newest preview shown (what a "no" refuses), None before the first check.
    """

    DEFAULT_CSS = """
    SubmitScreen {
        align: center middle;
    }
    SubmitScreen > #submit-box {
        width: 110;
        max-width: 98%;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    SubmitScreen .submit-field {
        height: 1;
        margin-bottom: 1;
    }
    SubmitScreen .submit-field > Label {
        width: 7;
    }
    SubmitScreen .submit-field > Input {
        width: 1fr;
    }
    SubmitScreen #submit-status {
        height: auto;
        color: $text-muted;
    }
    SubmitScreen #submit-status.-error {
        color: $error;
    }
    SubmitScreen #submit-preview {
        height: 1fr;
        border-top: solid $primary;
    }
    SubmitScreen .submit-part {
        height: auto;
    }
    SubmitScreen #submit-warnings {
        color: $warning;
        margin-top: 1;
    }
    SubmitScreen #submit-problems {
        color: $error;
        margin-top: 1;
    }
    SubmitScreen #submit-dry {
        margin-top: 1;
    }
    SubmitScreen #submit-buttons {
        height: auto;
        align-horizontal: right;
    }
    SubmitScreen #submit-buttons > Button {
        margin-left: 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "confirm", "Submit", id="submit.yes"),
        Binding("n", "cancel", "No", id="submit.no"),
        Binding("escape,q", "cancel", "Cancel", show=False, id="submit.escape"),
        Binding("d", "dry_run", "Dry run", id="submit.dry_run"),
        Binding("e", "edit", "Edit path", id="submit.edit"),
    ]

    def __init__(self, planner: Planner, dry_run: DryRun | None = None, path: str = "") -> None:
        super().__init__()
        self._planner = planner
        self._dry_run = dry_run
        self._path = path
        self._preview: SubmitPreview | None = None
        self._checked: tuple[str, str] | None = None  # (path, label) of the preview shown
        self._busy = False

    @property
    def preview(self) -> SubmitPreview | None:
        return self._preview

    @property
    def busy(self) -> bool:
        return self._busy

    def compose(self) -> ComposeResult:
        with Vertical(id="submit-box") as box:
            box.border_title = "Submit a request file"
            box.border_subtitle = "enter checks · d dry run · y submit · e edit · n / esc cancel"
            with Horizontal(classes="submit-field"):
                yield Label("file")
                yield Input(self._path, placeholder="path of a JSONL file: one "
                            "{\"custom_id\", \"params\"} per line", id="submit-path",
                            select_on_focus=False, compact=True)
            with Horizontal(classes="submit-field"):
                yield Label("label")
                yield Input(placeholder="label of the new batch (default: the file name)",
                            id="submit-label", select_on_focus=False, compact=True)
            yield Static(Text("enter reads and checks the file; nothing is sent yet"),
                         id="submit-status")
            with VerticalScroll(id="submit-preview"):
                yield Static(id="submit-summary", classes="submit-part")
                yield Static(id="submit-warnings", classes="submit-part")
                yield Static(id="submit-problems", classes="submit-part")
                yield Static(id="submit-dry", classes="submit-part")
            with Horizontal(id="submit-buttons"):
                yield Button("Cancel", id="submit-no")
                yield Button("Dry run", id="submit-dry-run", disabled=True)
                yield Button("Submit", variant="primary", id="submit-yes", disabled=True)

    def on_mount(self) -> None:
        for part in ("warnings", "problems", "dry"):
            self.query_one(f"#submit-{part}", Static).display = False
        self.query_one("#submit-path", Input).focus()
        if self._path:
            self._check()

    # -- checking the file ----------------------------------------------------------------------

    def _fields(self) -> tuple[str, str]:
        return (expand_path(self.query_one("#submit-path", Input).value),
                self.query_one("#submit-label", Input).value.strip())

    @on(Input.Submitted)
    def _on_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._check()

    @on(Input.Changed)
    def _on_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._checked is not None and self._fields() != self._checked:
            self._checked = None
            self._status("changed: enter checks again")
            self._sync_buttons()

    def _check(self) -> None:
        path, _ = self._fields()
        if not path:
            self._status("type the path of a request file", error=True)
            return
        self._run_check(*self._fields())

    @work(exclusive=True, group="submit-check", exit_on_error=False)
    async def _run_check(self, path: str, label: str) -> None:
        self._set_busy(True, "reading and checking the file…")
        try:
            preview = await self._planner(path, label or None)
        except ValueError as exc:  # a label the service refuses
            self._status(str(exc), error=True)
            return
        finally:
            self._set_busy(False)
        self._preview = preview
        self._checked = (path, label)
        self._show(preview)
        self.query_one("#submit-no", Button).focus()

    def _show(self, preview: SubmitPreview) -> None:
        self.query_one("#submit-summary", Static).update(submit_summary(preview))
        self._part("warnings", warning_lines(preview.warnings) if preview.warnings else None)
        self._part("problems", problems_text(preview) if preview.problem_count else None)
        self._part("dry", None)
        if preview.allowed:
            self._status("checked: y submits, d sends the first request as a dry run")
        elif preview.problem_count:
            self._status(f"{preview.problem_count:,} problems: fix the file, then enter checks "
                         "it again", error=True)
        else:
            self._status("the file holds no requests", error=True)
        self._sync_buttons()

    def _part(self, name: str, content: Text | None) -> None:
        widget = self.query_one(f"#submit-{name}", Static)
        widget.display = content is not None
        widget.update(content if content is not None else "")

    def _status(self, message: str, *, error: bool = False) -> None:
        status = self.query_one("#submit-status", Static)
        status.update(Text(safe_text(message)))
        status.set_class(error, "-error")

    def _set_busy(self, busy: bool, message: str | None = None) -> None:
        self._busy = busy
        if message is not None:
            self._status(message)
        self._sync_buttons()

    def _ready(self) -> bool:
        preview = self._preview
        return (not self._busy and preview is not None and preview.allowed
                and self._checked is not None)

    def _sync_buttons(self) -> None:
        ready = self._ready()
        self.query_one("#submit-yes", Button).disabled = not ready
        self.query_one("#submit-dry-run", Button).disabled = not ready or self._dry_run is None

    # -- the dry run ----------------------------------------------------------------------------

    def action_dry_run(self) -> None:
        if self._ready() and self._dry_run is not None and self._preview is not None:
            self._run_dry(self._dry_run, self._preview)

    @work(exclusive=True, group="submit-dry-run", exit_on_error=False)
    async def _run_dry(self, dry_run: DryRun, preview: SubmitPreview) -> None:
        first = preview.chunks[0][0].custom_id
        self._set_busy(True, f"dry run: sending {safe_cell(first, 60)} to the Messages API…")
        try:
            message = await dry_run(preview)
        except ReadOnlyError:
            self._status("read-only mode: the dry run was refused", error=True)
        except ActionFailed as exc:
            self._status(f"dry run failed: {exc}", error=True)
        else:
            self._status(f"dry run of {safe_cell(first, 60)}: the API answered (billed as a "
                         "normal request); y submits the whole file")
            self._part("dry", dry_run_text(message))
        finally:
            self._set_busy(False)

    # -- answers --------------------------------------------------------------------------------

    @on(Button.Pressed, "#submit-yes")
    def _on_yes(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_confirm()

    @on(Button.Pressed, "#submit-no")
    def _on_no(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_cancel()

    @on(Button.Pressed, "#submit-dry-run")
    def _on_dry(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_dry_run()

    def action_edit(self) -> None:
        self.query_one("#submit-path", Input).focus()

    def action_confirm(self) -> None:
        if self._ready() and self._preview is not None:
            self.dismiss(self._preview)

    def action_cancel(self) -> None:
        self.dismiss(None)
