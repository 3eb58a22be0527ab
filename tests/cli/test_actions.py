"""cancel, delete, submit and retry: previews on stderr, confirmation, refusals, ids on stdout."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.cli.conftest import Cli
from tui.cli import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, EXIT_REFUSED
from tui.core.models import BatchSnapshot
from tui.paths import locations
from tui.service.audit import read_audit


class FakeTerminal(io.StringIO):
    """stdin as a terminal where the user types `answer`."""

    def isatty(self) -> bool:
        return True


def type_answer(monkeypatch: pytest.MonkeyPatch, answer: str) -> None:
    monkeypatch.setattr("sys.stdin", FakeTerminal(answer + "\n"))


def actions_of(event: str, batch_id: str | None = None) -> list[dict[str, Any]]:
    return [r["data"] for r in read_audit(locations().audit).records
            if r["event"] == event and (batch_id is None or r["batch_id"] == batch_id)]


def request_file(path: Path, custom_ids: list[str]) -> Path:
    path.write_bytes(b"".join(orjson.dumps({"custom_id": custom_id, "params": {
        "model": "claude-haiku-4-5", "max_tokens": 32,
        "messages": [{"role": "user", "content": f"say {custom_id}"}]}}) + b"\n"
        for custom_id in custom_ids))
    return path


def running(cli: Cli) -> BatchSnapshot:
    return cli.find(lambda b: b.processing_status == "in_progress")


# -- cancel and delete ----------------------------------------------------------------------


def test_cancel_without_a_terminal_is_refused(cli: Cli, no_tty_stdin: None) -> None:
    batch = running(cli)
    ran = cli("cancel", batch.id)
    assert ran.code == EXIT_REFUSED
    assert ran.out == ""
    assert f"cancel {batch.id}" in ran.err and "requests" in ran.err  # the preview
    assert "not confirmed (stdin is not a terminal; pass --yes)" in ran.err
    assert [d["outcome"] for d in actions_of("action.cancel", batch.id)] == ["refused"]
    assert cli.find(lambda b: b.id == batch.id).processing_status == "in_progress"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_read_only_refuses(cli: Cli, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = running(cli)
    extra = ["--read-only"] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv("BATCHTOP_READ_ONLY", "1")
    ran = cli("cancel", batch.id, "--yes", *extra)
    assert ran.code == EXIT_REFUSED
    assert "read-only mode: cancel refused" in ran.err
    assert actions_of("action.cancel", batch.id)[0]["reason"] == "read-only"


def test_cancel_with_yes(cli: Cli) -> None:
    batch = running(cli)
    ran = cli("cancel", batch.id, "--yes", "--json")
    assert ran.code == EXIT_OK, ran.err
    [shown] = orjson.loads(ran.out)
    assert shown["id"] == batch.id and shown["processing_status"] == "canceling"
    outcomes = [d["outcome"] for d in actions_of("action.cancel", batch.id)]
    assert outcomes == ["requested", "succeeded"]


def test_confirmed_on_the_terminal(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = running(cli)
    type_answer(monkeypatch, "n")
    assert cli("cancel", batch.id).code == EXIT_REFUSED
    assert actions_of("action.cancel", batch.id)[-1]["reason"] == "declined"
    type_answer(monkeypatch, "y")
    ran = cli("cancel", batch.id)
    assert (ran.code, ran.out) == (EXIT_OK, f"{batch.id}\n")
    assert "[y/N]" in ran.err


def test_cancel_of_an_ended_batch_is_skipped(cli: Cli) -> None:
    ended = cli.find(lambda b: b.is_ended)
    ran = cli("cancel", ended.id, "--yes")
    assert ran.code == EXIT_ERROR and ran.out == ""
    assert "already ended" in ran.err


def test_many_targets_need_the_count_typed(cli: Cli, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"r-{n}" for n in range(6)]
    made = cli("submit", str(request_file(tmp_path / "six.jsonl", ids)), "--max-per-batch", "1",
               "--yes")
    created = made.out.split()
    assert len(created) == 6
    type_answer(monkeypatch, "y")
    refused = cli("cancel", *created)
    assert refused.code == EXIT_REFUSED and "Type 6 to confirm" in refused.err
    type_answer(monkeypatch, "6")
    done = cli("cancel", *created)
    assert done.code == EXIT_OK and done.out.split() == created


def test_delete(cli: Cli) -> None:
    ended = cli.find(lambda b: b.is_ended and b.archived_at is None)
    ran = cli("delete", ended.id, "--yes", "--json")
    assert ran.code == EXIT_OK, ran.err
    assert orjson.loads(ran.out) == [{"id": ended.id, "type": "message_batch_deleted"}]
    assert "deleted from the API for good" in ran.err
    assert cli("show", ended.id).code == EXIT_NOT_FOUND
    assert cli("delete", ended.id, "--yes").code == EXIT_NOT_FOUND


# -- submit and retry -----------------------------------------------------------------------


def test_submit(cli: Cli, tmp_path: Path) -> None:
    path = request_file(tmp_path / "jobs.jsonl", [f"job-{n}" for n in range(25)])
    ran = cli("submit", str(path), "--max-per-batch", "10", "--label", "nightly", "--yes")
    assert ran.code == EXIT_OK, ran.err
    created = ran.out.split()
    assert len(created) == 3 and all(batch_id.startswith("msgbatch_") for batch_id in created)
    assert "3 batches of at most 10 (10, 10, 5)" in ran.err
    listed = {row["id"]: row for row in orjson.loads(cli("ls", "--json").out)}
    assert [listed[b]["label"] for b in created] == [f"nightly ({n}/3)" for n in (1, 2, 3)]


def test_submit_with_problems_creates_nothing(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"custom_id": "bad id!", "params": {}}\nnot json\n')
    before = len(cli.batches())
    ran = cli("submit", str(path), "--yes")
    assert ran.code == EXIT_ERROR and ran.out == ""
    assert "bad.jsonl:2: invalid JSON" in ran.err
    assert "nothing submitted" in ran.err
    assert len(cli.batches()) == before


def test_submit_dry_run(cli: Cli, tmp_path: Path, no_tty_stdin: None) -> None:
    path = request_file(tmp_path / "one.jsonl", ["only-one"])
    before = len(cli.batches())
    assert cli("submit", str(path), "--dry-run").code == EXIT_REFUSED
    ran = cli("submit", str(path), "--dry-run", "--yes", "--json")
    assert ran.code == EXIT_OK, ran.err
    assert orjson.loads(ran.out)["type"] == "message"
    assert len(cli.batches()) == before


def test_retry_twice(make_cli: Callable[..., Cli], tmp_path: Path, no_tty_stdin: None) -> None:
    cli = make_cli(scenario="empty", error_rate=0.5)
    path = request_file(tmp_path / "jobs.jsonl", [f"job-{n}" for n in range(30)])
    [original] = cli("submit", str(path), "--yes").out.split()
    cli.advance(3600)
    first = cli("retry", original, "--include", "all", "--yes")
    assert first.code == EXIT_OK, first.err
    [retry_id] = first.out.split()
    listed = {row["id"]: row for row in orjson.loads(cli("ls", "--json").out)}
    assert listed[retry_id]["parent_batch_id"] == original
    again = cli("retry", original, "--include", "all")
    assert again.code == EXIT_REFUSED
    assert f"already retried as {retry_id}" in again.err  # the warning, before the refusal
    assert again.out == ""
    outcomes = [d["outcome"] for d in actions_of("action.retry", original)]
    assert outcomes[-1] == "refused"


def test_retry_with_the_request_file(cli: Cli, tmp_path: Path) -> None:
    """A batch batchtop did not submit: the user's file gives the original params."""
    batch = min((b for b in cli.batches() if b.is_ended and b.archived_at is None
                 and b.request_counts.errored), key=lambda b: b.request_counts.total)
    without = cli("retry", batch.id, "--yes")
    assert without.code == EXIT_ERROR
    assert "attach the request file" in without.err
    results = cli("results", batch.id, "--format", "jsonl").out.splitlines()
    custom_ids = [orjson.loads(line)["custom_id"] for line in results]
    path = request_file(tmp_path / "submitted.jsonl", custom_ids)
    ran = cli("retry", batch.id, "--requests", str(path), "--include", "errored", "--yes")
    assert ran.code == EXIT_OK, ran.err
    assert len(ran.out.split()) == 1
    assert f"matched     {len(custom_ids):,} of" in ran.err
