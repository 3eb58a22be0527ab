"""What the request ledger and the store say beside the results: label, lineage, failures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tui.core.results import ErrorGroup
from tui.service.ledger import Ledger
from tui.service.ledger import default_path as ledger_path
from tui.service.results_store import ResultsStore
from tui.ui.widgets.batch_summary import Lineage

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Extras:
    """The failure groups, and the submitted requests (None when the ledger knows none)."""

    groups: list[ErrorGroup]
    submitted: int | None
    missing: list[str] | None


def with_ledger(given: Ledger | None, read: Callable[[Ledger], T]) -> T | None:
    """`read` the given ledger, else the default one when it exists (None when it does not)."""
    if given is not None:
        return read(given)
    path = ledger_path()
    if not path.exists():
        return None
    with Ledger(path) as ledger:
        return read(ledger)


def submitted_ids(ledger: Ledger, batch_id: str) -> list[str] | None:
    """The custom_ids the request ledger recorded for the batch, None when it knows none."""
    return ledger.custom_ids_for(batch_id) if ledger.has_requests(batch_id) else None


def ledger_facts(ledger: Ledger, batch_id: str) -> tuple[str | None, Lineage]:
    """The batch's local label and where it sits among retries."""
    chain = ledger.lineage_of(batch_id)
    children = tuple((child, ledger.generation(child)) for child in ledger.children_of(batch_id))
    lineage = Lineage(chain[-2] if len(chain) > 1 else None, ledger.generation(batch_id),
                      children)
    return ledger.label_for(batch_id), lineage


def load_extras(store: ResultsStore, batch_id: str, given: Ledger | None) -> Extras:
    """The failure summary and the requests that never came back (blocking: run in a thread)."""
    submitted = with_ledger(given, lambda ledger: submitted_ids(ledger, batch_id))
    missing = store.missing_custom_ids(batch_id, submitted) if submitted is not None else None
    return Extras(store.error_summary(batch_id),
                  len(submitted) if submitted is not None else None, missing)


def load_facts(batch_id: str, given: Ledger | None) -> tuple[str | None, Lineage]:
    """The label and lineage (none without a ledger; blocking: run in a thread)."""
    found = with_ledger(given, lambda ledger: ledger_facts(ledger, batch_id))
    return found if found is not None else (None, Lineage())
