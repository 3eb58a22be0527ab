"""Hostile request files for submit and attach: rejected by line, nothing sent, nothing kept.

Each file holds good lines around one bad one. The preview names the file and the line in
one inert message; submitting or attaching it is refused; the emulator has no new batch,
and the ledger holds no submit and no attachment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.emulator_fixtures import MakeEmulator
from tui.core.requests import MAX_LINE_BYTES
from tui.core.sanitize import has_unsafe
from tui.emulator.server import RunningEmulator
from tui.service.actions import ActionFailed, Actions
from tui.service.api import BatchesAPI
from tui.service.audit import AuditLog, read_audit
from tui.service.ledger import Ledger
from tui.service.results_store import ResultsStore


def good(custom_id: str) -> bytes:
    return orjson.dumps({"custom_id": custom_id,
                         "params": {"model": "claude-haiku-4-5", "max_tokens": 8,
                                    "messages": [{"role": "user", "content": "hi"}]}})


def nested(depth: int) -> bytes:
    return (b'{"custom_id":"deep","params":{"model":"m","max_tokens":1,"messages":'
            b'[{"role":"user","content":' + b"[" * depth + b"]" * depth + b"}]}}")


HOSTILE: dict[str, tuple[bytes, str]] = {
    # name: (the bad line, a word its message must contain)
    "invalid-utf8": (good("u").replace(b'"hi"', b'"h\xff\xfei"'), "UTF-8"),
    "nul-byte": (good("n").replace(b'"hi"', b'"h\x00i"'), "NUL"),
    "deep-1100": (nested(1100), "nested"),
    "deep-300": (nested(300), "nested"),
    "lone-surrogate": (good("s").replace(b'"hi"', b'"\\ud800"'), "invalid JSON"),
    "not-json": (b'{"custom_id": "x", "params": {', "invalid JSON"),
    "escape-in-id": (good("e").replace(b'"e"', b'"\\u001b]52;c;cm0gLXJm\\u0007"'), "custom_id"),
    "bidi-in-id": (good("b").replace(b'"b"', '"\u202eexe.txt"'.encode()), "custom_id"),
    "array": (b"[1, 2, 3]", "JSON object"),
    "bom-mid-file": (b"\xef\xbb\xbf" + good("bom"), "byte order mark"),
}


@dataclass
class Env:
    emu: RunningEmulator
    api: BatchesAPI
    ledger: Ledger
    audit_dir: Path
    actions: Actions
    tmp: Path

    def write(self, name: str, *lines: bytes) -> Path:
        path = self.tmp / name
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        return path

    def nothing_submitted(self) -> None:
        assert len(self.emu.engine) == 0, "a batch was created"
        assert self.ledger.submits() == []


@pytest.fixture
async def env(make_emulator: MakeEmulator, tmp_path: Path) -> AsyncIterator[Env]:
    emu = await make_emulator(scenario="empty", error_rate=0.0)
    api = BatchesAPI.connect("test-key", emu.url)
    ledger = Ledger(tmp_path / "ledger.sqlite3")
    audit = AuditLog(tmp_path / "audit")
    store = ResultsStore(tmp_path / "results", "ws", retry_delay=0.01)
    yield Env(emu, api, ledger, tmp_path / "audit",
              Actions(api, ledger, audit, store, read_only=False), tmp_path)
    await audit.close()
    await api.close()
    ledger.close()
    store.close()


def assert_reported(report: list[str], path: Path, line: int, word: str) -> None:
    (message,) = [m for m in report if m.startswith(f"{path}:{line}:")]
    assert word.lower() in message.lower(), message
    assert not has_unsafe(message), message
    assert len(message) < 400


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_line_is_named_and_nothing_is_submitted(env: Env, name: str) -> None:
    bad, word = HOSTILE[name]
    path = env.write(f"{name}.jsonl", good("ok-1"), good("ok-2"), bad, good("ok-4"))
    preview = await env.actions.plan_submit(path)
    assert not preview.allowed and preview.problem_count >= 1
    assert_reported(preview.problem_report(), path, 3, word)
    with pytest.raises(ActionFailed, match="nothing submitted"):
        await env.actions.submit(preview)
    env.nothing_submitted()
    outcomes = [r["data"]["outcome"] for r in read_audit(env.audit_dir).records
                if r["event"] == "action.submit"]
    assert outcomes == ["failed"]


async def test_a_bom_at_the_start_of_the_file(env: Env) -> None:
    path = env.write("bom.jsonl", b"\xef\xbb\xbf" + good("first"), good("second"))
    preview = await env.actions.plan_submit(path)
    assert not preview.allowed
    assert_reported(preview.problem_report(), path, 1, "byte order mark")
    env.nothing_submitted()


async def test_a_huge_line_is_refused_without_holding_it(env: Env) -> None:
    path = env.tmp / "huge.jsonl"
    with path.open("wb") as handle:
        handle.write(good("small") + b"\n")
        handle.write(b'{"custom_id":"big","params":{"model":"m","pad":"')
        handle.write(b"x" * (MAX_LINE_BYTES + 10))
        handle.write(b'"}}\n')
        handle.write(good("after") + b"\n")
    preview = await env.actions.plan_submit(path)
    assert not preview.allowed
    assert_reported(preview.problem_report(), path, 2, "bytes")
    with pytest.raises(ActionFailed):
        await env.actions.submit(preview)
    env.nothing_submitted()


async def test_crlf_files_are_fine(env: Env) -> None:
    path = env.tmp / "crlf.jsonl"
    path.write_bytes(good("c1") + b"\r\n" + good("c2") + b"\r\n")
    preview = await env.actions.plan_submit(path)
    assert preview.allowed and preview.request_count == 2


@pytest.mark.parametrize("what", ["empty", "blank-lines", "directory", "missing"])
async def test_files_with_nothing_to_submit(env: Env, what: str) -> None:
    path = env.tmp / what
    if what == "empty":
        path.write_bytes(b"")
    elif what == "blank-lines":
        path.write_bytes(b"\n  \n\t\n")
    elif what == "directory":
        path.mkdir()
    preview = await env.actions.plan_submit(path)
    assert not preview.allowed and preview.problem_report()
    assert all(not has_unsafe(m) for m in preview.problem_report())
    with pytest.raises(ActionFailed):
        await env.actions.submit(preview)
    env.nothing_submitted()


async def test_many_problems_are_capped_and_counted(env: Env) -> None:
    path = env.write("noise.jsonl", *([b"\x1b[2J not json"] * 5000))
    preview = await env.actions.plan_submit(path)
    report = preview.problem_report()
    assert preview.problem_count == 5000 and len(report) <= 1001
    assert report[-1].startswith("... and ")
    assert not any(has_unsafe(m) for m in report)
    env.nothing_submitted()


@pytest.mark.parametrize("name", ["invalid-utf8", "nul-byte", "deep-1100", "escape-in-id"])
async def test_attach_refuses_a_hostile_file(env: Env, name: str) -> None:
    batch = await env.api.create([orjson.loads(good("ok-1")), orjson.loads(good("ok-2"))])
    env.emu.engine.clock.advance(3600)
    ended = await env.api.retrieve(batch.id)
    assert ended.is_ended
    bad, word = HOSTILE[name]
    path = env.write(f"attach-{name}.jsonl", good("ok-1"), bad, good("ok-2"))
    preview = await env.actions.plan_attach(ended, path)
    assert not preview.allowed
    report = [p.describe(str(path)) for p in preview.problems]
    assert_reported(report, path, 2, word)
    with pytest.raises(ActionFailed):
        await env.actions.attach(preview)
    assert env.ledger.attachment_for(batch.id) is None
    assert env.ledger.params_for(batch.id) == {}

