"""`batchtop results` and `export` through the SDK: byte-exact JSONL, golden CSV, exit codes."""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import orjson
import pytest

from tests.cli.conftest import KEY, Cli, golden
from tests.cli.test_formats import FIXTURE
from tui.cli import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE
from tui.commands.export import write_atomically
from tui.commands.formats import CSV_COLUMNS
from tui.core.models import BatchSnapshot


def small_ended(cli: Cli) -> BatchSnapshot:
    """An ended, downloadable demo batch with errors and few requests."""
    return min(
        (b for b in cli.batches()
         if b.is_ended and b.archived_at is None and b.request_counts.errored),
        key=lambda b: b.request_counts.total,
    )


def raw_results(cli: Cli, batch_id: str) -> bytes:
    with cli.sdk() as client, client.messages.batches.with_streaming_response.results(
        batch_id
    ) as response:
        return response.read()


def csv_rows(text: str) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    return [dict(zip(CSV_COLUMNS, row, strict=True)) for row in rows[1:]]


def test_jsonl_is_the_api_bytes(cli: Cli) -> None:
    batch = small_ended(cli)
    ran = cli("results", batch.id, "--format", "jsonl")
    assert ran.code == EXIT_OK, ran.err
    assert ran.out.encode() == raw_results(cli, batch.id)
    assert ran.err == ""  # progress is drawn only when stderr is a terminal


def test_json_flag_means_jsonl(cli: Cli) -> None:
    batch = small_ended(cli)
    ran = cli("results", batch.id, "--json", "--type", "errored")
    lines = [orjson.loads(line) for line in ran.out.splitlines()]
    assert len(lines) == batch.request_counts.errored
    assert {line["result"]["type"] for line in lines} == {"errored"}


def test_filters(cli: Cli) -> None:
    batch = small_ended(cli)
    every = csv_rows(cli("results", batch.id, "--format", "csv").out)
    assert len(every) == batch.request_counts.total
    errors = csv_rows(cli("results", batch.id, "--format", "csv", "--type", "errored").out)
    assert len(errors) == batch.request_counts.errored
    some_type = errors[0]["error_type"]
    by_type = csv_rows(cli("results", batch.id, "--format", "csv", "--error-type", some_type).out)
    assert by_type and all(row["error_type"] == some_type for row in by_type)
    target = every[3]["custom_id"]
    matched = csv_rows(cli("results", batch.id, "--format", "csv", "--match", f"^{target}$").out)
    assert [row["custom_id"] for row in matched] == [target]


def test_csv_golden_through_the_cli(cli: Cli) -> None:
    """The store's lines (here a fixture of awkward ones) come out as the pinned CSV."""
    batch = small_ended(cli)
    with cli.store() as store:
        store.ingest(batch.id, [b"".join(line + b"\n" for line in FIXTURE)])
    ran = cli("results", batch.id, "--format", "csv")
    assert ran.code == EXIT_OK, ran.err
    golden("results.csv", ran.out)
    table = cli("results", batch.id, "--format", "table")
    assert "\x1b" not in table.out and "␛[31mALERT" in table.out


def test_unknown_batch_is_exit_4(cli: Cli) -> None:
    ran = cli("results", "msgbatch_does_not_exist")
    assert ran.code == EXIT_NOT_FOUND
    assert ran.err.startswith("batchtop: ")
    assert "(not_found_error, request req_" in ran.err
    assert "Traceback" not in ran.err and ran.out == ""


def test_running_batch_has_no_results(cli: Cli) -> None:
    running = cli.find(lambda b: b.processing_status == "in_progress")
    ran = cli("results", running.id)
    assert ran.code == EXIT_ERROR
    assert "results exist once it has ended" in ran.err


