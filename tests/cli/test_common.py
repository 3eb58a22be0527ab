"""CLI plumbing: every failure maps to one stderr line and a stable exit code; light start-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tui.cli import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_REFUSED, EXIT_USAGE
from tui.commands.common import (
    CliError,
    describe_error,
    error_line,
    guarded,
    human_bytes,
    plural,
)
from tui.service.actions import ActionFailed, ReadOnlyError
from tui.service.api import ApiError
from tui.service.credentials import MissingApiKey
from tui.settings import ConfigError

ROOT = Path(__file__).resolve().parents[2]
NOT_FOUND = ApiError("No message batch with id 'x'", kind="not_found", status=404,
                     error_type="not_found_error", request_id="req_1")
OVERLOADED = ApiError("Overloaded", kind="server", status=529, error_type="overloaded_error",
                      request_id="req_2")


@pytest.mark.parametrize(("exc", "code", "line"), [
    (NOT_FOUND, EXIT_NOT_FOUND,
     "batchtop: No message batch with id 'x' (not_found_error, request req_1)"),
    (OVERLOADED, EXIT_ERROR, "batchtop: Overloaded (overloaded_error, request req_2)"),
    (ApiError("connection refused", kind="connection"), EXIT_ERROR,
     "batchtop: connection refused (connection)"),
    (ActionFailed("cancel", "cancel of x failed", NOT_FOUND), EXIT_NOT_FOUND,
     "batchtop: cancel of x failed: No message batch with id 'x' (not_found_error, request "
     "req_1)"),
    (ActionFailed("retry", "nothing to retry in x"), EXIT_ERROR,
     "batchtop: nothing to retry in x"),
    (ReadOnlyError("delete", ["x"]), EXIT_REFUSED,
     "batchtop: read-only mode: delete refused (--read-only, BATCHTOP_READ_ONLY or the "
     "profile's read_only)"),
    (MissingApiKey("no API key: set X"), EXIT_USAGE, "batchtop: no API key: set X"),
    (ConfigError("config.toml: bad"), EXIT_USAGE, "batchtop: config.toml: bad"),
    (CliError("not confirmed", EXIT_REFUSED), EXIT_REFUSED, "batchtop: not confirmed"),
    (FileNotFoundError(2, "No such file or directory", "/x"), EXIT_ERROR,
     "batchtop: /x: No such file or directory"),
    (ValueError("max_per_batch must be between 1 and 100,000"), EXIT_USAGE,
     "batchtop: max_per_batch must be between 1 and 100,000"),
    (RuntimeError("boom"), EXIT_ERROR, "batchtop: unexpected error: RuntimeError: boom"),
])
def test_failures_map_to_exit_codes(exc: BaseException, code: int, line: str) -> None:
    assert describe_error(exc) == (code, line)


def test_error_line_is_one_inert_line() -> None:
    line = error_line("bad\nthing \x1b[2J", "api_error", "req_9")
    assert line == "batchtop: bad⏎thing ␛[2J (api_error, request req_9)"


def test_guarded_prints_one_line_without_secrets(capsys: pytest.CaptureFixture[str]) -> None:
    def body() -> int:
        raise RuntimeError("key sk-secret-123456 leaked")

    assert guarded(body, ["sk-secret-123456"]) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err == "batchtop: unexpected error: RuntimeError: key [redacted] leaked\n"


def test_words() -> None:
    assert [plural(1, "batch"), plural(2, "batch"), plural(1_000, "request")] == [
        "1 batch", "2 batches", "1,000 requests"]
    assert [human_bytes(n) for n in (999, 3_860, 12_500_000, 2_000_000_000)] == [
        "999 B", "3.9 kB", "12.5 MB", "2.0 GB"]


def test_start_up_does_not_load_the_sdk() -> None:
    """`--help`, `audit`, `locate` and `config` must not pay for importing the SDK."""
    code = ("import sys, tui.cli; tui.cli.build_parser(); "
            "print(sorted(m for m in ('anthropic', 'httpx2', 'textual') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    assert done.stdout.strip() == "[]"
