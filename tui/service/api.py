"""The one wrapper over `anthropic.AsyncAnthropic`: calls in, snapshots and `ApiError`s out."""

from __future__ import annotations

import email.utils
import time
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import anthropic
import httpx2
import orjson
from anthropic import AsyncAPIResponse

from tui.core.models import BatchSnapshot
from tui.service.results_files import workspace_key

T = TypeVar("T")

ErrorKind = Literal[
    "rate_limited", "server", "connection", "timeout", "auth", "not_found", "bad_request", "other"
]
# Kinds a poller waits out with backoff; the rest need a person (key, id, request body).
TRANSIENT_KINDS: frozenset[str] = frozenset({"rate_limited", "server", "connection", "timeout"})

LIST_PAGE_MAX = 1000
MESSAGE_REQUIRED: tuple[str, ...] = ("model", "max_tokens", "messages")
DEFAULT_TIMEOUT_S = 30.0
_REDACTED = "[redacted]"


class ApiError(Exception):
    """Any failure of an API call, reduced to what a person and a poller need."""

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind = "other",
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind: ErrorKind = kind
        self.status = status
        self.error_type = error_type
        self.request_id = request_id
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """True when waiting and trying again is the fix (429, 5xx, network, timeout)."""
        return self.kind in TRANSIENT_KINDS

    def __str__(self) -> str:
        head = " ".join(
            part for part in (str(self.status) if self.status else None, self.error_type) if part
        )
        text = f"{head}: {self.message}" if head else self.message
        return f"{text} (request {self.request_id})" if self.request_id else text

    def __repr__(self) -> str:
        return (
            f"ApiError(kind={self.kind!r}, status={self.status!r}, error_type={self.error_type!r}, "
            f"message={self.message!r}, request_id={self.request_id!r}, "
            f"retry_after={self.retry_after!r})"
        )

    @classmethod
    def from_exception(cls, exc: BaseException, *, secret: str | None = None) -> ApiError:
        """Map an SDK (or transport) exception; `secret` is scrubbed from the message."""
        if isinstance(exc, ApiError):
            return exc
        if isinstance(exc, anthropic.APIStatusError):
            return cls(
                _scrub(exc.api_message or _status_fallback(exc), secret),
                kind=_kind_for_status(exc.status_code),
                status=exc.status_code,
                error_type=exc.type,
                request_id=exc.request_id,
                retry_after=parse_retry_after(exc.response.headers),
            )
        if isinstance(exc, anthropic.APITimeoutError | httpx2.TimeoutException):
            return cls("request timed out", kind="timeout")
        if isinstance(exc, anthropic.APIConnectionError | httpx2.TransportError | OSError):
            return cls(_scrub(_first_line(exc) or "connection error", secret), kind="connection")
        if isinstance(exc, anthropic.APIResponseValidationError):
            return cls(
                _scrub(exc.message, secret),
                kind="other",
                status=exc.status_code,
                request_id=exc.response.headers.get("request-id"),
            )
        if isinstance(exc, ValueError):
            return cls(_scrub(_first_line(exc), secret), kind="bad_request")
        return cls(_scrub(_first_line(exc) or type(exc).__name__, secret), kind="other")


def _kind_for_status(status: int) -> ErrorKind:
    if status == 429:
        return "rate_limited"
    if status >= 500:
        return "server"
    if status == 408:
        return "timeout"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if status in (400, 413, 422):
        return "bad_request"
    return "other"


def _status_fallback(exc: anthropic.APIStatusError) -> str:
    # A non-JSON body (a proxy's 413, an HTML 502) has no error.message: keep its first line.
    if isinstance(exc.body, str) and exc.body.strip():
        return exc.body.strip().splitlines()[0][:200]
    return f"HTTP {exc.status_code}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, _REDACTED) if secret and len(secret) >= 4 else text


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait per `retry-after-ms` or `retry-after` (seconds or HTTP date), else None."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(raw)
    if parsed is None:
        return None
    return max(0.0, float(email.utils.mktime_tz(parsed) - time.time()))


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One finished API call, for the event pane and the call counters."""

    method: str
    target: str | None
    outcome: str  # "ok" or an ErrorKind
    status: int | None
    duration_s: float
    request_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


CallHook = Callable[[ApiCall], None]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of `list`: the batches plus the cursor to the next (older) page."""

    batches: list[BatchSnapshot]
    has_more: bool
    last_id: str | None

    @property
    def next_after_id(self) -> str | None:
        """Cursor for the next page, None at the end (same rule as the SDK's paginator)."""
        if not self.has_more or not self.batches:
            return None
        return self.last_id


def parse_page(body: bytes) -> Page:
    """Parse a list response body; raises ApiError(kind="other") when it is not a page."""
    try:
        doc = orjson.loads(body)
        data = doc["data"]
        batches = [BatchSnapshot.from_api(item) for item in data]
        has_more = doc.get("has_more")
        last_id = doc.get("last_id")
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ApiError(f"malformed list response: {type(exc).__name__}", kind="other") from None
    return Page(
        batches=batches,
        # A missing has_more with a last_id means "ask once more" (the SDK does the same).
        has_more=has_more is not False,
        last_id=last_id if isinstance(last_id, str) else None,
    )


