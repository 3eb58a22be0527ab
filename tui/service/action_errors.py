"""The exceptions an action raises: refused in read-only mode, or failed."""

from __future__ import annotations

from collections.abc import Sequence

from tui.core.models import BatchSnapshot
from tui.service.api import ApiError


class ReadOnlyError(Exception):
    """A mutating action was called in read-only mode; it was refused and recorded."""

    def __init__(self, action: str, targets: Sequence[str] = ()) -> None:
        super().__init__(f"read-only mode: {action} refused")
        self.action = action
        self.targets = tuple(targets)


class ActionFailed(Exception):
    """An action could not be done. `api_error` is the API's answer when there was one;
    `created` lists batches a multi-batch submit or retry created before it stopped."""

    def __init__(
        self,
        action: str,
        message: str,
        api_error: ApiError | None = None,
        *,
        created: Sequence[BatchSnapshot] = (),
    ) -> None:
        super().__init__(f"{action}: {message}" + (f" ({api_error})" if api_error else ""))
        self.action = action
        self.message = message
        self.api_error = api_error
        self.created = tuple(created)
