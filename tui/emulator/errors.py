"""API errors the emulator raises, with the documented HTTP status for each error type."""

from __future__ import annotations

from typing import Any

STATUS_FOR_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}

TYPE_FOR_STATUS: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def type_for_status(status: int) -> str:
    """The error type the API uses for a status (`invalid_request_error` for other 4xx)."""
    return TYPE_FOR_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")


class ApiError(Exception):
    """An error response: status, error type and message (the request id is added on sending)."""

    def __init__(self, error_type: str, message: str, *, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status if status is not None else STATUS_FOR_TYPE.get(error_type, 400)
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": self.error_type, "message": self.message},
                "request_id": request_id}


def not_found(what: str) -> ApiError:
    return ApiError("not_found_error", what)


def invalid(message: str) -> ApiError:
    return ApiError("invalid_request_error", message)
