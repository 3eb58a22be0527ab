"""The error taxonomy: which failed requests can be retried as they are, which need fixing."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

RETRYABLE_ERROR_TYPES: frozenset[str] = frozenset(
    {"api_error", "overloaded_error", "rate_limit_error", "timeout_error"}
)
PERMANENT_ERROR_TYPES: frozenset[str] = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "billing_error",
        "not_found_error",
    }
)

# HTTP statuses worth another attempt of the same API call (mirrors the SDK's own policy).
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 409, 429})


class RetryClass(StrEnum):
    """What to do about one request's result."""

    RETRYABLE = "retryable"
    PERMANENT = "permanent"
    CANCELED = "canceled"
    SUCCEEDED = "succeeded"
    UNKNOWN = "unknown"


VERDICTS: Mapping[RetryClass, str] = {
    RetryClass.RETRYABLE: "retry as is",
    RetryClass.PERMANENT: "fix first",
    RetryClass.CANCELED: "retry only if still wanted",
    RetryClass.SUCCEEDED: "nothing to do",
    RetryClass.UNKNOWN: "inspect before retrying",
}


def classify(result_type: str, error_type: str | None) -> RetryClass:
    """Classify a result by its ``result.type`` and the NESTED ``result.error.error.type``.

    The outer ``result.error.type`` is always ``"error"`` (it is the envelope's type);
    passing it here yields UNKNOWN, never a retry.
    """
    if result_type == "succeeded":
        return RetryClass.SUCCEEDED
    if result_type == "expired":
        return RetryClass.RETRYABLE
    if result_type == "canceled":
        return RetryClass.CANCELED
    if result_type == "errored":
        if error_type in RETRYABLE_ERROR_TYPES:
            return RetryClass.RETRYABLE
        if error_type in PERMANENT_ERROR_TYPES:
            return RetryClass.PERMANENT
    return RetryClass.UNKNOWN


def verdict(retry_class: RetryClass) -> str:
    """A few words telling the user what to do: "retry as is", "fix first", ..."""
    return VERDICTS[retry_class]


def _inner_error(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    # Accept a whole results line too: {"custom_id": ..., "result": {...}}.
    if "error" not in result and isinstance(result.get("result"), Mapping):
        result = result["result"]
    envelope = result.get("error")
    if not isinstance(envelope, Mapping):
        return None
    inner = envelope.get("error")
    return inner if isinstance(inner, Mapping) else None


def nested_error_type(result: Mapping[str, Any]) -> str | None:
    """``result["error"]["error"]["type"]`` of an errored result, None when absent or odd."""
    inner = _inner_error(result) if isinstance(result, Mapping) else None
    value = inner.get("type") if inner is not None else None
    return value if isinstance(value, str) else None


def nested_error_message(result: Mapping[str, Any]) -> str | None:
    """``result["error"]["error"]["message"]`` of an errored result, None when absent or odd."""
    inner = _inner_error(result) if isinstance(result, Mapping) else None
    value = inner.get("message") if inner is not None else None
    return value if isinstance(value, str) else None


def classify_result(result: Mapping[str, Any]) -> RetryClass:
    """Classify a parsed ``result`` object (or a whole results line)."""
    if not isinstance(result, Mapping):
        return RetryClass.UNKNOWN
    body = result.get("result") if "type" not in result else result
    if not isinstance(body, Mapping):
        return RetryClass.UNKNOWN
    result_type = body.get("type")
    if not isinstance(result_type, str):
        return RetryClass.UNKNOWN
    return classify(result_type, nested_error_type(body))


def is_retryable_status(status: int | None) -> bool:
    """Whether an API call that failed with HTTP `status` (None: no response) may be retried."""
    return status is None or status in RETRYABLE_STATUSES or status >= 500
