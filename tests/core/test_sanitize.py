"""Untrusted text never reaches the terminal as a control: it is shown, not executed."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rich.text import Text
from textual.content import Content

from tui.core.sanitize import (
    ELLIPSIS,
    UNSAFE_CHARS,
    ZERO_WIDTH_SPACE,
    escape_markup,
    escape_rich_markup,
    has_unsafe,
    safe_cell,
    safe_text,
    text_width,
    visible,
)

ESC = "\x1b"
BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def interpreted(char: str) -> bool:
    """Would a terminal (or a bidi-aware renderer) act on this character?"""
    return char in UNSAFE_CHARS or unicodedata.category(char) == "Cs"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (f"{ESC}[31mred{ESC}[0m", "␛[31mred␛[0m"),
        (f"{ESC}[2J{ESC}[H", "␛[2J␛[H"),
        (f"{ESC}]52;c;cm0gLXJmIH4=\x07", "␛]52;c;cm0gLXJmIH4=␇"),
        (f"{ESC}]0;pwned{ESC}\\", "␛]0;pwned␛\\"),
        (f"{ESC}]2;title\x07", "␛]2;title␇"),
        (f"{ESC}Pq#0;2;0;0;0{ESC}\\", "␛Pq#0;2;0;0;0␛\\"),
        (f"{ESC}_apc{ESC}\\", "␛_apc␛\\"),
        (f"{ESC}^pm{ESC}\\", "␛^pm␛\\"),
        ("\x9b31m", "⟨U+009B⟩31m"),
        ("\x9d52;c;eA==\x9c", "⟨U+009D⟩52;c;eA==⟨U+009C⟩"),
        ("a\x00b\x7fc\x08", "a␀b␡c␈"),
        ("over\rwrite", "over␍write"),
        ("line one\r\nline two", "line one\nline two"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("safe \u202eexe.txt", "safe ⟨U+202E⟩exe.txt"),
        ("\u2066iso\u2069 \u200f", "⟨U+2066⟩iso⟨U+2069⟩ ⟨U+200F⟩"),
        ("para\u2029sep\u2028", "para⟨U+2029⟩sep⟨U+2028⟩"),
        ("bad \udcff byte", "bad ⟨U+DCFF⟩ byte"),
        ("日本語 ok é 🙂", "日本語 ok é 🙂"),
    ],
)
def test_safe_text_shows_controls(raw: str, shown: str) -> None:
    assert safe_text(raw) == shown


def test_every_unsafe_character_has_a_visible_stand_in() -> None:
    for char in UNSAFE_CHARS:
        picture = visible(char)
        assert picture
        assert not any(interpreted(c) for c in picture)
    assert visible(ESC) == "␛"
    assert visible("\x7f") == "␡"
    assert visible("\u202e") == "⟨U+202E⟩"


@given(st.text())
@example(f"{ESC}]52;c;{'A' * 100}\x07")
@example("\ud800\udc00")
def test_safe_text_never_emits_an_interpreted_character(raw: str) -> None:
    out = safe_text(raw)
    assert not any(interpreted(c) for c in out if c not in "\n\t")
    out.encode("utf-8")  # no lone surrogates left
    assert safe_text(out) == out
    assert not has_unsafe(out)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
def test_printable_ascii_is_untouched(raw: str) -> None:
    assert safe_text(raw) == raw
    assert safe_cell(raw, len(raw) + 1) == raw


@given(st.text(), st.integers(min_value=1, max_value=60))
@example("\n\t\r\n" * 5, 4)
@example("日本語テキスト", 4)
@example("a" * 1000, 10)
def test_safe_cell_is_one_short_inert_line(raw: str, width: int) -> None:
    out = safe_cell(raw, width)
    assert not any(interpreted(c) for c in out)
    assert "\n" not in out and "\t" not in out
    assert text_width(out) <= width
    assert safe_cell(out, width) == out
    if text_width(safe_cell(raw, 10**6)) <= width and len(raw) <= 4 * width:
        assert not out.endswith(ELLIPSIS) or raw.endswith(ELLIPSIS)


def test_safe_cell_truncates_with_an_ellipsis() -> None:
    assert safe_cell("abcdefghij", 10) == "abcdefghij"
    assert safe_cell("abcdefghijk", 10) == "abcdefghi…"
    assert safe_cell("two\nlines\tx", 20) == "two⏎lines x"
    assert safe_cell("crlf\r\nend", 20) == "crlf⏎end"
    assert safe_cell("anything", 0) == ""
    assert safe_cell("ab", 1) == "…"


def test_safe_cell_counts_wide_and_zero_width_characters() -> None:
    assert safe_cell("日本語テキスト", 7) == "日本語…"
    assert text_width(safe_cell("日本語テキスト", 8)) <= 8
    assert safe_cell("e\u0301" * 3, 3) == "e\u0301" * 3


def test_safe_cell_never_splits_a_marker() -> None:
    assert safe_cell("ab\u202ecd", 6) == "ab…"
    assert safe_cell(f"x{ESC}[31m", 10) == "x␛[31m"


def test_safe_cell_looks_at_a_bounded_prefix_of_huge_input() -> None:
    huge = "x" * 5_000_000
    assert safe_cell(huge, 10) == "x" * 9 + ELLIPSIS
    combining = "a" + "\u0301" * 5_000_000
    out = safe_cell(combining, 10)
    assert out.endswith(ELLIPSIS)
    assert len(out) <= 4 * 10 + 17


TRICKY_MARKUP = [
    "[bold]x[/bold]",
    "[link=https://evil]click[/]",
    "[@click=app.quit]q[/]",
    "\\[b]",
    "a\\",
    "a\\\\",
    "[1]",
    "[/]",
    "$var [$accent]",
]


@pytest.mark.parametrize("raw", TRICKY_MARKUP)
def test_escaped_text_renders_literally_in_both_markups(raw: str) -> None:
    textual = Content.from_markup(f"[b]{escape_markup(raw)}[/b]")
    assert textual.plain.replace(ZERO_WIDTH_SPACE, "") == raw
    rich = Text.from_markup(f"[b]{escape_rich_markup(raw)}[/b]")
    assert rich.plain.replace(ZERO_WIDTH_SPACE, "") == raw


markupish = st.text(alphabet="[]/\\ab#@=$ \x1bq1", max_size=30)


@given(markupish)
def test_escape_markup_round_trips_through_textual(raw: str) -> None:
    # Escaped text is embedded between the caller's tags; it must neither add a tag nor
    # break the caller's closing one.
    for markup in (escape_markup(raw), f"[b]{escape_markup(raw)}[/b]", f"x{escape_markup(raw)}"):
        plain = Content.from_markup(markup).plain.replace(ZERO_WIDTH_SPACE, "")
        assert plain.removeprefix("x") == safe_text(raw)
    styled = Content.from_markup(f"[b]{escape_markup(raw)}[/b]")
    assert all(span.start == 0 for span in styled.spans)


@given(markupish)
def test_escape_rich_markup_round_trips_through_rich(raw: str) -> None:
    for markup in (escape_rich_markup(raw), f"[b]{escape_rich_markup(raw)}[/b]"):
        assert Text.from_markup(markup).plain.replace(ZERO_WIDTH_SPACE, "") == safe_text(raw)
    styled = Text.from_markup(f"[b]{escape_rich_markup(raw)}[/b]")
    assert [(span.start, span.end) for span in styled.spans] in ([], [(0, len(styled.plain))])


def test_bidi_set_is_complete() -> None:
    assert all(char in UNSAFE_CHARS for char in BIDI)
    assert not any(interpreted(c) for c in safe_text(BIDI))
