"""The batch screen's keys: its help text, and which actions its state allows."""

from __future__ import annotations

from typing import NamedTuple

from tui.ui.result_rows import MISSING

HELP_INTRO = (
    "One batch. While it runs: its live state (polled every few seconds while open); when it "
    "ends the results download by themselves, and the first rows show before the download "
    "finishes. Ended batches are read from the local store, so reopening is instant.\n"
    "1-5 filter by result type (all, errored, expired, canceled, succeeded), 6 lists submitted "
    "requests that never came back (when the request ledger knows them). E cycles through the "
    "error types; tab moves to the failure summary, where enter filters by a group.\n"
    "/ searches custom_id: plain text matches a substring, anything else is a case-insensitive "
    "regex (a re: prefix is accepted; ! in front inverts), as in the batches list. enter keeps "
    "the search; esc clears it; n / N jump between matches. s sorts by the column under the "
    "column cursor (left / right move it). enter opens a result, y copies its custom_id.\n"
    "c cancels a running batch; R retries the failed requests of an ended one, D deletes it; "
    "a attaches the request file it was made from, t sets a local label (each asks first, and "
    "none is offered read-only). After a retry the header names the lineage, and M lists the "
    "final outcome of every request across the original and its retries. T shows the batch's "
    "audit timeline. The header also shows what the batch cost once its results are stored."
)

CHANGES = frozenset({"cancel_batch", "retry_batch", "delete_batch", "attach", "label"})
"""Actions that change a batch (or the local ledger): none is offered read-only."""


class Keys(NamedTuple):
    """Everything `allowed` depends on."""

    has_rows: bool
    has_missing: bool
    error_types: bool
    searched: bool
    read_only: bool
    cancelable: bool  # running, no cancel requested yet
    ended: bool
    failures: bool  # ended with errored, expired or canceled requests
    related: bool  # an original with retries, or a retry


def allowed(keys: Keys, action: str, parameters: tuple[object, ...]) -> bool:
    """Whether the screen offers `action` (its footer and help show only these)."""
    if action == "kind":
        return keys.has_missing if parameters and parameters[0] == MISSING else keys.has_rows
    if action in ("start_search", "copy_id"):
        return keys.has_rows
    if action == "cycle_error_type":
        return keys.error_types
    if action == "match":
        return keys.searched and keys.has_rows
    if action in CHANGES and keys.read_only:
        return False
    if action == "cancel_batch":
        return keys.cancelable
    if action == "retry_batch":
        return keys.failures
    if action == "delete_batch":
        return keys.ended
    if action == "merged":
        return keys.related
    return True