class BatchesAPI:
    """Message Batches calls returning `BatchSnapshot`s; every failure is an `ApiError`."""

    def __init__(
        self, client: anthropic.AsyncAnthropic, *, on_call: CallHook | None = None
    ) -> None:
        self.client = client
        self.calls: Counter[str] = Counter()
        self._hooks: list[CallHook] = [on_call] if on_call is not None else []

    @property
    def workspace(self) -> str:
        """The `workspace_key` of this client (API host plus a hash of the key)."""
        return workspace_key(str(self.client.base_url), self.client.api_key or "")

    @classmethod
    def connect(
        cls,
        api_key: str,
        base_url: str | None = None,
        *,
        max_retries: int = 0,
        timeout: float = DEFAULT_TIMEOUT_S,
        on_call: CallHook | None = None,
    ) -> BatchesAPI:
        """Build the client. The monitor keeps `max_retries=0`: it backs off itself."""
        client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=max_retries,
            timeout=anthropic.Timeout(timeout, connect=min(5.0, timeout)),
        )
        return cls(client, on_call=on_call)

    from_settings = connect

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    def add_call_hook(self, hook: CallHook) -> Callable[[], None]:
        """Call `hook` after every API call; returns a function that removes it."""
        self._hooks.append(hook)

        def remove() -> None:
            if hook in self._hooks:
                self._hooks.remove(hook)

        return remove

    async def close(self) -> None:
        await self.client.close()

    # -- calls -------------------------------------------------------------------------------

    async def list_page(self, limit: int = LIST_PAGE_MAX, after_id: str | None = None) -> Page:
        """One page of the list, newest first. Parsed with orjson: no pydantic per batch."""
        kwargs: dict[str, Any] = {"limit": limit}
        if after_id is not None:
            kwargs["after_id"] = after_id

        async def call() -> AsyncAPIResponse[Any]:
            raw = await self.client.messages.batches.with_raw_response.list(**kwargs)
            await raw.read()  # errors while reading the body belong to this call
            return raw

        raw = await self._call("list", after_id, call)
        return parse_page(raw.http_response.content)

    async def iter_pages(
        self, limit: int = LIST_PAGE_MAX
    ) -> AsyncGenerator[list[BatchSnapshot], None]:
        """Yield every page of the list in order, so the first rows can be shown early."""
        after_id: str | None = None
        while True:
            page = await self.list_page(limit, after_id)
            yield page.batches
            after_id = page.next_after_id
            if after_id is None:
                return

    async def list_all(self, limit: int = LIST_PAGE_MAX) -> list[BatchSnapshot]:
        """Every batch in the workspace, newest first."""
        out: list[BatchSnapshot] = []
        async for batches in self.iter_pages(limit):
            out.extend(batches)
        return out

    async def list_first_page(self, limit: int = 100) -> list[BatchSnapshot]:
        return (await self.list_page(limit)).batches

    async def retrieve(self, batch_id: str) -> BatchSnapshot:
        batch = await self._call(
            "retrieve", batch_id, lambda: self.client.messages.batches.retrieve(batch_id)
        )
        return _snapshot(batch)

    async def cancel(self, batch_id: str) -> BatchSnapshot:
        batch = await self._call(
            "cancel", batch_id, lambda: self.client.messages.batches.cancel(batch_id)
        )
        return _snapshot(batch)

    async def delete(self, batch_id: str) -> str:
        """Delete an ended batch; returns the deleted id."""
        deleted = await self._call(
            "delete", batch_id, lambda: self.client.messages.batches.delete(batch_id)
        )
        return deleted.id

    async def create(self, requests: Iterable[Mapping[str, Any]]) -> BatchSnapshot:
        items: list[Any] = [dict(item) for item in requests]
        batch = await self._call(
            "create", None, lambda: self.client.messages.batches.create(requests=items)
        )
        return _snapshot(batch)

    async def create_message(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """A plain Messages API call (the dry run before a batch); returns the message JSON."""
        body: dict[str, Any] = dict(params)
        body.pop("stream", None)
        missing = [name for name in MESSAGE_REQUIRED if name not in body]
        if missing:  # the SDK would raise TypeError before sending anything
            raise ApiError(f"missing required field(s): {', '.join(missing)}", kind="bad_request")
        message = await self._call(
            "create_message", body.get("model"), lambda: self.client.messages.create(**body)
        )
        dumped: dict[str, Any] = message.model_dump(mode="json")
        return dumped

    # -- plumbing ----------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        target: str | None,
        run: Callable[[], Awaitable[T]],
    ) -> T:
        self.calls[method] += 1
        started = time.perf_counter()
        try:
            result = await run()
        except (anthropic.AnthropicError, httpx2.HTTPError, OSError, ValueError) as exc:
            error = ApiError.from_exception(exc, secret=self.client.api_key)
            self._notify(
                ApiCall(method, target, error.kind, error.status,
                        time.perf_counter() - started, error.request_id)
            )
            # `from None`: the SDK exception holds the request, whose headers hold the key.
            raise error from None
        request_id = _request_id(result)
        self._notify(
            ApiCall(method, target, "ok", 200, time.perf_counter() - started, request_id)
        )
        return result

    def _notify(self, call: ApiCall) -> None:
        for hook in tuple(self._hooks):
            hook(call)


def _request_id(result: object) -> str | None:
    """SDK models carry `_request_id`; raw responses expose `request_id`."""
    if isinstance(result, AsyncAPIResponse):
        return result.request_id
    value = getattr(result, "_request_id", None)
    return value if isinstance(value, str) else None


def _snapshot(model: Any) -> BatchSnapshot:
    """The SDK model as a snapshot; an answer that is no usable batch is an ApiError too."""
    try:
        # warnings=False: pydantic would print serializer warnings to stderr for odd values.
        return BatchSnapshot.from_api(model.model_dump(mode="json", warnings=False))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        # status 200: the call itself went through (a create may have created the batch).
        raise ApiError(
            f"malformed batch in the response: {type(exc).__name__}",
            kind="other",
            status=200,
            request_id=_request_id(model),
        ) from None
