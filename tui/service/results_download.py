"""Downloading one ended batch's results into the store: attempts, retries, audit events."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

import anthropic
import httpx2

from tui.core.events import RESULTS_DOWNLOADED, RESULTS_FAILED, Event
from tui.core.models import BatchSnapshot
from tui.core.results import DownloadProgress, StoreStatus
from tui.core.timefmt import utcnow
from tui.service.api import ApiError
from tui.service.index_pool import IndexPool, IndexWorkerFailed
from tui.service.results_ingest import Ingest

T = TypeVar("T")

DEFAULT_ATTEMPTS = 3
FEED_BYTES = 1 << 20
FIRST_FEED_BYTES = 64 << 10  # a small first hand-off so the first rows show up at once

ProgressCallback = Callable[[DownloadProgress], None]
Timer = Callable[[], float]
"""Seconds from an arbitrary origin (`time.monotonic`): only differences count."""
Clock = Callable[[], datetime]


class ResultsNotReady(ValueError):
    """Results exist only once a batch has ended."""


class ResultsDownloadError(ApiError):
    """Results could not be downloaded in full; `store_status` says what the store kept."""

    def __init__(self, cause: ApiError, store_status: StoreStatus | None, attempts: int) -> None:
        super().__init__(
            cause.message,
            kind=cause.kind,
            status=cause.status,
            error_type=cause.error_type,
            request_id=cause.request_id,
            retry_after=cause.retry_after,
        )
        self.store_status = store_status
        self.attempts = attempts


class AuditSink(Protocol):
    """What `ensure` needs of an audit log (`tui.service.audit.AuditLog` is one)."""

    async def record(self, event: Event) -> None: ...


class DownloadTarget(Protocol):
    """Where `download` puts a batch (a `ResultsStore`)."""

    db_path: Path
    attempts: int
    retry_delay: float
    feed_bytes: int

    def raw_path(self, batch_id: str) -> Path: ...

    def index_pool(self, expected: int) -> IndexPool | None:
        """Worker processes to index a download of `expected` results, if worth it."""
        ...

    def disable_workers(self) -> None:
        """The workers failed: index in this process from now on."""
        ...

    def status(self, batch_id: str) -> StoreStatus | None: ...


async def download(
    target: DownloadTarget,
    api_client: anthropic.AsyncAnthropic,
    batch: BatchSnapshot,
    progress: ProgressCallback | None,
    audit: AuditSink | None,
    refresh: bool,
    *,
    timer: Timer = time.monotonic,
    clock: Clock = utcnow,
) -> StoreStatus:
    """Download `batch` into `target` (`ResultsStore.ensure` has checked it is needed).

    Retries transient failures and short streams up to `target.attempts` times; raises
    `ResultsDownloadError` when the store still lacks results after them. `timer` measures
    how long it took and `clock` stamps ``downloaded_at`` (both replaceable to freeze them).
    """
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="results-ingest")

    def run(fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        return loop.run_in_executor(executor, fn, *args)

    started = timer()
    ingest: Ingest | None = None
    attempt = 0
    try:
        opening = executor.submit(
            Ingest, target.db_path, target.raw_path(batch.id), batch.id,
            batch.request_counts.total, range_bytes=2 * target.feed_bytes,
        )
        try:
            ingest = await asyncio.wrap_future(opening)
        except asyncio.CancelledError:
            # Cancelled while another process held the file lock: close it once it opens.
            opening.add_done_callback(_close_late)
            raise
        done = target.status(batch.id)  # now that the file lock is ours
        if done is not None and done.complete and not refresh:
            return done
        error: ApiError | None = None
        for attempt in range(1, target.attempts + 1):
            await run(ingest.restart, attempt, target.index_pool(batch.request_counts.total))
            try:
                error = await _stream_once(api_client, ingest, run, progress, target.feed_bytes)
            except IndexWorkerFailed:
                # Not the network's fault: the same attempt again, indexed in this process.
                await run(target.disable_workers)
                await run(ingest.restart, attempt, None)
                error = await _stream_once(api_client, ingest, run, progress, target.feed_bytes)
            if error is None and ingest.expected == 0:
                await run(ingest.adopt_count)
            if error is None and ingest.complete:
                break
            if error is not None and not error.transient:
                break
            if attempt < target.attempts:
                await asyncio.sleep(target.retry_delay * attempt)
        seconds = timer() - started
        final = await run(ingest.finalize, seconds, str(error) if error else None, clock())
    except Exception as exc:
        cause = exc.__cause__ if isinstance(exc, _IngestFailed) and exc.__cause__ else exc
        failure = ApiError.from_exception(cause)
        await _record(audit, _failed_event(batch.id, failure, None, attempt))
        raise ResultsDownloadError(failure, target.status(batch.id), attempt) from exc
    finally:
        if ingest is not None:
            # Queued behind any chunk still being indexed; nothing here may await.
            executor.submit(ingest.close)
        executor.shutdown(wait=False)
    if final.complete:
        await _record(audit, _downloaded_event(final))
        return final
    await _record(audit, _failed_event(batch.id, error, final, attempt))
    if error is not None:
        raise ResultsDownloadError(error, final, attempt)
    return final

async def _stream_once(
    api_client: anthropic.AsyncAnthropic,
    ingest: Ingest,
    run: Callable[..., asyncio.Future[DownloadProgress]],
    progress: ProgressCallback | None,
    feed_bytes: int,
) -> ApiError | None:
    """One pass over the results stream; returns the network failure, or None if it ended.

    A failure of the store itself (disk, SQLite) is raised as `_IngestFailed`.
    """
    pending: asyncio.Future[DownloadProgress] | None = None
    buffer: list[bytes] = []
    size = 0
    threshold = min(FIRST_FEED_BYTES, feed_bytes)
    try:
        results = api_client.messages.batches.with_streaming_response.results
        async with results(ingest.batch_id) as response:
            async for chunk in response.iter_bytes():
                buffer.append(chunk)
                size += len(chunk)
                if size < threshold:
                    continue
                if pending is not None:
                    _report(progress, await _worker(pending))
                # Hand the bytes to the worker and go on reading while it indexes them.
                pending = run(ingest.feed_chunks, buffer)
                buffer = []
                size = 0
                threshold = feed_bytes
    except (anthropic.AnthropicError, httpx2.HTTPError) as exc:
        failure: ApiError | None = ApiError.from_exception(exc)
    else:
        failure = None
    finally:
        if pending is not None and not pending.done():
            pending.add_done_callback(_consume)
    if pending is not None:
        _report(progress, await _worker(pending))
    if buffer:
        # Even after a cut: whole lines that arrived are worth keeping.
        await _worker(run(ingest.feed_chunks, buffer))
    _report(progress, await _worker(run(ingest.finish, failure is None)))
    return failure


class _IngestFailed(Exception):
    """The store could not take the bytes (disk, SQLite): not a reason to download again."""


async def _worker(future: asyncio.Future[T]) -> T:
    try:
        return await future
    except IndexWorkerFailed:
        raise
    except Exception as exc:
        raise _IngestFailed(str(exc) or type(exc).__name__) from exc


def _close_late(future: concurrent.futures.Future[Ingest]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _report(callback: ProgressCallback | None, state: DownloadProgress) -> None:
    if callback is not None:
        callback(state)


async def _record(audit: AuditSink | None, event: Event) -> None:
    if audit is not None:
        await audit.record(event)


def _downloaded_event(status: StoreStatus) -> Event:
    return Event(
        RESULTS_DOWNLOADED,
        status.batch_id,
        {
            "lines": status.lines,
            "bytes": status.bytes,
            "seconds": status.seconds,
            "expected": status.expected,
            "malformed": status.malformed,
            "unknown": status.unknown,
            "attempts": status.attempts,
        },
    )


def _failed_event(
    batch_id: str, error: ApiError | None, status: StoreStatus | None, attempts: int
) -> Event:
    data: dict[str, Any] = {"attempts": attempts}
    if error is not None:
        data.update(
            error=error.message,
            kind=error.kind,
            status=error.status,
            error_type=error.error_type,
            request_id=error.request_id,
        )
    else:
        data["error"] = "results stream ended before every result arrived"
        data["kind"] = "incomplete"
    if status is not None:
        data.update(
            lines=status.lines,
            bytes=status.bytes,
            expected=status.expected,
            missing=status.missing,
            seconds=status.seconds,
        )
    return Event(RESULTS_FAILED, batch_id, data)
