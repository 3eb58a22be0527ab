"""One describer for the event pane and the audit viewer: every kind, never raising, inert."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tui.core import events as ev
from tui.core.alerts import ALERT_RAISED
from tui.core.describe import SUMMARY_CHARS, describe_event
from tui.core.events import Event
from tui.core.sanitize import safe_cell


def describe(name: str, data: dict[str, Any]) -> str:
    return describe_event(Event(name, "msgbatch_x", data))


def test_the_monitors_events() -> None:
    assert describe(ev.BATCH_DISCOVERED, {"status": "in_progress",
                                          "counts": {"processing": 3, "succeeded": 1}}) == (
        "in_progress · 4 requests")
    assert describe(ev.BATCH_STATUS_CHANGED, {"from": "in_progress", "to": "ended"}) == (
        "in_progress → ended")
    assert describe(ev.BATCH_COUNTS_CHANGED, {"from": {"processing": 2},
                                              "to": {"processing": 1, "succeeded": 1}}) == (
        "processing 2→1 · succeeded 0→1")
    ended = {"counts": {"succeeded": 3, "errored": 1}, "error_rate": 0.25}
    assert describe(ev.BATCH_ENDED, ended) == "succeeded 3 · errored 1 · 25.0% failed"
    assert describe(ev.API_ERROR, {"kind": "server", "status": 500, "message": "boom",
                                   "retry_in_s": 2}) == "server 500: boom · retry in 2s"
    assert describe(ev.BATCH_GONE, {"last_status": "ended", "reason": "deleted"}) == (
        "gone; last seen ended (deleted)")
    assert describe(ev.SESSION_STARTED, {}) == "monitor started"
    assert describe(ev.SESSION_ENDED, {"duration_s": 75, "api_calls": 3, "batches": 2}) == (
        "after 1m 15s · 3 API calls · 2 batches")


def test_actions_results_and_alerts() -> None:
    assert describe("action.cancel", {"outcome": "ok", "counts": {"canceled": 1200}}) == (
        "ok · canceled 1,200")
    assert describe(ev.RESULTS_DOWNLOADED, {"lines": 10, "expected": 10, "bytes": 2048,
                                            "seconds": 3}) == "10 of 10 lines · 2.0 KB · in 3s"
    assert describe(ev.RESULTS_FAILED, {"kind": "server", "error": "cut"}) == "server: cut"
    assert describe(ALERT_RAISED, {"severity": "warning", "kind": "sla", "message": "late"}) == (
        "warning sla: late")
    assert describe(ev.ALERT_HOOK_FAILED, {"kind": "sla", "error": "exit 1"}) == (
        "on_alert command failed (sla): exit 1")
    assert describe("custom.thing", {"a": 1, "b": None, "c": [1, 2]}) == "a=1 c=[2]"


def test_hostile_text_is_made_inert() -> None:
    text = describe(ev.API_ERROR, {"kind": "x", "message": "\x1b[31mred[/bold]\n"})
    assert "\x1b" not in text and "\n" not in text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    name=st.sampled_from([*ev.EVENT_NAMES, ALERT_RAISED, ev.ALERT_HOOK_FAILED,
                          ev.RESULTS_DOWNLOADED, ev.RESULTS_FAILED, ev.RESULTS_OPENED,
                          "action.delete", "other"]),
    data=st.dictionaries(st.sampled_from(["counts", "from", "to", "status", "error",
                                          "message", "lines", "seconds", "bytes", "kind",
                                          "retry_in_s", "error_rate", "duration_s", "x"]),
                         json_values, max_size=6),
)
def test_any_data_gives_one_short_line(name: str, data: dict[str, Any]) -> None:
    text = describe(name, data)
    assert "\n" not in text and "\x1b" not in text
    assert safe_cell(text, SUMMARY_CHARS) == text  # one line, already cut to size
