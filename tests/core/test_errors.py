"""Failed requests are classified on the nested error type, the way the API nests it."""

from __future__ import annotations

from typing import Any

import pytest

from tui.core.errors import (
    PERMANENT_ERROR_TYPES,
    RETRYABLE_ERROR_TYPES,
    RetryClass,
    classify,
    classify_result,
    is_retryable_status,
    nested_error_message,
    nested_error_type,
    verdict,
)


def errored(error_type: str, message: str = "boom") -> dict[str, Any]:
    """An errored ``result`` object exactly as a results line carries it."""
    return {
        "type": "errored",
        "error": {
            "type": "error",
            "error": {"type": error_type, "message": message},
            "request_id": None,
        },
    }


@pytest.mark.parametrize(
    "error_type", ["api_error", "overloaded_error", "rate_limit_error", "timeout_error"]
)
def test_transient_errors_are_retryable(error_type: str) -> None:
    assert classify("errored", error_type) is RetryClass.RETRYABLE


@pytest.mark.parametrize(
    "error_type",
    [
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "billing_error",
        "not_found_error",
    ],
)
def test_request_and_account_errors_are_permanent(error_type: str) -> None:
    assert classify("errored", error_type) is RetryClass.PERMANENT


def test_the_two_sets_are_disjoint() -> None:
    assert not RETRYABLE_ERROR_TYPES & PERMANENT_ERROR_TYPES


def test_result_types_without_errors() -> None:
    assert classify("succeeded", None) is RetryClass.SUCCEEDED
    assert classify("expired", None) is RetryClass.RETRYABLE
    assert classify("canceled", None) is RetryClass.CANCELED


@pytest.mark.parametrize(
    ("result_type", "error_type"),
    [
        ("errored", None),
        ("errored", "conflict_error"),
        ("errored", "brand_new_error"),
        ("weird", None),
        ("weird", "api_error"),
    ],
)
def test_anything_else_is_unknown(result_type: str, error_type: str | None) -> None:
    assert classify(result_type, error_type) is RetryClass.UNKNOWN


def test_classification_uses_the_nested_type_not_the_envelope() -> None:
    result = errored("rate_limit_error")
    outer = result["error"]["type"]
    assert outer == "error"
    # The best-practices guide's `result.error.type` would never retry anything.
    assert classify("errored", outer) is RetryClass.UNKNOWN
    assert nested_error_type(result) == "rate_limit_error"
    assert classify("errored", nested_error_type(result)) is RetryClass.RETRYABLE
    assert classify_result(result) is RetryClass.RETRYABLE
    assert classify_result(errored("invalid_request_error")) is RetryClass.PERMANENT


def test_nested_reader_accepts_a_whole_results_line() -> None:
    line = {"custom_id": "row-1", "result": errored("overloaded_error", "busy")}
    assert nested_error_type(line) == "overloaded_error"
    assert nested_error_message(line) == "busy"
    assert classify_result(line) is RetryClass.RETRYABLE
    assert classify_result({"custom_id": "row-2", "result": {"type": "expired"}}) is (
        RetryClass.RETRYABLE
    )


@pytest.mark.parametrize(
    "odd",
    [
        {},
        {"type": "succeeded"},
        {"type": "errored", "error": None},
        {"type": "errored", "error": "text"},
        {"type": "errored", "error": {"type": "error"}},
        {"type": "errored", "error": {"type": "error", "error": ["x"]}},
        {"type": "errored", "error": {"type": "error", "error": {"type": 5, "message": 7}}},
        {"result": None},
    ],
)
def test_nested_readers_survive_odd_shapes(odd: dict[str, Any]) -> None:
    assert nested_error_type(odd) is None
    assert nested_error_message(odd) is None
    assert classify_result(odd) in (RetryClass.UNKNOWN, RetryClass.SUCCEEDED)


def test_message_is_read_from_the_nested_object() -> None:
    assert nested_error_message(errored("api_error", "try later")) == "try later"


def test_every_class_has_a_verdict() -> None:
    assert verdict(RetryClass.RETRYABLE) == "retry as is"
    assert verdict(RetryClass.PERMANENT) == "fix first"
    assert all(verdict(item) for item in RetryClass)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, True),
        (408, True),
        (409, True),
        (429, True),
        (500, True),
        (529, True),
        (400, False),
        (401, False),
        (404, False),
        (413, False),
    ],
)
def test_api_call_retry_policy(status: int | None, expected: bool) -> None:
    assert is_retryable_status(status) is expected
