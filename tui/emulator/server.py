"""The HTTP server: config, middlewares (request id, errors, auth, faults), start and stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from types import TracebackType

from aiohttp import web
from aiohttp.typedefs import Middleware

from tui.emulator.clock import Clock
from tui.emulator.engine import Engine, Seen
from tui.emulator.errors import ApiError, type_for_status
from tui.emulator.faults import parse_faults
from tui.emulator.routes import ENGINE, add_routes, json_response
from tui.emulator.scenarios import load_scenario, parse_scenario
from tui.emulator.validation import MAX_BODY_BYTES

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
_HTTP_MESSAGES = {
    404: "Not found",
    405: "Method not allowed",
    413: "Request exceeds the maximum allowed number of bytes.",
}


@dataclass
class EmulatorConfig:
    """Everything `batchtop emulator` can be told; the defaults give an empty, honest API."""

    host: str = "127.0.0.1"
    port: int = 0
    scenario: str = "empty"
    speed: float = 1.0
    faults: str | None = None
    error_rate: float = 0.05
    seed: int = 0
    api_key: str | None = None
    live_counts: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    clock: Clock | None = field(default=None, compare=False)
    """The emulator's time from the start (a frozen one for screenshots); None runs a wall
    clock `speed` times faster. A given clock keeps its own speed."""


def build_engine(config: EmulatorConfig) -> Engine:
    """The engine with its scenario loaded; raises ValueError on a bad scenario or fault spec."""
    if not 0.0 <= config.error_rate <= 1.0:
        raise ValueError(f"error rate must be within 0..1, got {config.error_rate}")
    parse_scenario(config.scenario)
    clock = config.clock if config.clock is not None else Clock(config.speed)
    engine = Engine(clock=clock, seed=config.seed, error_rate=config.error_rate,
                    live_counts=config.live_counts, faults=parse_faults(config.faults))
    load_scenario(engine, config.scenario)
    return engine


def _error_response(error: ApiError, request_id: str) -> web.Response:
    response = json_response(error.body(request_id), status=error.status)
    response.headers.update(error.headers)
    return response


@web.middleware
async def envelope(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes the API's JSON error envelope; every request goes in the journal."""
    engine = request.app[ENGINE]
    request_id = engine.ids.request_id()
    request[REQUEST_ID] = request_id
    response = await _answer(request, handler, request_id)
    engine.journal.append(Seen(request.method, request.path, request.query_string,
                               request.headers.get("x-stainless-retry-count"), response.status))
    return response


async def _answer(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as error:
        return _error_response(error, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        message = _HTTP_MESSAGES.get(exc.status, exc.reason)
        if exc.status == 404:
            message = f"Not found: {request.method} {request.path}"
        return _error_response(ApiError(type_for_status(exc.status), message,
                                        status=exc.status), request_id)
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _error_response(ApiError("api_error", "Internal server error"), request_id)


_FAULT_MESSAGES = {
    429: "Number of requests has exceeded your rate limit. Please try again later.",
    500: "Internal server error",
    529: "Overloaded",
}


def _gate(api_key: str | None) -> Middleware:
    @web.middleware
    async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Slow responses, authentication, then injected status faults, in that order."""
        engine = request.app[ENGINE]
        faults = engine.faults
        if faults.slow:
            await asyncio.sleep(faults.slow)
        key = request.headers.get("x-api-key")
        authorization = request.headers.get("authorization", "")
        if key is None and authorization[:7].lower() == "bearer ":
            key = authorization[7:].strip()
        if not key:
            raise ApiError("authentication_error",
                           "x-api-key header is required (or Authorization: Bearer <key>)")
        if api_key is not None and key != api_key:
            raise ApiError("authentication_error", "invalid x-api-key")
        status = engine.dice.status(faults)
        if status is not None:
            headers = {"retry-after": f"{faults.retry_after:g}"} if status == 429 else {}
            raise ApiError(type_for_status(status), _FAULT_MESSAGES.get(status, "Injected fault"),
                           status=status, headers=headers)
        return await handler(request)

    return gate


async def _stamp_request_id(request: web.BaseRequest, response: web.StreamResponse) -> None:
    response.headers["request-id"] = request.get(REQUEST_ID) or "req_011C00000000000000000000"


def build_app(engine: Engine, *, api_key: str | None = None,
              max_body_bytes: int = MAX_BODY_BYTES) -> web.Application:
    # aiohttp refuses bodies over client_max_size itself; leave room above the API's limit so
    # the create handler answers with the API's own 413.
    app = web.Application(middlewares=[envelope, _gate(api_key)],
                          client_max_size=max_body_bytes + 1024 * 1024)
    app.on_response_prepare.append(_stamp_request_id)
    add_routes(app, engine, max_body_bytes)
    return app


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class RunningEmulator:
    """A started emulator: `.url`, `.port`, `.engine`; `await stop()` or use `async with`."""

    def __init__(self, runner: web.AppRunner, engine: Engine, host: str, port: int) -> None:
        self._runner = runner
        self.engine = engine
        self.host = host
        self.port = port
        self.url = _url(host, port)
        self._stopped = False

    async def stop(self) -> None:
        """Stop listening and close open connections (safe to call twice)."""
        if not self._stopped:
            self._stopped = True
            await self._runner.cleanup()

    async def __aenter__(self) -> RunningEmulator:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()


async def start_emulator(config: EmulatorConfig, *, clock: Clock | None = None) -> RunningEmulator:
    """Start serving inside the running event loop (`port=0` picks a free port).

    `clock` (else `config.clock`) is the emulator's time from the first request on; the
    scenario is laid out around it. `engine.clock` may still be swapped later.
    """
    if clock is not None:
        config = replace(config, clock=clock)
    engine = build_engine(config)
    app = build_app(engine, api_key=config.api_key, max_body_bytes=config.max_body_bytes)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_address=True)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = int(runner.addresses[0][1])
    return RunningEmulator(runner, engine, config.host, port)
