"""The request ledger: private file, write-ahead submits, params, labels, lineage, reconciling."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tui.core.models import BatchSnapshot, RequestCounts
from tui.core.requests import BatchRequest
from tui.paths import locations
from tui.service.ledger import (
    CREATED,
    FAILED,
    PENDING,
    RECONCILED,
    Ledger,
    LedgerError,
    SubmitRecord,
    match_pending,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def reqs(*ids: str, model: str = "claude-test") -> list[BatchRequest]:
    return [
        BatchRequest.build(cid, {"model": f"{model}-{cid}", "max_tokens": n + 1,
                                 "messages": [{"role": "user", "content": cid}]})
        for n, cid in enumerate(ids)
    ]


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    with Ledger(tmp_path / "ledger.sqlite3", clock=lambda: T0) as opened:
        yield opened


def test_default_path_is_private_under_the_data_dir(isolated_home: Path) -> None:
    with Ledger() as default:
        assert default.path == locations().data / "ledger.sqlite3"
        assert isolated_home in default.path.parents
        default.set_label("msgbatch_x", "hello")
        for path in default.path.parent.glob("ledger.sqlite3*"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(default.path.parent.stat().st_mode) == 0o700


def test_write_ahead_then_complete(ledger: Ledger) -> None:
    submit_id = ledger.begin_submit(reqs("a", "b"), source_file="f.jsonl", label="mine")
    (pending,) = ledger.pending_submits()
    assert (pending.submit_id, pending.state, pending.request_count) == (submit_id, PENDING, 2)
    assert pending.batch_id is None
    # The params are on disk before the batch exists.
    assert not ledger.has_requests("msgbatch_1")
    ledger.complete_submit(submit_id, "msgbatch_1")
    assert ledger.pending_submits() == []
    record = ledger.submit_for("msgbatch_1")
    assert record is not None and record.state == CREATED
    assert ledger.params_for("msgbatch_1") == {
        "a": {"model": "claude-test-a", "max_tokens": 1,
              "messages": [{"role": "user", "content": "a"}]},
        "b": {"model": "claude-test-b", "max_tokens": 2,
              "messages": [{"role": "user", "content": "b"}]},
    }
    assert list(ledger.params_for("msgbatch_1", ["b", "zzz"])) == ["b"]
    assert ledger.custom_ids_for("msgbatch_1") == ["a", "b"]
    assert ledger.label_for("msgbatch_1") == "mine"
    with pytest.raises(LedgerError):
        ledger.complete_submit(submit_id, "msgbatch_2")


def test_failed_submit_keeps_no_params(ledger: Ledger) -> None:
    submit_id = ledger.begin_submit(reqs("a"))
    ledger.fail_submit(submit_id, "400 invalid_request_error: nope")
    record = ledger.submit(submit_id)
    assert record is not None and record.state == FAILED and "nope" in (record.error or "")
    assert ledger.pending_submits() == []
    with pytest.raises(LedgerError):
        ledger.fail_submit(submit_id, "again")


def test_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as first:
        submit_id = first.begin_submit(reqs("a"))
    with Ledger(path) as second:
        assert [r.submit_id for r in second.pending_submits()] == [submit_id]


def test_lineage_and_retries(ledger: Ledger) -> None:
    root = ledger.begin_submit(reqs("a", "b"))
    ledger.complete_submit(root, "b0")
    retry = ledger.begin_submit(reqs("a"), parent="b0", generation=1, label="retry of b0 (gen 1)")
    assert ledger.retries_of("b0") == [retry]  # pending: it may exist already
    ledger.complete_submit(retry, "b1")
    again = ledger.begin_submit(reqs("a"), parent="b1", generation=2)
    ledger.complete_submit(again, "b2")
    assert ledger.retries_of("b0") == ["b1"]
    assert ledger.children_of("b0") == ["b1"]
    assert ledger.lineage_of("b2") == ["b0", "b1", "b2"]
    assert ledger.generation("b2") == 2 and ledger.generation("b0") == 0
    assert ledger.family("b1") == [("b0", 0), ("b1", 1), ("b2", 2)]
    assert ledger.lineage() == {"b1": ("b0", 1), "b2": ("b1", 2)}
    assert ledger.labels()["b1"] == "retry of b0 (gen 1)"


def test_labels(ledger: Ledger) -> None:
    ledger.set_label("b", "first")
    ledger.set_label("b", "second")
    assert ledger.label_for("b") == "second"
    ledger.set_label("b", None)
    assert ledger.label_for("b") is None and ledger.labels() == {}


def test_attach_matches_by_custom_id(ledger: Ledger) -> None:
    report = ledger.attach("ext", reqs("a", "b", "stray"), "mine.jsonl", {"a", "b", "c"})
    assert report.matched == 2
    assert report.unknown_in_file == ("stray",)
    assert report.missing_from_file == ("c",)
    assert not report.clean
    assert set(ledger.params_for("ext")) == {"a", "b"}
    # A new attachment replaces the old one.
    ledger.attach("ext", reqs("c", model="new"), "fixed.jsonl", None)
    assert ledger.params_for("ext") == {"c": {"model": "new-c", "max_tokens": 1,
                                              "messages": [{"role": "user", "content": "c"}]}}
    assert ledger.attachment_for("ext") == ("fixed.jsonl", "2026-03-01T12:00:00.000000Z")


def test_submitted_params_win_over_an_attachment(ledger: Ledger) -> None:
    submit_id = ledger.begin_submit(reqs("a"))
    ledger.complete_submit(submit_id, "b")
    ledger.attach("b", reqs("a", model="other"), "x.jsonl", None)
    assert ledger.params_for("b")["a"]["model"] == "claude-test-a"


def test_a_hundred_thousand_requests_in_one_transaction(ledger: Ledger) -> None:
    shared = {"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]}
    many = [BatchRequest.build(f"r{n}", shared) for n in range(100_000)]
    submit_id = ledger.begin_submit(many)
    ledger.complete_submit(submit_id, "big")
    assert len(ledger.params_for("big", [f"r{n}" for n in range(0, 100_000, 7)])) == 14_286
    assert ledger.has_requests("big")


def snap(batch_id: str, total: int, created: datetime) -> BatchSnapshot:
    return BatchSnapshot(batch_id, "in_progress", RequestCounts(processing=total), created,
                         created + timedelta(hours=24))


def record(submit_id: str, count: int, created: datetime) -> SubmitRecord:
    return SubmitRecord(submit_id, PENDING, created, created, None, count, 0, None, None, 0,
                        None, None)


def test_match_pending_by_count_and_time() -> None:
    pending = [record("s1", 3, T0), record("s2", 5, T0), record("s3", 7, T0),
               record("s4", 9, T0 + timedelta(minutes=55))]
    batches = [
        snap("match", 3, T0 + timedelta(seconds=2)),
        snap("twin-a", 5, T0 + timedelta(seconds=1)),
        snap("twin-b", 5, T0 + timedelta(seconds=3)),
        snap("too-late", 7, T0 + timedelta(hours=2)),
        snap("claimed", 3, T0),
    ]
    out = {m.submit_id: m for m in match_pending(pending, batches, claimed={"claimed"},
                                                 now=T0 + timedelta(hours=1))}
    assert (out["s1"].verdict, out["s1"].batch_id) == ("matched", "match")
    assert out["s2"].verdict == "ambiguous" and set(out["s2"].candidates) == {"twin-a", "twin-b"}
    assert out["s3"].verdict == "not_created"
    assert out["s4"].verdict == "waiting"


def test_reconciled_state(ledger: Ledger) -> None:
    submit_id = ledger.begin_submit(reqs("a"), parent="p", generation=1)
    ledger.complete_submit(submit_id, "found", reconciled=True)
    found = ledger.submit_for("found")
    assert found is not None and found.state == RECONCILED
    assert ledger.known_batch_ids() == {"found"}
    assert ledger.parent_of("found") == "p"
