"""The README's commands are real: every documented sub-command and flag exists, and the
emulator quick-start works as written (in a temp BATCHTOP_HOME, against loopback only)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_commands() -> list[list[str]]:
    """Every `batchtop ...` line inside the README's fenced shell blocks."""
    commands: list[list[str]] = []
    for block in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip().rstrip("&").strip()
            if line.startswith("batchtop"):
                cleaned = re.sub(r"[\[\]|]", " ", line).replace("...", "")
                commands.append(shlex.split(cleaned))
    return commands


def subparser_of(name: str) -> object:
    parser = build_parser()
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        choices = getattr(action, "choices", None)
        if choices and name in choices:
            return choices[name]
    raise AssertionError(f"README documents `batchtop {name}`, which does not exist")


def option_strings(parser: object) -> set[str]:
    return {opt for action in parser._actions for opt in action.option_strings}  # type: ignore[attr-defined]


def test_readme_documents_commands() -> None:
    assert len(readme_commands()) >= 12


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda a: " ".join(a[:2]))
def test_every_documented_flag_exists(argv: list[str]) -> None:
    words = argv[1:]
    top = build_parser()
    if not words or words[0].startswith("-"):
        known = option_strings(top)
        for word in words:
            if word.startswith("--"):
                assert word.split("=")[0] in known, f"README flag {word} is unknown"
        return
    sub = subparser_of(words[0])
    known = option_strings(sub) | option_strings(top)
    for word in words[1:]:
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"README flag {word} of {words[0]} is unknown"


def test_documented_exit_codes_match_the_cli() -> None:
    from tui import cli

    table = dict(re.findall(r"^\| (\d) \| ([^|]+) \|$", README, flags=re.M))
    assert table["0"].strip() == "ok"
    assert cli.EXIT_ERROR == 1 and "API" in table["1"]
    assert cli.EXIT_USAGE == 2 and "usage" in table["2"]
    assert cli.EXIT_REFUSED == 3 and "refused" in table["3"]
    assert cli.EXIT_NOT_FOUND == 4 and "not found" in table["4"]


def test_make_targets_of_the_two_commands_exist() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test", "bench", "screenshots"):
        assert re.search(rf"^{target}:", makefile, flags=re.M), target
    assert "--demo" in makefile


@pytest.fixture()
def emulator_process(isolated_home: Path) -> Iterator[str]:
    """`batchtop emulator --port 0 --scenario demo --speed 60`, as the README starts it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "emulator", "--port", "0", "--scenario", "demo",
         "--speed", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().strip()
        assert first.startswith("listening on http://127.0.0.1:"), first
        yield first.removeprefix("listening on ")
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0


def test_emulator_quick_start_works_with_the_cli(emulator_process: str,
                                                 isolated_home: Path) -> None:
    env = {**os.environ, "ANTHROPIC_BASE_URL": emulator_process, "ANTHROPIC_API_KEY": "test",
           "BATCHTOP_HOME": str(isolated_home)}
    listed = subprocess.run([sys.executable, "-m", "tui", "ls", "--json"], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert '"msgbatch_' in listed.stdout
    located = subprocess.run([sys.executable, "-m", "tui", "locate"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert located.returncode == 0 and str(isolated_home) in located.stdout
