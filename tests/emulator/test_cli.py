"""`batchtop emulator` as a process: the `listening on` line, the SDK against it, clean SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import anthropic
import pytest

from tests.emulator.sdk import requests, sync_client
from tui.emulator.threaded import ThreadedEmulator

ROOT = Path(__file__).resolve().parents[2]


def _spawn(*options: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tui", "emulator", "--port", "0", *options],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_listening_line_then_clean_exit(stop: signal.Signals) -> None:
    process = _spawn("--scenario", "demo", "--speed", "60", "--seed", "4")
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("listening on http://127.0.0.1:")
        url = first.strip().removeprefix("listening on ")
        port = int(url.rsplit(":", 1)[1])
        assert port > 0
        client = sync_client(url)
        assert len(client.messages.batches.list(limit=100).data) >= 14
        batch = client.messages.batches.create(requests=requests(2))
        assert client.messages.batches.retrieve(batch.id).id == batch.id
        process.send_signal(stop)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_bad_options_exit_2() -> None:
    process = _spawn("--faults", "cut=7")
    _, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "cut" in err


def test_api_key_option() -> None:
    process = _spawn("--api-key", "secret")
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().removeprefix("listening on ")
        with pytest.raises(anthropic.AuthenticationError):
            sync_client(url).messages.batches.list()
        good = sync_client(url, key="secret")
        assert good.messages.batches.list().data == []
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


def test_busy_port_exits_1(threaded_emulator: ThreadedEmulator) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tui", "emulator", "--port", str(threaded_emulator.port)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert out == ""
    assert "cannot listen" in err
