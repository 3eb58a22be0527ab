"""The API key never lands anywhere: a whole session with a sentinel key, then grep for it.

The session goes through settings (a key command), the monitor (with an outage), actions
(including failures, one whose error text echoes the key), a results download, the audit
log, the ledger and the results store. Afterwards no file under BATCHTOP_HOME, no byte of
stdout or stderr, no log line and no exception text or traceback holds the key.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import traceback
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.emulator_fixtures import MakeEmulator
from tests.reliability.harness import (
    FAST_CADENCE,
    SENTINEL_KEY,
    EventTap,
    capture_logs,
    fast_backoff,
    files_containing,
    wait_until,
)
from tui.core.events import API_ERROR, API_RECOVERED
from tui.emulator.errors import invalid
from tui.emulator.faults import Faults, parse_faults
from tui.paths import locations
from tui.service.actions import ActionFailed, Actions
from tui.service.api import ApiError, BatchesAPI
from tui.service.audit import AuditLog, read_audit
from tui.service.credentials import KeyCommandError, run_key_command
from tui.service.ledger import Ledger
from tui.service.monitor import Monitor
from tui.service.results_store import ResultsStore, workspace_key
from tui.settings import load_settings

NEEDLE = SENTINEL_KEY.encode()


def key_command(tmp_path: Path, *, fail: bool = False) -> str:
    """A key command (outside BATCHTOP_HOME) printing the key, then a second line."""
    script = tmp_path / "keytool" / ("failing.py" if fail else "key.py")
    script.parent.mkdir(exist_ok=True)
    script.write_text(
        "import sys\n"
        f"print({SENTINEL_KEY!r})\n"
        "print('account: on-call@example.com')\n"
        + ("sys.stderr.write('denied: ' + " + repr(SENTINEL_KEY) + ")\nsys.exit(3)\n"
           if fail else "")
    )
    return f"{sys.executable} {script}"


def write_config(tmp_path: Path, base_url: str) -> None:
    config = locations().config_file
    config.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    config.write_text(
        "[profiles.default]\n"
        f'api_key_command = "{key_command(tmp_path)}"\n'
        f'base_url = "{base_url}"\n'
        "[profiles.broken]\n"
        f'api_key_command = "{key_command(tmp_path, fail=True)}"\n'
    )
    config.chmod(0o600)


def request(custom_id: str) -> dict[str, Any]:
    return {"custom_id": custom_id,
            "params": {"model": "claude-haiku-4-5", "max_tokens": 8,
                       "messages": [{"role": "user", "content": f"hello {custom_id}"}]}}


def exception_texts(exc: BaseException) -> list[str]:
    """Everything a person or a log could see of an exception, chained ones included."""
    texts = ["".join(traceback.format_exception(exc)), str(exc), repr(exc)]
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), *(repr(arg) for arg in current.args)]
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__)
    return texts


async def test_a_full_session_never_writes_or_prints_the_key(
    make_emulator: MakeEmulator, tmp_path: Path, isolated_home: Path,
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    emu = await make_emulator(scenario="large:40", api_key=SENTINEL_KEY, error_rate=0.3)
    write_config(tmp_path, emu.url)
    settings = load_settings(environ={})
    key = settings.resolve_api_key(environ={})
    assert key == SENTINEL_KEY
    assert SENTINEL_KEY not in repr(settings) + repr(settings.effective())
    raised: list[BaseException] = []

    broken = load_settings(argparse.Namespace(profile="broken"), environ={})
    with pytest.raises(KeyCommandError) as denied:
        broken.resolve_api_key(environ={})
    raised.append(denied.value)

    async with capture_logs() as logs:
        api = BatchesAPI.connect(key, settings.base_url, timeout=2.0)
        audit = AuditLog(locations().audit, secrets=[key])
        ledger = Ledger()
        store = ResultsStore.default(workspace_key(settings.base_url, key))
        store.retry_delay = 0.01
        actions = Actions(api, ledger, audit, store, read_only=False)
        tap = EventTap(audit)
        monitor = Monitor(api, audit, FAST_CADENCE, backoff=fast_backoff())
        task = asyncio.create_task(monitor.run())
        try:
            await wait_until(lambda: monitor.state.synced, what="sync")
            emu.engine.faults = parse_faults("500=1")
            await wait_until(lambda: monitor.state.degraded is not None, what="outage")
            emu.engine.faults = Faults()
            await wait_until(lambda: monitor.state.degraded is None, what="recovery")

            source = tmp_path / "requests.jsonl"
            source.write_bytes(b"".join(orjson.dumps(request(f"r{n}")) + b"\n"
                                        for n in range(5)))
            (created,) = await actions.submit(await actions.plan_submit(source, label="sess"))
            try:  # a refused action: an in-progress batch cannot be deleted
                await actions.delete(await actions.plan_delete(created.id))
            except ActionFailed as exc:
                raised.append(exc)
            else:
                raise AssertionError("deleting a running batch succeeded")

            def echo_the_key(batch_id: str) -> Any:  # a proxy that quotes the credential
                raise invalid(f"credential {SENTINEL_KEY} may not cancel {batch_id}")

            with monkeypatch.context() as patch:
                patch.setattr(emu.engine, "cancel", echo_the_key)
                try:
                    await actions.cancel(await actions.plan_cancel(created.id))
                except ActionFailed as exc:
                    raised.append(exc)
                    assert exc.api_error is not None and "[redacted]" in exc.api_error.message

            (large,) = [b for b in await api.list_all() if b.id != created.id]
            emu.engine.faults = parse_faults("cut=1")
            try:
                await store.ensure(api.client, large, audit=audit)
            except ApiError as exc:
                raised.append(exc)
            emu.engine.faults = Faults()
            status = await store.ensure(api.client, large, audit=audit)
            assert status.complete
            preview = await actions.plan_retry(large)
            if preview.allowed:
                raised.append(await _retry_expecting_refusal(actions, preview))
            await actions.label(large.id, "nightly run")
            with pytest.raises(ApiError) as wrong:  # the key, mistyped, in an error
                await BatchesAPI.connect(SENTINEL_KEY + "x", emu.url).retrieve(large.id)
            raised.append(wrong.value)
        finally:
            monitor.stop()
            await task
            await audit.close()
            await api.close()
            ledger.close()
            store.close()
        assert len(tap.named(API_ERROR)) == len(tap.named(API_RECOVERED)) == 1

    out, err = capfd.readouterr()
    assert SENTINEL_KEY not in out + err
    assert SENTINEL_KEY not in logs.text
    for error in raised:
        for text in exception_texts(error):
            assert SENTINEL_KEY not in text, text
    check_home(isolated_home)


def check_home(home: Path) -> None:
    """Every kind of file was written, and none of them (nor any name) holds the key."""
    written = list(home.rglob("*"))
    assert any(p.name.startswith("ledger.sqlite3") for p in written)
    assert any(p.suffix == ".jsonl" for p in (home / "data" / "results").rglob("*"))
    assert read_audit(locations().audit).records
    assert files_containing(home, NEEDLE) == []
    assert not any(SENTINEL_KEY in p.name for p in written)


async def _retry_expecting_refusal(actions: Actions, preview: Any) -> BaseException:
    """Retrying a batch batchtop did not submit fails (no original params); keep the error."""
    try:
        await actions.retry(preview)
    except ActionFailed as exc:
        return exc
    return RuntimeError("retried")


def test_a_failing_key_command_never_echoes_its_output(tmp_path: Path) -> None:
    with pytest.raises(KeyCommandError) as failed:
        run_key_command(key_command(tmp_path, fail=True))
    assert all(SENTINEL_KEY not in text for text in exception_texts(failed.value))

