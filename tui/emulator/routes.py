"""The HTTP routes: Message Batches endpoints and the plain Messages endpoint, over the engine."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from tui.emulator.content import message
from tui.emulator.engine import Engine
from tui.emulator.errors import ApiError, invalid
from tui.emulator.ids import mix64
from tui.emulator.results import chunked, cut_short, result_lines
from tui.emulator.sources import traits_from_params
from tui.emulator.validation import MAX_BODY_BYTES, check_create_body, check_params

ENGINE: web.AppKey[Engine] = web.AppKey("engine", Engine)
MAX_BODY: web.AppKey[int] = web.AppKey("max_body", int)
_DISCARD_LIMIT = 512 * 1024 * 1024


def json_response(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status,
                        content_type="application/json")


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def _json_body(request: web.Request) -> Any:
    limit = request.app[MAX_BODY]
    if request.content_length is not None and request.content_length > limit:
        if request.content_length <= _DISCARD_LIMIT:  # drain, so the client reads our answer
            while await request.content.readany():
                pass
        raise ApiError("request_too_large",
                       f"Request exceeds the maximum allowed number of bytes ({limit}).")
    raw = await request.read()
    if len(raw) > limit:
        raise ApiError("request_too_large",
                       f"Request exceeds the maximum allowed number of bytes ({limit}).")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"There was an error parsing the body of your request: {exc}") from None


async def create_batch(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    pairs, problem = check_create_body(await _json_body(request))
    if problem is not None:
        raise ApiError(problem.error_type, problem.message)
    record = engine.create(pairs)
    return json_response(engine.describe(record, _base_url(request)))


def _limit(request: web.Request) -> int:
    text = request.query.get("limit")
    if text is None:
        return 20
    try:
        value = int(text)
    except ValueError:
        raise invalid("limit: Input should be a valid integer") from None
    if value < 1:
        raise invalid("limit: Input should be greater than or equal to 1")
    if value > 1000:
        raise invalid("limit: Input should be less than or equal to 1000")
    return value


async def list_batches(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    records, has_more = engine.page(limit=_limit(request),
                                    after_id=request.query.get("after_id") or None,
                                    before_id=request.query.get("before_id") or None)
    base = _base_url(request)
    data = [engine.describe(record, base) for record in records]
    return json_response({
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    })


async def retrieve_batch(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    record = engine.retrieve(request.match_info["batch_id"])
    return json_response(engine.describe(record, _base_url(request)))


async def cancel_batch(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    record = engine.cancel(request.match_info["batch_id"])
    return json_response(engine.describe(record, _base_url(request)))


async def delete_batch(request: web.Request) -> web.Response:
    batch_id = request.match_info["batch_id"]
    request.app[ENGINE].delete(batch_id)
    return json_response({"id": batch_id, "type": "message_batch_deleted"})


async def batch_results(request: web.Request) -> web.StreamResponse:
    engine = request.app[ENGINE]
    record, state = engine.results(request.match_info["batch_id"])
    faults, dice = engine.faults, engine.dice
    cut: float | None = None
    chunks: Iterable[bytes] | None = None
    if faults.cut or faults.unknown or faults.malformed:
        lines = result_lines(record, state.processed,
                             unknown=dice.ranks(faults.unknown, record.count),
                             malformed=dice.ranks(faults.malformed, record.count))
        cut = dice.cut_fraction(faults)
        if cut is not None:
            lines = cut_short(lines, int(cut * record.count))
        chunks = chunked(lines)
    else:  # the same bytes every time: served from the body cache after the first download
        key = (record.id, state.processed)
        chunks = engine.bodies.get(key)
        if chunks is None:
            chunks = engine.bodies.recording(key, chunked(result_lines(record, state.processed)))
    response = web.StreamResponse(headers={"content-type": "application/x-jsonl"})
    await response.prepare(request)
    try:
        for chunk in chunks:
            await response.write(chunk)
    except ConnectionError:  # the client went away (e.g. closed the decoder early)
        response.force_close()
        return response
    if cut is not None and request.transport is not None:
        request.transport.close()  # no final chunk: the client sees a connection cut mid-body
        return response
    await response.write_eof()
    return response


async def create_message(request: web.Request) -> web.Response:
    """`POST /v1/messages` (dry runs): validated like the API, answered deterministically."""
    engine = request.app[ENGINE]
    params = await _json_body(request)
    problem = check_params(params, in_batch=False)
    if problem is not None:
        raise ApiError(problem.error_type, problem.message)
    traits = traits_from_params(params)
    serial = engine.next_message_serial()
    role = None
    if traits.cache_ttl is not None:
        role = "read" if engine.note_cache_write() else "create"
    key = mix64(engine.seed * 48_271 + serial)
    return json_response(message(traits, key, serial, cache_role=role, tier="standard"))


def add_routes(app: web.Application, engine: Engine, max_body: int = MAX_BODY_BYTES) -> None:
    app[ENGINE] = engine
    app[MAX_BODY] = max_body
    app.router.add_post("/v1/messages/batches", create_batch)
    app.router.add_get("/v1/messages/batches", list_batches, allow_head=False)
    app.router.add_get("/v1/messages/batches/{batch_id}", retrieve_batch, allow_head=False)
    app.router.add_delete("/v1/messages/batches/{batch_id}", delete_batch)
    app.router.add_post("/v1/messages/batches/{batch_id}/cancel", cancel_batch)
    app.router.add_get("/v1/messages/batches/{batch_id}/results", batch_results,
                       allow_head=False)
    app.router.add_post("/v1/messages", create_message)
