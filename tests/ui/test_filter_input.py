"""`read_filter`: the `/` line's text as a filter, or the error to show instead."""

from __future__ import annotations

from tui.ui.filter_input import TypedFilter, read_filter


def test_a_pattern_becomes_a_filter() -> None:
    typed = read_filter("!abc")
    assert typed.error is None and typed.text is not None
    assert typed.text.inverted and typed.text.pattern == "abc"


def test_empty_text_means_no_filter() -> None:
    assert read_filter("") == TypedFilter()
    assert read_filter("!") == TypedFilter()


def test_an_invalid_regex_is_an_error_not_an_exception() -> None:
    typed = read_filter("(")
    assert typed.text is None and typed.error
