"""The confirmation dialog, the text prompt and the retry toggles, on their own."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Button, Input, Static

from tests.ui.harness import until
from tui.core.alerts import Alert, AlertKind, Severity
from tui.core.errors import PERMANENT_ERROR_TYPES, RETRYABLE_ERROR_TYPES
from tui.core.models import RequestCounts
from tui.core.retry_plan import DEFAULT_INCLUDE, Row, select_failures
from tui.service.actions import CancelPreview
from tui.ui.action_flows import target_body
from tui.ui.render import should_toast
from tui.ui.screens.confirm import ConfirmModal
from tui.ui.screens.retry import TOGGLES, count_rows, set_toggle, toggle_on
from tui.ui.screens.text_prompt import TextPrompt

UNTRUSTED = "[bold red]boom[/] \x1b]52;c;aGk=\x07 \u202eevil"


class Host(App[None]):
    """Pushes one dialog on mount and keeps its answer."""

    def __init__(self, dialog: Screen[Any]) -> None:
        super().__init__()
        self.dialog = dialog
        self.answers: list[Any] = []

    def compose(self) -> ComposeResult:
        yield Static("under the dialog")

    def on_mount(self) -> None:
        self.push_screen(self.dialog, callback=self.answers.append)


def confirm(**options: Any) -> ConfirmModal:
    return ConfirmModal("Cancel batch?", Text("msgbatch_1 · 3 processing"),
                        "The batch moves to canceling.", **options)


async def opened(pilot: Pilot[Any]) -> None:
    app = pilot.app
    await until(pilot, lambda: isinstance(app.screen, (ConfirmModal, TextPrompt))
                and app.screen.is_mounted)
    await pilot.pause()


async def answer_after(dialog: Screen[Any], *keys: str) -> list[Any]:
    app = Host(dialog)
    async with app.run_test() as pilot:
        await opened(pilot)
        await pilot.press(*keys)
        await pilot.pause()
    return app.answers


async def test_the_safe_button_has_the_focus_and_enter_says_no() -> None:
    app = Host(confirm())
    async with app.run_test() as pilot:
        await opened(pilot)
        focused = app.focused
        assert isinstance(focused, Button) and focused.id == "confirm-no"
        await pilot.press("enter")
        await pilot.pause()
    assert app.answers == [False]


async def test_y_confirms_n_and_esc_refuse() -> None:
    assert await answer_after(confirm(), "y") == [True]
    assert await answer_after(confirm(), "n") == [False]
    assert await answer_after(confirm(), "escape") == [False]


async def test_tab_then_enter_confirms_with_the_button() -> None:
    assert await answer_after(confirm(), "tab", "enter") == [True]


async def test_untrusted_text_is_inert() -> None:
    dialog = ConfirmModal(UNTRUSTED, Text(UNTRUSTED), UNTRUSTED, warnings=[UNTRUSTED])
    app = Host(dialog)
    async with app.run_test() as pilot:
        await opened(pilot)
        for widget_id in ("#confirm-text", "#confirm-consequence", "#confirm-warnings"):
            shown = str(dialog.query_one(widget_id, Static).render())
            assert "[bold red]boom[/]" in shown
            assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown
            assert "␛]52" in shown
        assert "\x1b" not in str(dialog.query_one("#confirm-box").border_title)


async def test_typed_count_is_needed_over_five_targets() -> None:
    dialog = confirm(typed_count=8)
    app = Host(dialog)
    async with app.run_test() as pilot:
        await opened(pilot)
        field = dialog.query_one("#confirm-count", Input)
        assert app.focused is field
        yes = dialog.query_one("#confirm-yes", Button)
        assert yes.disabled
        await pilot.press("y", "n", "7", "enter")  # y / n type into the field (and are refused)
        await pilot.pause()
        assert app.answers == [] and field.value == "7"
        dialog.action_confirm()  # the y action cannot bypass the count either
        await pilot.pause()
        assert app.answers == []
        await pilot.press("backspace", "8")
        await pilot.pause()
        assert not yes.disabled
        await pilot.press("enter")
        await pilot.pause()
    assert app.answers == [True]


async def test_typed_count_esc_refuses() -> None:
    assert await answer_after(confirm(typed_count=6), "6", "escape") == [False]


async def test_an_informing_dialog_cannot_be_confirmed() -> None:
    dialog = confirm(can_confirm=False, reason="Nothing can be attached.")
    app = Host(dialog)
    async with app.run_test() as pilot:
        await opened(pilot)
        assert dialog.query_one("#confirm-yes", Button).disabled
        assert "Nothing can be attached." in str(dialog.query_one("#confirm-reason",
                                                                  Static).render())
        await pilot.press("y")
        await pilot.pause()
        assert app.answers == []
        await pilot.press("escape")
        await pilot.pause()
    assert app.answers == [False]


async def test_text_prompt_returns_the_text_or_none() -> None:
    prompt = TextPrompt("Label", "A label", value="old")
    app = Host(prompt)
    async with app.run_test() as pilot:
        await opened(pilot)
        field = prompt.query_one("#prompt-input", Input)
        field.value = ""
        await pilot.press(*"nightly run", "enter")
        await pilot.pause()
    assert app.answers == ["nightly run"]
    assert await answer_after(TextPrompt("Label", "A label"), "x", "escape") == [None]


# -- the retry toggles --------------------------------------------------------------------------

ROWS = [
    Row("a", "errored", "overloaded_error"),
    Row("b", "expired"),
    Row("c", "canceled"),
    Row("d", "errored", "invalid_request_error"),
    Row("e", "errored", "api_error"),
    Row("f", "succeeded"),
]


def selected(include: frozenset[str]) -> set[str]:
    return set(select_failures(ROWS, include).selected)


def test_default_include_has_expired_on_and_the_rest_off() -> None:
    assert [toggle_on(DEFAULT_INCLUDE, kind) for kind in TOGGLES] == [True, False, False]
    assert selected(DEFAULT_INCLUDE) == {"a", "b", "e"}


def test_each_toggle_adds_or_removes_its_failures() -> None:
    no_expired = set_toggle(DEFAULT_INCLUDE, "expired", False)
    assert selected(no_expired) == {"a", "e"}
    assert no_expired == RETRYABLE_ERROR_TYPES
    assert set_toggle(no_expired, "expired", True) == DEFAULT_INCLUDE
    assert selected(set_toggle(DEFAULT_INCLUDE, "canceled", True)) == {"a", "b", "c", "e"}
    assert selected(set_toggle(DEFAULT_INCLUDE, "permanent", True)) == {"a", "b", "d", "e"}
    by_type = DEFAULT_INCLUDE | {"invalid_request_error"}
    assert "d" not in selected(set_toggle(by_type, "permanent", False))


@given(st.lists(st.tuples(st.sampled_from(TOGGLES), st.booleans()), max_size=12))
def test_toggles_always_mean_what_they_show(steps: list[tuple[str, bool]]) -> None:
    include = DEFAULT_INCLUDE
    for kind, on in steps:
        include = set_toggle(include, kind, on)
        assert toggle_on(include, kind) is on
    chosen = selected(include)
    assert ("b" in chosen) is toggle_on(include, "expired")
    assert ("c" in chosen) is toggle_on(include, "canceled")
    assert ("d" in chosen) is toggle_on(include, "permanent")
    assert {"a", "e"} <= chosen  # retryable errors are always retried
    assert not include & PERMANENT_ERROR_TYPES or toggle_on(include, "permanent")


# -- the bodies of the dialogs ------------------------------------------------------------------


def _preview(status: str, **counts: int) -> CancelPreview:
    return CancelPreview("cancel", "msgbatch_x", None, status, RequestCounts(**counts), True,
                         "consequence")


def test_a_running_batch_shows_only_its_total_and_processing() -> None:
    running = target_body(_preview("in_progress", processing=8000)).plain.splitlines()
    assert running[1:] == ["in_progress · 8,000 requests, 8,000 processing"]
    ended = target_body(_preview("ended", succeeded=7900, errored=82, expired=18))
    assert ended.plain.splitlines()[1:] == [
        "ended · 8,000 requests", "7,900 succeeded · 82 errored · 0 canceled · 18 expired"]


def test_count_rows_align_names_and_counts() -> None:
    lines = count_rows([("overloaded_error", 1200, ""), ("api_error", 82, "note")]).splitlines()
    assert lines == ["  overloaded_error  1,200", "  api_error            82   note"]


def test_only_warnings_and_errors_are_toasted() -> None:
    def alert(severity: Severity) -> Alert:
        return Alert(AlertKind.ENDED, "msgbatch_x", severity, "ended")

    assert not should_toast(alert(Severity.INFO))
    assert should_toast(alert(Severity.WARNING)) and should_toast(alert(Severity.ERROR))
