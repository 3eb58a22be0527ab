"""The README screenshots: captured by `make screenshots`, reproducible, and never stale."""

from __future__ import annotations

import asyncio
import html
import re
from collections import defaultdict
from pathlib import Path

import pytest
from rich.color import Color
from rich.terminal_theme import SVG_EXPORT_THEME

from tui.ui.screenshots import capture_all

COMMITTED = Path(__file__).resolve().parents[2] / "screenshots"
CHAR_WIDTH = 12.2  # Rich's SVG export: 20 px font, 0.61 aspect ratio
EXPECTED: dict[str, tuple[str, ...]] = {
    "batches.svg": ("batchtop", "demo · local emulator", "all batches", "✗ failures"),
    "batch-errors.svg": ("failures by error type", "error rate 20%", "stored locally"),
    "result.svg": ("type        succeeded", "usage", "── text"),
    "cancel-confirm.svg": ("Cancel batch?", "The batch moves to canceling"),
    "retry-confirm.svg": ("Retry failed requests", "Will submit 298 requests",
                          "Fix first: 103 permanent errors"),
    "audit.svg": ("audit log", "action.retry", "action.cancel", "refused · declined"),
    "read-only.svg": ("[RO]",),
    "batches-256.svg": ("batchtop", "all batches"),
    "high-contrast.svg": ("batchtop", "all batches"),
}
_TEXT = re.compile(r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" '
                   r'clip-path="url\(#[\w-]*-line-(\d+)\)">(.*?)</text>')
_FILLS = re.compile(r'(?:<rect fill="|-r\d+ \{ fill: )(#[0-9a-f]{6})')


def screen_text(svg: str) -> str:
    """The screen's text, line by line, each piece at its column."""
    lines: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for x, line, text in _TEXT.findall(svg):
        lines[int(line)].append((round(float(x) / CHAR_WIDTH), html.unescape(text)))
    out = []
    for number in sorted(lines):
        row = ""
        for column, text in sorted(lines[number]):
            row = row.ljust(column) + text.replace("\xa0", " ")
        out.append(row)
    return "\n".join(out)


def colours(svg: str) -> set[str]:
    return set(_FILLS.findall(svg))


def capture(outdir: Path) -> dict[str, bytes]:
    paths = asyncio.run(capture_all(outdir))
    return {path.name: path.read_bytes() for path in paths}


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return capture(tmp_path_factory.mktemp("shots"))


def test_every_screenshot_is_taken(shots: dict[str, bytes]) -> None:
    assert sorted(shots) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_screenshot_shows_its_screen(shots: dict[str, bytes], name: str) -> None:
    text = screen_text(shots[name].decode("utf-8"))
    for wanted in EXPECTED[name]:
        assert wanted in text, f"{name} lacks {wanted!r}"


def test_no_wall_clock_or_temporary_path_leaks(shots: dict[str, bytes]) -> None:
    for name, data in shots.items():
        text = screen_text(data.decode("utf-8"))
        assert "batchtop-shots-" not in text, name
        assert "/tmp" not in text, name


def test_256_colour_screenshot_uses_only_the_palette(shots: dict[str, bytes]) -> None:
    palette = {Color.from_ansi(number).get_truecolor().hex for number in range(16, 256)}
    defaults = {SVG_EXPORT_THEME.foreground_color.hex, SVG_EXPORT_THEME.background_color.hex}
    reduced = colours(shots["batches-256.svg"].decode("utf-8"))
    assert reduced - defaults <= palette
    assert colours(shots["batches.svg"].decode("utf-8")) - defaults - palette  # truecolor


def test_committed_screenshots_are_current(shots: dict[str, bytes]) -> None:
    committed = {path.name: path.read_bytes() for path in COMMITTED.glob("*.svg")}
    stale = sorted(name for name in shots if committed.get(name) != shots[name])
    assert not stale, f"run `make screenshots` and commit: {stale} changed"
    assert sorted(committed) == sorted(shots), "screenshots/ holds files no capture makes"


def test_capture_is_reproducible(shots: dict[str, bytes], tmp_path: Path) -> None:
    again = capture(tmp_path / "again")
    assert [name for name in shots if again.get(name) != shots[name]] == []
