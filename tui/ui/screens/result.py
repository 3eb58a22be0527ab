"""One result in full: the message (text, tool calls, thinking, usage) or the error, or raw JSON."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

import orjson
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from tui.core.errors import classify, nested_error_message, nested_error_type, verdict
from tui.core.results import KNOWN_TYPES
from tui.core.sanitize import safe_cell, safe_text
from tui.ui.clipboard import copy_value
from tui.ui.render import (
    RETRY_CLASS_STYLES,
    CellStyles,
    byte_size,
    component_classes,
    resolve_styles,
    result_type_style,
    style_css,
)
from tui.ui.widgets.scrolling import scroll_bindings, scroll_to

BODY_LIMIT = 200_000
"""Characters of a body shown; the rest is cut with a note (the raw line stays on disk)."""
LABEL_WIDTH = 12

NOTES: Mapping[str, str] = {
    "expired": "the 24 h processing window ended before this request was sent to the model; "
               "it was not billed",
    "canceled": "the batch was canceled before this request was sent to the model; "
                "it was not billed",
}


class RawReader(Protocol):
    """What the screen needs of the results store."""

    def read_raw(self, batch_id: str, seq: int) -> bytes: ...


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class _Body:
    """Builds an inert Text, spending at most BODY_LIMIT characters of untrusted input."""

    def __init__(self, styles: CellStyles, limit: int = BODY_LIMIT) -> None:
        self.text = Text()
        self.styles = styles
        self.left = limit
        self.cut = False

    def untrusted(self, value: str, style: str = "") -> None:
        if len(value) > self.left:
            value, self.cut = value[: max(0, self.left)], True
        self.left -= len(value)
        self.text.append(safe_text(value), self.styles(style) if style else "")

    def field(self, label: str, value: str, style: str = "") -> None:
        self.text.append(f"{label:<{LABEL_WIDTH}}", self.styles("muted"))
        self.text.append(safe_cell(value, 200), self.styles(style) if style else "")
        self.text.append("\n")

    def section(self, title: str) -> None:
        self.text.append("\n── ", self.styles("muted"))
        self.text.append(safe_cell(title, 120), self.styles("heading"))
        self.text.append(" " + "─" * 8 + "\n", self.styles("muted"))

    def note(self, text: str, style: str = "muted") -> None:
        self.text.append(text + "\n", self.styles(style))


def _usage(usage: Mapping[str, Any]) -> str:
    names = (("input_tokens", "input"), ("output_tokens", "output"),
             ("cache_read_input_tokens", "cache read"),
             ("cache_creation_input_tokens", "cache write"))
    parts = [f"{label} {usage[key]:,}" for key, label in names
             if isinstance(usage.get(key), int) and not isinstance(usage.get(key), bool)]
    tier = usage.get("service_tier")
    if isinstance(tier, str):
        parts.append(f"tier {tier}")
    return " · ".join(parts)


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _message(body: _Body, message: Mapping[str, Any]) -> None:
    stop = str(message.get("stop_reason") or "–")
    if isinstance(message.get("stop_sequence"), str):
        stop += f" ({message['stop_sequence']!r})"
    body.field("model", str(message.get("model") or "–"))
    body.field("stop_reason", stop,
               "warning" if stop.startswith(("max_tokens", "refusal", "model_context")) else "")
    body.field("usage", _usage(_dict(message.get("usage"))))
    body.field("message id", str(message.get("id") or "–"), "muted")
    content = message.get("content")
    for block in content if isinstance(content, list) else []:
        block = _dict(block)
        kind = str(block.get("type") or "?")
        if kind == "text":
            body.section("text")
            body.untrusted(str(block.get("text") or ""))
            body.text.append("\n")
        elif kind == "thinking":
            body.section("thinking")
            body.untrusted(str(block.get("thinking") or ""), "muted")
            body.text.append("\n")
        elif kind == "redacted_thinking":
            body.section("redacted thinking")
            body.note(f"{len(str(block.get('data') or '')):,} characters of encrypted thinking")
        elif kind in ("tool_use", "server_tool_use"):
            body.section(f"{kind} {block.get('name') or '?'} · {block.get('id') or ''}")
            body.untrusted(_pretty(block.get("input")))
            body.text.append("\n")
        else:
            body.section(kind)
            body.untrusted(_pretty(block))
            body.text.append("\n")


def result_text(line: bytes, styles: CellStyles, *, raw: bool = False,
                limit: int = BODY_LIMIT) -> Text:
    """The result line as people read it (or as indented JSON with `raw`), always inert."""
    body = _Body(styles, limit)
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        body.note("this line is not a well-formed result; shown as it was received", "warning")
        body.text.append("\n")
        body.untrusted(line.decode("utf-8", errors="replace"))
        return _finish(body, len(line))
    if raw:
        body.untrusted(_pretty(obj))
        return _finish(body, len(line))
    result = _dict(obj.get("result"))
    kind = str(result.get("type") or "?")
    body.field("custom_id", str(obj.get("custom_id") or "–"), "heading")
    body.field("type", kind, result_type_style(kind))
    if kind == "succeeded":
        _message(body, _dict(result.get("message")))
    elif kind == "errored":
        error_type = nested_error_type(result)
        retry = classify(kind, error_type)
        body.field("error type", error_type or "–", RETRY_CLASS_STYLES[retry])
        body.field("verdict", f"{retry.value} — {verdict(retry)}", RETRY_CLASS_STYLES[retry])
        request_id = _dict(result.get("error")).get("request_id")
        if isinstance(request_id, str):
            body.field("request id", request_id, "muted")
        body.section("error message")
        body.untrusted(nested_error_message(result) or "(no message)")
        body.text.append("\n")
    elif kind in NOTES:
        retry = classify(kind, None)
        body.field("verdict", f"{retry.value} — {verdict(retry)}", RETRY_CLASS_STYLES[retry])
        body.note("\n" + NOTES[kind])
    if kind not in KNOWN_TYPES:
        body.note(f"\nresult type {safe_cell(kind, 40)!r} is not one batchtop knows; "
                  "the whole line follows", "warning")
        body.untrusted(_pretty(obj))
    return _finish(body, len(line))


def _finish(body: _Body, size: int) -> Text:
    if body.cut:
        body.text.append("\n")
        body.note(f"… shown up to {byte_size(BODY_LIMIT)} of a {byte_size(size)} line; the "
                  "export (batchtop export) has all of it", "warning")
    return body.text


def position_label(seq: int, total: int | None) -> str:
    """ "result 1 of 2,000" for the first (0-based `seq`) of 2,000; "result 1" without a total."""
    place = f"result {seq + 1:,}"
    return f"{place} of {total:,}" if total else place


class ResultScreen(Screen[None]):
    """One result, read from the store when opened; v switches to the raw JSON line."""

    HELP_TITLE = "result"
    HELP_INTRO = (
        "One result of the batch. Model output and error messages are shown as plain text: "
        "control characters appear as visible symbols (␛, ⟨U+202E⟩) and are never sent to the "
        "terminal. v shows the raw JSON line, y copies the custom_id (OSC 52)."
    )
    DEFAULT_CSS = style_css("ResultScreen", "result") + """
    ResultScreen {
        #result-title { height: 1; background: $panel; }
        #result-scroll { height: 1fr; padding: 0 1; background: $surface; }
        #result-body { width: 1fr; }
    }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = component_classes("result")

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace,h,q", "back", "Back", id="result.back"),
        Binding("v", "toggle_raw", "Raw JSON", id="result.raw"),
        Binding("y", "copy_id", "Copy custom_id", id="result.copy_id"),
        *scroll_bindings("result"),
    ]

    def __init__(self, reader: RawReader, batch_id: str, seq: int, custom_id: str,
                 total: int | None = None) -> None:
        super().__init__()
        self.batch_id = batch_id  # the app keeps polling focused on this batch
        self.seq = seq  # 0-based place in the results stream
        self.total = total  # results in the batch, when known
        self.custom_id = custom_id
        self._reader = reader
        self._line: bytes | None = None
        self.raw = False
        self.body_text = Text()  # what the body shows now

    def compose(self) -> ComposeResult:
        yield Static(id="result-title")
        with VerticalScroll(id="result-scroll"):
            yield Static(id="result-body")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        try:
            self._line = self._reader.read_raw(self.batch_id, self.seq)
        except (KeyError, OSError) as exc:
            self._line = None
            self.notify(safe_text(f"cannot read this result: {exc}"), severity="error",
                        markup=False)
        self._show()
        self.query_one("#result-scroll", VerticalScroll).focus()

    def _show(self) -> None:
        styles = resolve_styles(self, "result")
        title = Text(" result ", styles("muted"))
        title.append(safe_cell(self.custom_id, 64), styles("heading"))
        title.append(f"  · {position_label(self.seq, self.total)} in ", styles("muted"))
        title.append(safe_cell(self.batch_id, 40))
        title.append("  · raw JSON" if self.raw else "", styles("accent"))
        self.query_one("#result-title", Static).update(title)
        line = self._line
        body = (result_text(line, styles, raw=self.raw) if line is not None
                else Text("this result could not be read from the store", styles("error")))
        self.body_text = body
        self.query_one("#result-body", Static).update(body)

    def action_toggle_raw(self) -> None:
        self.raw = not self.raw
        self._show()
        self.query_one("#result-scroll", VerticalScroll).scroll_home(animate=False)

    def action_copy_id(self) -> None:
        copy_value(self.app, self.custom_id, "custom_id")

    def action_scroll(self, where: str) -> None:
        scroll_to(self.query_one("#result-scroll", VerticalScroll), where)

    def action_back(self) -> None:
        self.dismiss(None)
