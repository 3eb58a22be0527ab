"""Actions against the emulator through the SDK: confirmed, audited, refusable, crash-safe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import orjson
import pytest

from tests.emulator_fixtures import MakeEmulator
from tui.core.models import ENDED, BatchSnapshot
from tui.core.retry_plan import parse_include
from tui.emulator.server import RunningEmulator
from tui.service.actions import (
    ActionFailed,
    Actions,
    CancelPreview,
    ReadOnlyError,
    SubmitPreview,
    clean_label,
)
from tui.service.api import ApiError, BatchesAPI
from tui.service.audit import AuditLog, read_audit
from tui.service.ledger import CREATED, FAILED, PENDING, RECONCILED, Ledger
from tui.service.results_store import ResultsStore

RETRYABLE = {"api_error", "overloaded_error", "rate_limit_error", "timeout_error"}
PERMANENT = {"invalid_request_error", "not_found_error", "authentication_error"}


@dataclass
class Env:
    emu: RunningEmulator
    api: BatchesAPI
    ledger: Ledger
    audit: AuditLog
    store: ResultsStore
    actions: Actions
    tmp: Path

    def advance(self, seconds: float) -> None:
        self.emu.engine.clock.advance(seconds)

    def audit_records(self, **filters: Any) -> list[dict[str, Any]]:
        return [
            r for r in read_audit(self.tmp / "audit").records
            if r["event"].startswith("action.")
            and all(_lookup(r, key) == value for key, value in filters.items())
        ]

    def outcomes(self, event: str) -> list[str]:
        return [r["data"]["outcome"] for r in self.audit_records(event=event)]

    def write(self, name: str, requests: Iterable[Mapping[str, Any]]) -> Path:
        path = self.tmp / name
        path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in requests))
        return path

    async def ended(self, batch_id: str) -> BatchSnapshot:
        self.advance(3600)
        batch = await self.api.retrieve(batch_id)
        assert batch.processing_status == ENDED
        return batch

    def read_only_twin(self) -> Actions:
        return Actions(self.api, self.ledger, self.audit, self.store, read_only=True)


def _lookup(record: dict[str, Any], key: str) -> Any:
    return record["data"].get(key[5:]) if key.startswith("data_") else record.get(key)


def request(custom_id: str, n: int = 0, model: str | None = None) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "params": {
            "model": model or f"claude-test-{custom_id}",
            "max_tokens": 10 + n,
            "messages": [{"role": "user", "content": f"question {custom_id}"}],
        },
    }


@pytest.fixture
async def env_factory(
    make_emulator: MakeEmulator, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Env]]]:
    made: list[Env] = []

    async def make(**options: Any) -> Env:
        options.setdefault("error_rate", 0.0)
        emu = await make_emulator(**options)
        client = anthropic.AsyncAnthropic(api_key="test-key", base_url=emu.url,
                                          _strict_response_validation=True, max_retries=0)
        api = BatchesAPI(client)
        ledger = Ledger(tmp_path / "ledger.sqlite3")
        audit = AuditLog(tmp_path / "audit", actor="tester")
        store = ResultsStore(tmp_path / "results", "test")
        env = Env(emu, api, ledger, audit, store,
                  Actions(api, ledger, audit, store, read_only=False,
                          prices={"claude-test-a": {"input": 1.0, "output": 5.0}}),
                  tmp_path)
        made.append(env)
        return env

    yield make
    for env in made:
        await env.audit.close()
        await env.api.close()
        env.ledger.close()
        env.store.close()


@pytest.fixture
async def env(env_factory: Callable[..., Awaitable[Env]]) -> Env:
    return await env_factory()


async def submit_file(env: Env, count: int, **kwargs: Any) -> list[BatchSnapshot]:
    path = env.write("in.jsonl", [request(f"r{n}", n) for n in range(count)])
    preview = await env.actions.plan_submit(path, **kwargs)
    return await env.actions.submit(preview)


# -- submit ----------------------------------------------------------------------------------


async def test_submit_splits_records_write_ahead_and_audits(env: Env) -> None:
    path = env.write("jobs.jsonl", [request(cid, n) for n, cid in enumerate("abcde")])
    preview = await env.actions.plan_submit(path, max_per_batch=2, label="nightly")
    assert preview.allowed and preview.problem_count == 0
    assert preview.batch_sizes == (2, 2, 1)
    assert preview.labels == ("nightly (1/3)", "nightly (2/3)", "nightly (3/3)")
    assert preview.estimate.requests == 5
    assert preview.estimate.is_estimate and preview.estimate.label().startswith("estimate: ")
    # Only claude-test-a has a price (a config override): the rest are named, not guessed.
    assert preview.estimate.unknown_models == tuple(f"claude-test-{c}" for c in "bcde")
    assert preview.estimate.max_output_cost == Decimal(10) * 5 / 2 / 1_000_000
    assert any("no price known for claude-test-b" in w for w in preview.warnings)
    created = await env.actions.submit(preview)
    assert [b.request_counts.total for b in created] == [2, 2, 1]
    for batch, label in zip(created, preview.labels, strict=True):
        record = env.ledger.submit_for(batch.id)
        assert record is not None and record.state == CREATED
        assert env.ledger.label_for(batch.id) == label
    assert env.ledger.params_for(created[2].id) == {"e": request("e", 4)["params"]}
    assert env.outcomes("action.submit") == ["requested", "succeeded", "succeeded", "succeeded"]
    with pytest.raises(ActionFailed, match="already submitted"):  # a double confirmation
        await env.actions.submit(preview)
    assert env.api.calls["create"] == 3
    succeeded = env.audit_records(event="action.submit", data_outcome="succeeded")
    assert {r["batch_id"] for r in succeeded} == {b.id for b in created}
    assert all(r["actor"] == "tester" for r in succeeded)


async def test_submit_default_label_is_the_file_name(env: Env) -> None:
    (batch,) = await submit_file(env, 2)
    assert env.ledger.label_for(batch.id) == "in.jsonl"


async def test_bad_file_is_reported_by_line_and_nothing_is_submitted(env: Env) -> None:
    lines = [
        orjson.dumps(request("ok")),
        b"{broken",
        orjson.dumps(request("ok")),
        orjson.dumps({"custom_id": "s", "params": {**request("s")["params"], "stream": True}}),
        orjson.dumps({"custom_id": "z", "params": {**request("z")["params"], "max_tokens": 0}}),
        b"\xff\xfe",
    ]
    path = env.tmp / "bad.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    preview = await env.actions.plan_submit(path)
    assert not preview.allowed
    assert [p.line for p in preview.problems] == [2, 3, 4, 5, 6]
    report = preview.problem_report()
    assert report[0].startswith(f"{path}:2: ")
    assert f"{path}:4: params.stream:" in report[2]
    with pytest.raises(ActionFailed, match="nothing submitted"):
        await env.actions.submit(preview)
    assert await env.api.list_all() == []
    assert env.api.calls["create"] == 0
    assert env.ledger.submits() == []
    assert env.outcomes("action.submit") == ["failed"]


async def test_unreadable_file_is_a_problem(env: Env) -> None:
    preview = await env.actions.plan_submit(env.tmp / "missing.jsonl")
    assert not preview.allowed
    assert "cannot read the file" in preview.problems[0].message


async def test_dry_run_sends_the_first_request(env: Env) -> None:
    path = env.write("one.jsonl", [request("a"), request("b")])
    preview = await env.actions.plan_submit(path)
    message = await env.actions.dry_run(preview)
    assert message["model"] == "claude-test-a"
    assert message["type"] == "message"
    assert env.api.calls["create"] == 0
    assert env.outcomes("action.dry_run") == ["requested", "succeeded"]


class FailingCreate(BatchesAPI):
    """Create calls fail with a chosen error (the emulator serves everything else)."""

    error: ApiError

    async def create(self, requests: Iterable[Mapping[str, Any]]) -> BatchSnapshot:
        raise self.error


@pytest.mark.parametrize(
    ("error", "state"),
    [
        (ApiError("bad", kind="bad_request", status=400, error_type="invalid_request_error"),
         FAILED),
        (ApiError("connection reset", kind="connection"), PENDING),
    ],
)
async def test_failed_create_is_failed_or_left_for_reconcile(
    env: Env, error: ApiError, state: str
) -> None:
    api = FailingCreate(env.api.client)
    api.error = error
    actions = Actions(api, env.ledger, env.audit, env.store, read_only=False)
    path = env.write("x.jsonl", [request("a")])
    with pytest.raises(ActionFailed) as failed:
        await actions.submit(await actions.plan_submit(path))
    assert failed.value.api_error is error
    (record,) = env.ledger.submits()
    assert record.state == state
    failure = env.audit_records(event="action.submit", data_outcome="failed")[0]
    assert failure["data"]["error"]["status"] == error.status
    assert failure["data"]["uncertain"] is (state == PENDING)


# -- cancel and delete ----------------------------------------------------------------------


async def test_cancel_running_batch_reaches_ended_with_canceled_counts(env: Env) -> None:
    (batch,) = await submit_file(env, 40, label="to cancel")
    env.advance(20)
    preview = await env.actions.plan_cancel(batch.id)
    assert isinstance(preview, CancelPreview)
    assert preview.allowed and preview.label == "to cancel"
    assert preview.processing == 40
    assert "canceling" in preview.consequence and "40 requests" in preview.consequence
    canceled = await env.actions.cancel(preview)
    assert canceled.processing_status == "canceling"
    final = await env.ended(batch.id)
    assert final.request_counts.canceled > 0
    assert final.request_counts.total == 40
    assert env.outcomes("action.cancel") == ["requested", "succeeded"]
    again = await env.actions.plan_cancel(final)
    assert not again.allowed and "already ended" in again.warnings[0]


async def test_delete_rules(env: Env) -> None:
    (running,) = await submit_file(env, 3)
    preview = await env.actions.plan_delete(running.id)
    assert not preview.allowed and "cancel it first" in preview.warnings[0]
    with pytest.raises(ActionFailed) as failed:
        await env.actions.delete(preview)
    assert failed.value.api_error is not None and failed.value.api_error.status == 400
    assert env.outcomes("action.delete") == ["requested", "failed"]
    error = env.audit_records(event="action.delete", data_outcome="failed")[0]["data"]["error"]
    assert error["type"] == "invalid_request_error"

    ended = await env.ended(running.id)
    preview = await env.actions.plan_delete(ended)
    assert preview.allowed
    assert any("not saved locally" in w for w in preview.warnings)
    assert await env.actions.delete(preview) == running.id
    assert running.id not in {b.id for b in await env.api.list_all()}
    assert env.outcomes("action.delete")[-2:] == ["requested", "succeeded"]


async def test_bulk_cancel_reports_each_target(env: Env) -> None:
    first, second = await submit_file(env, 4, max_per_batch=2)
    await env.ended(second.id)
    (third,) = await submit_file(env, 2)
    bulk = await env.actions.plan_cancel_many([first.id, second.id, third.id])
    assert bulk.targets == (first.id, second.id, third.id)
    assert bulk.allowed_count == 1 and not bulk.needs_typed_count  # first, second ended
    outcomes = await env.actions.cancel_many(bulk)
    assert [o.ok for o in outcomes] == [False, False, True]
    assert outcomes[0].error is not None and outcomes[0].error.status == 400


# -- retry ----------------------------------------------------------------------------------


async def mixed_batch(env: Env) -> tuple[BatchSnapshot, dict[str, dict[str, Any]]]:
    """A batch with retryable and permanent errors, canceled and succeeded requests."""
    requests = [request(f"q{n:02d}", n) for n in range(30)]
    requests.append(request("bogus", 0, model="not-a-model"))  # permanent: not_found_error
    path = env.write("mixed.jsonl", requests)
    (batch,) = await env.actions.submit(await env.actions.plan_submit(path, label="mixed"))
    env.advance(45)  # part way through, then cancel: the rest becomes canceled
    await env.actions.cancel(await env.actions.plan_cancel(batch.id))
    ended = await env.ended(batch.id)
    env.emu.engine.error_rate = 0.0  # retries succeed, so their results echo params
    return ended, {r["custom_id"]: r["params"] for r in requests}


async def test_retry_submits_exactly_the_retryable_with_original_params(
    env_factory: Callable[..., Awaitable[Env]],
) -> None:
    env = await env_factory(error_rate=0.6, seed=3)
    batch, originals = await mixed_batch(env)
    await env.store.ensure(env.api.client, batch)
    rows = env.store.query(batch.id)
    expected = {r.custom_id for r in rows
                if r.type == "expired" or (r.type == "errored" and r.error_type in RETRYABLE)}
    permanent = {(r.custom_id, r.error_type) for r in rows if r.error_type in PERMANENT}
    kinds = {r.type for r in rows}
    assert expected and permanent and {"canceled", "succeeded"} <= kinds  # a real mix

    preview = await env.actions.plan_retry(batch.id)
    assert set(preview.plan.selection.selected) == expected
    assert preview.request_count == len(expected) and preview.batches == 1
    assert preview.by_class["canceled"] == batch.request_counts.canceled
    assert set(preview.fix_first) == permanent
    assert preview.generation == 1 and preview.new_label == "retry of mixed (gen 1)"
    assert preview.previous_retries == ()
    assert any("permanent" in w for w in preview.warnings)

    (retry,) = await env.actions.retry(preview)
    assert env.ledger.parent_of(retry.id) == batch.id
    assert env.ledger.generation(retry.id) == 1
    assert env.ledger.label_for(retry.id) == "retry of mixed (gen 1)"
    ended = await env.ended(retry.id)
    await env.store.ensure(env.api.client, ended)
    results = env.store.query(retry.id)
    assert {r.custom_id for r in results} == expected
    assert all(r.type == "succeeded" for r in results)
    assert {r.custom_id: r.model for r in results} == {
        cid: originals[cid]["model"] for cid in expected
    }
    assert env.ledger.params_for(retry.id) == {cid: originals[cid] for cid in expected}
    assert env.outcomes("action.retry") == ["requested", "succeeded", "succeeded"]

    merged = await env.actions.merged_outcomes(retry.id)
    assert merged.root_id == batch.id
    assert merged.batches == ((batch.id, 0), (retry.id, 1))
    assert all(merged.outcomes[cid].type == "succeeded" for cid in expected)
    assert {(cid, merged.outcomes[cid].error_type) for cid, _ in permanent} == permanent
    assert merged.counts["succeeded"] == batch.request_counts.succeeded + len(expected)

    # Canceled requests only when chosen explicitly.
    wider = await env.actions.plan_retry(batch, parse_include(["retryable", "canceled"]))
    assert wider.request_count == len(expected) + batch.request_counts.canceled


async def test_second_retry_of_the_same_parent_is_guarded(
    env_factory: Callable[..., Awaitable[Env]],
) -> None:
    env = await env_factory(error_rate=0.6, seed=3)
    batch, _ = await mixed_batch(env)
    first_preview = await env.actions.plan_retry(batch.id)
    (first,) = await env.actions.retry(first_preview)

    again = await env.actions.plan_retry(batch.id)
    assert again.previous_retries == (first.id,)
    assert any(first.id in w and "already retried" in w for w in again.warnings)
    with pytest.raises(ActionFailed, match=first.id):
        await env.actions.retry(again)
    with pytest.raises(ActionFailed, match=first.id):  # a stale preview never resubmits
        await env.actions.retry(first_preview, allow_repeat=True)
    assert env.ledger.children_of(batch.id) == [first.id]
    refused = env.audit_records(event="action.retry", data_outcome="refused")
    assert len(refused) == 2 and refused[0]["data"]["reason"] == "already retried"

    (second,) = await env.actions.retry(again, allow_repeat=True)
    assert env.ledger.children_of(batch.id) == [first.id, second.id]


async def test_retry_needs_an_ended_batch(env: Env) -> None:
    (batch,) = await submit_file(env, 2)
    with pytest.raises(ActionFailed, match="in_progress"):
        await env.actions.plan_retry(batch.id)


# -- attach and label -------------------------------------------------------------------------


async def test_attach_a_file_for_a_batch_created_elsewhere(
    env_factory: Callable[..., Awaitable[Env]],
) -> None:
    env = await env_factory(error_rate=0.6, seed=3)
    requests = [request(f"e{n}", n) for n in range(12)]
    outside = await env.api.create(requests)  # not through batchtop: no ledger entry
    ended = await env.ended(outside.id)
    before = await env.actions.plan_retry(ended)
    assert before.request_count == 0 and not before.allowed
    assert any("attach" in w for w in before.warnings)

    path = env.write("theirs.jsonl", [*requests[1:], request("stray")])
    preview = await env.actions.plan_attach(outside.id, path)
    assert preview.allowed
    assert preview.report.unknown_in_file == ("stray",)
    assert preview.report.missing_from_file == ("e0",)
    assert len(preview.warnings) == 2
    report = await env.actions.attach(preview)
    assert report.matched == 11
    assert env.outcomes("action.attach") == ["requested", "succeeded"]
    after = await env.actions.plan_retry(ended, parse_include(["all"]))
    failed = {r.custom_id for r in env.store.query(outside.id) if r.type != "succeeded"}
    assert failed - {"e0"}
    assert after.request_count == len(failed - {"e0"})
    assert after.missing_originals == (("e0",) if "e0" in failed else ())


async def test_label(env: Env) -> None:
    assert await env.actions.label("msgbatch_x", "  nightly\trun ") == "nightly run"
    assert env.ledger.label_for("msgbatch_x") == "nightly run"
    assert await env.actions.label("msgbatch_x", "") is None
    with pytest.raises(ActionFailed):
        await env.actions.label("msgbatch_x", "bad\x1b[31m")
    assert env.outcomes("action.label") == ["requested", "succeeded", "requested", "succeeded"]
    with pytest.raises(ValueError):
        clean_label("x" * 500)


# -- read-only ------------------------------------------------------------------------------


async def test_read_only_refuses_every_mutation_and_records_it(env: Env) -> None:
    (batch,) = await submit_file(env, 3)
    ended = await env.ended(batch.id)
    (running,) = await submit_file(env, 2)
    ro = env.read_only_twin()
    path = env.write("ro.jsonl", [request("a")])
    # Planning reads only, so it works in read-only mode.
    submit = await ro.plan_submit(path)
    cancel = await ro.plan_cancel(running)
    delete = await ro.plan_delete(ended)
    retry = await ro.plan_retry(ended, parse_include(["all"]))
    attach = await ro.plan_attach(ended, path)
    bulk = await ro.plan_cancel_many([running])
    creates = env.api.calls["create"]
    attempts: list[Awaitable[Any]] = [
        ro.submit(submit), ro.dry_run(submit), ro.cancel(cancel), ro.delete(delete),
        ro.label(batch.id, "x"), ro.retry(retry), ro.attach(attach), ro.cancel_many(bulk),
    ]
    for attempt in attempts:
        with pytest.raises(ReadOnlyError):
            await attempt
    assert env.api.calls["create"] == creates
    assert env.api.calls["cancel"] == 0 and env.api.calls["delete"] == 0
    assert env.api.calls["create_message"] == 0
    refused = env.audit_records(data_outcome="refused")
    assert {r["event"] for r in refused} == {
        "action.submit", "action.dry_run", "action.cancel", "action.delete", "action.label",
        "action.retry", "action.attach",
    }
    assert all(r["data"]["reason"] == "read-only" for r in refused)
    assert (await env.api.retrieve(running.id)).processing_status == "in_progress"


async def test_user_refusal_is_recorded(env: Env) -> None:
    (batch,) = await submit_file(env, 2)
    preview = await env.actions.plan_cancel(batch.id)
    await env.actions.refuse(preview)
    (record,) = env.audit_records(event="action.cancel")
    assert record["data"]["outcome"] == "refused" and record["data"]["reason"] == "declined"
    assert record["batch_id"] == batch.id


# -- crash recovery ---------------------------------------------------------------------------


async def test_reconcile_after_a_crash(env: Env) -> None:
    # Crash 1: the create call succeeded but the ledger never heard back.
    path = env.write("c.jsonl", [request(f"c{n}") for n in range(7)])
    preview: SubmitPreview = await env.actions.plan_submit(path, label="crashed")
    (chunk,) = preview.chunks
    lost = env.ledger.begin_submit(list(chunk), source_file=str(path), label="crashed")
    created = await env.api.create([r.to_api() for r in chunk])
    # Crash 2: the record was written, the create call never made (recorded an hour ago).
    old_ledger = Ledger(env.ledger.path, clock=lambda: created.created_at - timedelta(hours=1))
    never = old_ledger.begin_submit(list(chunk))
    old_ledger.close()
    # An unrelated batch with another count does not match.
    await env.api.create([request("other")])

    restarted = Actions(env.api, env.ledger, env.audit, env.store, read_only=True)
    report_only = await restarted.reconcile(await env.api.list_all())
    assert {m.submit_id: m.verdict for m in report_only} == {
        lost: "matched", never: "not_created"}
    assert len(env.ledger.pending_submits()) == 2  # read-only: nothing written

    matches = await env.actions.reconcile(await env.api.list_all())
    verdicts = {m.submit_id: (m.verdict, m.batch_id) for m in matches}
    assert verdicts == {lost: ("matched", created.id), never: ("not_created", None)}
    found = env.ledger.submit_for(created.id)
    assert found is not None and found.state == RECONCILED
    assert env.ledger.label_for(created.id) == "crashed"
    assert set(env.ledger.params_for(created.id)) == {f"c{n}" for n in range(7)}
    gone = env.ledger.submit(never)
    assert gone is not None and gone.state == FAILED
    assert env.ledger.pending_submits() == []
    assert await env.actions.reconcile(await env.api.list_all()) == []
    reconciled = env.audit_records(event="action.submit", data_reconciled=True)
    assert sorted(r["data"]["outcome"] for r in reconciled) == ["failed", "succeeded"]
