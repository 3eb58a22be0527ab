"""Where results live on disk: workspace and raw file names, private files, raw line reads."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from tui.paths import ensure_private_dir, locations

RAW_BLOCK = 1 << 20
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def workspace_key(base_url: str | None, key_id: str) -> str:
    """A directory name for one workspace: the API host plus a hash of `key_id`.

    The key itself never reaches the disk: only 16 hex digits of its SHA-256 do.
    """
    url = urlsplit(base_url or "https://api.anthropic.com")
    label = (url.hostname or "api") + (f"_{url.port}" if url.port else "")
    path = url.path.strip("/")
    if path:
        label += "_" + path
    label = re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("._-")[:80] or "api"
    digest = hashlib.sha256(key_id.encode("utf-8")).hexdigest()[:16]
    return f"{label}-{digest}"


def default_root() -> Path:
    """``<data dir>/results``, where every workspace's store lives."""
    return ensure_private_dir(locations().data) / "results"


def raw_file_name(batch_id: str) -> str:
    """The raw JSONL file of a batch; ids that are not plain names are hashed."""
    if SAFE_NAME.fullmatch(batch_id):
        return f"{batch_id}.jsonl"
    return f"batch-{hashlib.sha256(batch_id.encode('utf-8')).hexdigest()[:32]}.jsonl"


def private_file(path: Path) -> None:
    """Create `path` with mode 0600 if missing; tighten it if it exists."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        if os.fstat(fd).st_mode & 0o077:
            os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


class RawReader:
    """Reads lines by (offset, length) from a raw file, in big blocks when access is forward."""

    def __init__(self, handle: IO[bytes], block: int = RAW_BLOCK) -> None:
        self._handle = handle
        self._block_size = block
        self._start = 0
        self._data = b""

    def read(self, offset: int, length: int) -> bytes:
        start = offset - self._start
        if start >= 0 and start + length <= len(self._data):
            return self._data[start : start + length]
        self._handle.seek(offset)
        self._data = self._handle.read(max(length, self._block_size))
        self._start = offset
        return self._data[:length]