def test_missing_key_is_a_usage_error(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    ran = cli("ls")
    assert ran.code == EXIT_USAGE
    assert "no API key: set ANTHROPIC_API_KEY" in ran.err


def test_wrong_key_never_printed(make_cli: Callable[..., Cli]) -> None:
    cli = make_cli(scenario="empty", api_key="the-right-key")
    ran = cli("ls")
    assert ran.code == EXIT_ERROR
    assert "(authentication_error, request req_" in ran.err
    assert KEY not in ran.err + ran.out


def test_bad_regex_is_a_usage_error(cli: Cli) -> None:
    with pytest.raises(SystemExit) as stop:
        cli("results", "msgbatch_x", "--match", "(")
    assert stop.value.code == EXIT_USAGE


# -- export ---------------------------------------------------------------------------------


@pytest.fixture
def exports(tmp_path: Path) -> Path:
    """A directory of its own (BATCHTOP_HOME is elsewhere in tmp_path)."""
    directory = tmp_path / "exports"
    directory.mkdir()
    return directory


def test_export_jsonl_and_csv(cli: Cli, exports: Path) -> None:
    tmp_path = exports
    batch = small_ended(cli)
    target = tmp_path / "out.jsonl"
    ran = cli("export", batch.id, "--output", str(target))
    assert ran.code == EXIT_OK, ran.err
    assert ran.out == f"{batch.request_counts.total:,} results written to {target}\n"
    assert target.read_bytes() == raw_results(cli, batch.id)
    table = tmp_path / "errors.csv"
    ran = cli("export", batch.id, "-o", str(table), "--type", "errored", "--json")
    assert orjson.loads(ran.out) == {"batch_id": batch.id, "file": str(table), "format": "csv",
                                     "count": batch.request_counts.errored}
    assert len(csv_rows(table.read_bytes().decode())) == batch.request_counts.errored
    assert sorted(p.name for p in tmp_path.iterdir()) == ["errors.csv", "out.jsonl"]


def test_cut_stream_leaves_no_file(make_cli: Callable[..., Cli], exports: Path) -> None:
    """Every results stream is cut: retries run out, the export fails, nothing is left."""
    tmp_path = exports
    cli = make_cli(faults="cut=1")
    batch = small_ended(cli)
    target = tmp_path / "out.jsonl"
    ran = cli("export", batch.id, "--output", str(target))
    assert ran.code == EXIT_ERROR
    assert "could not be downloaded in full after 3 attempts" in ran.err
    assert list(tmp_path.iterdir()) == []


def _interrupted(lines: int) -> Callable[[IO[bytes]], int]:
    def write(handle: IO[bytes]) -> int:
        for number in range(lines):
            handle.write(b'{"custom_id":"x-%d"}\n' % number)
        raise KeyboardInterrupt  # ctrl-c halfway through

    return write


def test_interrupted_write_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "results.jsonl"
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, _interrupted(1000))
    assert list(tmp_path.iterdir()) == []


def test_interrupted_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "results.jsonl"
    target.write_bytes(b"previous export\n")
    with pytest.raises(KeyboardInterrupt):
        write_atomically(target, _interrupted(10))
    assert [p.name for p in tmp_path.iterdir()] == ["results.jsonl"]
    assert target.read_bytes() == b"previous export\n"


def test_finished_write_is_private_and_complete(tmp_path: Path) -> None:
    def lines() -> Iterator[bytes]:
        yield from (b"%d\n" % n for n in range(5))

    target = tmp_path / "ok.jsonl"
    assert write_atomically(target, lambda handle: sum(handle.write(x) > 0 for x in lines())) == 5
    assert target.read_bytes() == b"0\n1\n2\n3\n4\n"
    assert os.stat(target).st_mode & 0o777 == 0o600


def test_export_into_missing_directory(cli: Cli, tmp_path: Path) -> None:
    batch = small_ended(cli)
    ran = cli("export", batch.id, "--output", str(tmp_path / "nope" / "out.jsonl"))
    assert ran.code == EXIT_ERROR
    assert "no such directory" in ran.err


def hostile_lines(cli: Cli) -> tuple[str, bytes]:
    hostile = cli.emulator.engine.labelled("hostile").id
    raw = raw_results(cli, hostile)
    assert "\u202e".encode() in raw  # the API's JSON leaves bidi overrides raw
    return hostile, raw


def test_jsonl_into_a_file_keeps_hostile_lines_byte_exact(cli: Cli) -> None:
    hostile, raw = hostile_lines(cli)
    ran = cli("results", hostile, "--format", "jsonl")
    assert ran.code == EXIT_OK, ran.err
    assert ran.out.encode() == raw


def test_jsonl_on_a_terminal_escapes_bidi_and_c1(
    cli: Cli, monkeypatch: pytest.MonkeyPatch,
) -> None:
    hostile, raw = hostile_lines(cli)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    ran = cli("results", hostile, "--format", "jsonl")
    assert ran.code == EXIT_OK, ran.err
    assert "\u202e" not in ran.out and "\\u202e" in ran.out
    assert [orjson.loads(line) for line in ran.out.splitlines()] == [
        orjson.loads(line) for line in raw.splitlines()]
