"""Request validation with the API's messages: the synchronous create checks and Messages params."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_REQUESTS = 100_000
MAX_BODY_BYTES = 256 * 1024 * 1024
CUSTOM_ID_PATTERN = "^[a-zA-Z0-9_-]{1,64}$"
_CUSTOM_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")

# Keys a batch request may not carry (the docs list each one as a validation error).
_BATCH_FORBIDDEN = ("speed", "store", "previous_thread_event_id", "cache_hint", "context_hint")
_ROLES = ("user", "assistant")


@dataclass(frozen=True, slots=True)
class Invalid:
    """One validation failure: the API error type and its message."""

    error_type: str
    message: str


def _bad(message: str, error_type: str = "invalid_request_error") -> Invalid:
    return Invalid(error_type, message)


def max_output_tokens(model: str) -> int:
    """The largest `max_tokens` the emulator accepts for a model."""
    if "opus-4-0" in model or "opus-4-1" in model:
        return 32_000
    if "opus" in model or "fable" in model or "mythos" in model:
        return 128_000
    return 64_000


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_messages(messages: object) -> Invalid | None:
    if messages is None:
        return _bad("messages: Field required")
    if not isinstance(messages, list):
        return _bad("messages: Input should be a valid list")
    if not messages:
        return _bad("messages: at least one message is required")
    last = len(messages) - 1
    for n, message in enumerate(messages):
        if not isinstance(message, Mapping):
            return _bad(f"messages.{n}: Input should be a valid dictionary")
        if message.get("role") not in _ROLES:
            return _bad(f"messages.{n}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if content is None:
            return _bad(f"messages.{n}.content: Field required")
        if not isinstance(content, str | list):
            return _bad(f"messages.{n}.content: Input should be a valid string or list")
        if not content and not (n == last and message.get("role") == "assistant"):
            return _bad(f"messages.{n}: all messages must have non-empty content except for "
                        "the optional final assistant message")
    return None


def _check_tools(tools: object) -> Invalid | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        return _bad("tools: Input should be a valid list")
    for n, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            return _bad(f"tools.{n}: Input should be a valid dictionary")
        if not isinstance(tool.get("name"), str) or not tool.get("name"):
            return _bad(f"tools.{n}.name: Field required")
    return None


def check_params(params: object, *, in_batch: bool) -> Invalid | None:
    """Validate Messages-API create params; the first failure, or None when they are fine."""
    if not isinstance(params, Mapping):
        return _bad("params: Input should be a valid dictionary")
    model = params.get("model")
    if model is None:
        return _bad("model: Field required")
    if not isinstance(model, str) or not model:
        return _bad("model: Input should be a valid string")
    max_tokens = params.get("max_tokens")
    if max_tokens is None:
        return _bad("max_tokens: Field required")
    if not _is_int(max_tokens):
        return _bad("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        return _bad("max_tokens: Input should be greater than or equal to 1")
    problem = _check_messages(params.get("messages")) or _check_tools(params.get("tools"))
    if problem:
        return problem
    ceiling = max_output_tokens(model)
    if max_tokens > ceiling:
        return _bad(f"max_tokens: {max_tokens} > {ceiling}, which is the maximum allowed number "
                    f"of output tokens for {model}")
    temperature = params.get("temperature")
    if temperature is not None and (not isinstance(temperature, int | float)
                                    or not 0 <= temperature <= 1):
        return _bad("temperature: Input should be a number between 0 and 1")
    if params.get("stream"):
        if in_batch:
            return _bad("stream: streaming is not supported for requests in a message batch")
        return _bad("stream: this emulator answers non-streaming requests only")
    if in_batch:
        for key in _BATCH_FORBIDDEN:
            if key in params:
                return _bad(f"{key}: Extra inputs are not permitted in message batch requests")
    if not model.startswith("claude-"):
        return Invalid("not_found_error", f"model: {model}")
    return None


def check_create_body(body: object) -> tuple[list[tuple[str, dict[str, Any]]], Invalid | None]:
    """The synchronous create checks; returns the (custom_id, params) pairs or the failure."""
    if not isinstance(body, Mapping):
        return [], _bad("Request body must be a JSON object")
    items = body.get("requests")
    if items is None:
        return [], _bad("requests: Field required")
    if not isinstance(items, list):
        return [], _bad("requests: Input should be a valid list")
    if not items:
        return [], _bad("requests: List should have at least 1 item after validation, not 0")
    if len(items) > MAX_REQUESTS:
        return [], _bad(f"requests: List should have at most {MAX_REQUESTS} items after "
                        f"validation, not {len(items)}")
    pairs: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for n, item in enumerate(items):
        problem = _check_item(n, item, seen)
        if problem:
            return [], problem
        pairs.append((item["custom_id"], item["params"]))
    return pairs, None


def _check_item(n: int, item: object, seen: dict[str, int]) -> Invalid | None:
    where = f"requests.{n}"
    if not isinstance(item, Mapping):
        return _bad(f"{where}: Input should be a valid dictionary")
    custom_id = item.get("custom_id")
    if custom_id is None:
        return _bad(f"{where}.custom_id: Field required")
    if not isinstance(custom_id, str):
        return _bad(f"{where}.custom_id: Input should be a valid string")
    if not custom_id:
        return _bad(f"{where}.custom_id: String should have at least 1 character")
    if len(custom_id) > 64:
        return _bad(f"{where}.custom_id: String should have at most 64 characters")
    if not _CUSTOM_ID.fullmatch(custom_id):
        return _bad(f"{where}.custom_id: String should match pattern '{CUSTOM_ID_PATTERN}'")
    if custom_id in seen:
        return _bad(f"{where}.custom_id: Duplicate custom_id '{custom_id}' "
                    f"(also used by requests.{seen[custom_id]}); custom_id must be unique "
                    "within a batch")
    seen[custom_id] = n
    if "params" not in item:
        return _bad(f"{where}.params: Field required")
    if not isinstance(item["params"], Mapping):
        return _bad(f"{where}.params: Input should be a valid dictionary")
    return None
