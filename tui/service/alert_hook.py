"""Run the user's ``on_alert`` command with the alert as JSON on stdin; never fatal."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import signal
from dataclasses import dataclass

import orjson

from tui.core.alerts import Alert
from tui.core.sanitize import safe_text

log = logging.getLogger(__name__)

STDERR_TAIL = 2_000  # bytes of the hook's stderr read for the failure message
DETAIL_CHARS = 300  # characters of it kept, on one line


@dataclass(frozen=True, slots=True)
class HookResult:
    """How the hook went: `ok` only for exit status 0 within the timeout."""

    ok: bool
    returncode: int | None = None
    error: str | None = None


def hook_environment(alert: Alert) -> dict[str, str]:
    """The caller's environment plus the alert's fields, for commands that ignore stdin."""
    env = dict(os.environ)
    env.update(
        BATCHTOP_ALERT_KIND=alert.kind.value,
        BATCHTOP_ALERT_SEVERITY=alert.severity.value,
        BATCHTOP_ALERT_BATCH_ID=alert.batch_id.replace("\0", ""),
        BATCHTOP_ALERT_MESSAGE=alert.message.replace("\0", ""),
    )
    return env


def alert_payload(alert: Alert) -> bytes:
    """One line of JSON; text orjson refuses (lone surrogates from a hostile API) is escaped."""
    document = alert.to_json()
    try:
        return orjson.dumps(document, default=str) + b"\n"
    except TypeError:
        return json.dumps(document, default=str).encode("ascii") + b"\n"


async def _converse(process: asyncio.subprocess.Process, payload: bytes) -> tuple[int, bytes]:
    """Write the payload, then keep only the tail of stderr until the process exits."""
    assert process.stdin is not None and process.stderr is not None
    try:
        process.stdin.write(payload)
        await process.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # a command may exit without reading its input
    finally:
        process.stdin.close()
    tail = b""
    while chunk := await process.stderr.read(4096):
        tail = (tail + chunk)[-STDERR_TAIL:]
    return await process.wait(), tail


async def _kill_group(process: asyncio.subprocess.Process) -> None:
    """Kill the hook and everything it started (it leads its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        await process.wait()


def _failed(program: str, error: str, returncode: int | None = None) -> HookResult:
    # Only the program is logged: the rest of a command line may carry a webhook token.
    log.warning("on_alert command %s failed: %s", safe_text(program), error)
    return HookResult(False, returncode, error)


def _detail(stderr: bytes) -> str:
    text = " ".join(safe_text(stderr.decode("utf-8", "replace")).split())
    return text[-DETAIL_CHARS:]


# The timeout is the hook's lifetime, not a cancel scope for the caller: when it passes the
# process group is killed and a result is still returned, hence a parameter (ASYNC109).
async def run_alert_hook(
    command: str, alert: Alert, timeout: float = 10.0  # noqa: ASYNC109
) -> HookResult:
    """Run `command` (split like a shell, not run by one) with `alert.to_json()` on stdin.

    A hook that outlives `timeout` seconds is killed with its whole process group. Failures
    are logged and returned, never raised; only cancellation propagates (after the kill).
    """
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return _failed("(unparsable)", f"cannot parse the command: {exc}")
    if not argv:
        return _failed("(empty)", "the command is empty")
    program = argv[0]
    payload = alert_payload(alert)
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=hook_environment(alert),
            start_new_session=True,
        )
    except (OSError, ValueError) as exc:  # ValueError: a NUL or unencodable text in argv/env
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return _failed(program, f"cannot start {program!r}: {reason}")
    try:
        async with asyncio.timeout(timeout):
            returncode, stderr = await _converse(process, payload)
    except TimeoutError:
        await _kill_group(process)
        return _failed(program, f"timed out after {timeout:g}s and was killed", process.returncode)
    except asyncio.CancelledError:
        await _kill_group(process)
        raise
    except OSError as exc:
        await _kill_group(process)
        return _failed(program, f"I/O error talking to the command: {exc}", process.returncode)
    if returncode != 0:
        detail = _detail(stderr)
        message = f"exited with status {returncode}" + (f": {detail}" if detail else "")
        return _failed(program, message, returncode)
    # A clean exit may still leave children behind in its group; they are not ours to wait for.
    return HookResult(True, 0)
