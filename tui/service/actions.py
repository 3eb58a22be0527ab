"""Cancel, retry, delete, submit, attach and label: planned, confirmed, audited, refusable.

Every action has a `plan_*` step (safe in read-only mode) returning a frozen preview with
everything a confirmation shows, and an execute step taking that preview. Both the app
and the CLI call these; neither talks to the API or the ledger for an action directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from tui.core.cost import PriceTable, estimate_cost
from tui.core.events import ACTION_PREFIX, Event
from tui.core.models import CANCELING, ENDED, IN_PROGRESS, BatchSnapshot
from tui.core.requests import (
    DEFAULT_MAX_BATCH_BYTES,
    DEFAULT_MAX_PER_BATCH,
    MAX_REQUESTS_PER_BATCH,
    BatchRequest,
    plan_split,
)
from tui.core.results import IndexRow
from tui.core.retry_plan import (
    DEFAULT_INCLUDE,
    PENDING,
    Attempt,
    RetryPlan,
    Row,
    merge_outcomes,
    outcome_counts,
    plan_retry,
    select_failures,
)
from tui.core.sanitize import safe_text
from tui.core.timefmt import utcnow
from tui.service.action_errors import ActionFailed as ActionFailed
from tui.service.action_errors import ReadOnlyError as ReadOnlyError
from tui.service.action_inputs import MAX_LABEL_CHARS as MAX_LABEL_CHARS
from tui.service.action_inputs import READ_CHUNK as READ_CHUNK
from tui.service.action_inputs import clean_label as clean_label
from tui.service.action_inputs import read_request_file as read_request_file
from tui.service.action_previews import CONFIRM_TYPED_OVER as CONFIRM_TYPED_OVER
from tui.service.action_previews import AttachPreview as AttachPreview
from tui.service.action_previews import BulkPreview as BulkPreview
from tui.service.action_previews import CancelPreview as CancelPreview
from tui.service.action_previews import DeletePreview as DeletePreview
from tui.service.action_previews import MergedView as MergedView
from tui.service.action_previews import Preview as Preview
from tui.service.action_previews import RetryPreview as RetryPreview
from tui.service.action_previews import SubmitPreview as SubmitPreview
from tui.service.action_previews import TargetOutcome as TargetOutcome
from tui.service.action_previews import TargetPreview as TargetPreview
from tui.service.api import ApiError, BatchesAPI
from tui.service.audit import AuditLog
from tui.service.ledger import (
    RECONCILE_WINDOW,
    AttachReport,
    Ledger,
    ReconcileMatch,
    match_attachment,
    match_pending,
)
from tui.service.results_store import ResultsStore

T = TypeVar("T")

CANCEL = "cancel"
RETRY = "retry"
DELETE = "delete"
SUBMIT = "submit"
DRY_RUN = "dry_run"
ATTACH = "attach"
LABEL = "label"
ACTION_EVENTS: tuple[str, ...] = tuple(
    ACTION_PREFIX + name for name in (CANCEL, RETRY, DELETE, SUBMIT, DRY_RUN, ATTACH, LABEL)
)

REQUESTED = "requested"
SUCCEEDED = "succeeded"
FAILED = "failed"
REFUSED = "refused"

_FAILED_CLASSES = ("retryable", "permanent", "canceled", "unknown")
# Outcomes of a create call that may have reached the API although it failed here.
_UNCERTAIN_KINDS = frozenset({"timeout", "connection", "server"})


# -- helpers -------------------------------------------------------------------------------------


def error_data(error: ApiError) -> dict[str, Any]:
    return {
        "status": error.status,
        "type": error.error_type,
        "kind": error.kind,
        "message": error.message,
        "request_id": error.request_id,
    }


def _numbered(label: str | None, count: int) -> tuple[str | None, ...]:
    if count == 1 or not label:
        return (label,) * count
    return tuple(f"{label} ({n}/{count})" for n in range(1, count + 1))


def _price_table(prices: PriceTable | Mapping[str, Mapping[str, Any]] | None) -> PriceTable:
    """A table as given, or the shipped one with config ``[prices]`` overrides on top."""
    if isinstance(prices, PriceTable):
        return prices
    return PriceTable.load(prices)


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


class Actions:
    """The actions layer over the API, the ledger, the audit log and the results store."""

    def __init__(
        self,
        api: BatchesAPI,
        ledger: Ledger,
        audit: AuditLog,
        store: ResultsStore | None = None,
        *,
        read_only: bool,
        actor: str | None = None,
        prices: PriceTable | Mapping[str, Mapping[str, Any]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.api = api
        self.ledger = ledger
        self.audit = audit
        self.store = store
        self.read_only = read_only
        self.actor = actor or audit.actor
        self.prices = _price_table(prices)
        self._clock = clock
        # Serialises retries so two quick confirmations cannot both pass the repeat check.
        self._retry_lock = asyncio.Lock()
        self._submitted: set[str] = set()

    # -- audit and read-only ------------------------------------------------------------------

    async def _record(
        self, action: str, batch_id: str | None, outcome: str, **data: Any
    ) -> None:
        payload: dict[str, Any] = {"outcome": outcome, "actor": self.actor, **data}
        await self.audit.record(Event(ACTION_PREFIX + action, batch_id, payload))

    async def _guard(self, action: str, targets: Sequence[str], batch_ids: Sequence[str]) -> None:
        """Refuse (and record the refusal) in read-only mode."""
        if not self.read_only:
            return
        await self._refuse_read_only(action, targets, batch_ids)

    async def refuse_read_only(self, action: str, targets: Sequence[str]) -> None:
        """Refuse `action` on `targets` for read-only mode before anything is asked: record
        ``action.<action>`` as refused (reason "read-only") and raise ReadOnlyError.

        Targets are batch ids, except for a submit or dry run (the request file): those
        are recorded under no batch, as their execute step would.
        """
        batch_ids = () if action in (SUBMIT, DRY_RUN) else targets
        await self._refuse_read_only(action, targets, batch_ids)

    async def _refuse_read_only(
        self, action: str, targets: Sequence[str], batch_ids: Sequence[str]
    ) -> None:
        for batch_id in _or_none(batch_ids):
            await self._record(action, batch_id, REFUSED, reason="read-only",
                               targets=list(targets))
        raise ReadOnlyError(action, targets)

    async def refuse(self, preview: Preview, reason: str = "declined") -> None:
        """The user said no to a confirmation: record it as refused."""
        for batch_id in _or_none(_batch_ids(preview)):
            await self._record(preview.action, batch_id, REFUSED, reason=reason,
                               targets=list(preview.targets))

    async def _snapshot(self, batch: BatchSnapshot | str, action: str) -> BatchSnapshot:
        if isinstance(batch, BatchSnapshot):
            return batch
        try:
            return await self.api.retrieve(batch)
        except ApiError as exc:
            raise ActionFailed(action, f"cannot read batch {batch}", exc) from None

    # -- cancel and delete --------------------------------------------------------------------

    async def plan_cancel(self, batch: BatchSnapshot | str) -> CancelPreview:
        snap = await self._snapshot(batch, CANCEL)
        counts = snap.request_counts
        warnings: list[str] = []
        if snap.processing_status == CANCELING:
            warnings.append("the batch is already canceling")
        elif snap.processing_status == ENDED:
            warnings.append("the batch has already ended: there is nothing to cancel")
        consequence = (
            f"The batch moves to canceling. Of {_plural(counts.processing, 'request')} still "
            "processing, those already running may finish; the rest end as canceled. "
            "Finished results are kept."
        )
        return CancelPreview(
            action=CANCEL, batch_id=snap.id, label=self.ledger.label_for(snap.id),
            status=snap.processing_status, counts=counts,
            allowed=snap.processing_status == IN_PROGRESS, consequence=consequence,
            warnings=tuple(warnings), generation=self.ledger.generation(snap.id),
        )

    async def plan_delete(self, batch: BatchSnapshot | str) -> DeletePreview:
        snap = await self._snapshot(batch, DELETE)
        warnings: list[str] = []
        if not snap.is_ended:
            warnings.append(f"the batch is {snap.processing_status}: the API deletes only ended "
                            "batches (cancel it first)")
        elif self.store is not None and snap.archived_at is None:
            status = self.store.status(snap.id)
            if status is None or not status.complete:
                warnings.append("its results are not saved locally: they will be gone")
        children = self.ledger.children_of(snap.id)
        if children:
            warnings.append(f"it has retry batches: {', '.join(children)}")
        return DeletePreview(
            action=DELETE, batch_id=snap.id, label=self.ledger.label_for(snap.id),
            status=snap.processing_status, counts=snap.request_counts, allowed=snap.is_ended,
            consequence="The batch and its results are deleted from the API for good; it "
                        "leaves the list. Local copies (results, requests, audit) stay.",
            warnings=tuple(warnings), generation=self.ledger.generation(snap.id),
        )

    async def cancel(self, preview: CancelPreview) -> BatchSnapshot:
        """Cancel the batch; returns it (usually `canceling`). The monitor follows it to ended."""
        return await self._on_target(CANCEL, preview, self.api.cancel)

    async def delete(self, preview: DeletePreview) -> str:
        """Delete the batch; returns its id."""
        return await self._on_target(DELETE, preview, self.api.delete)

    async def _on_target(
        self, action: str, preview: TargetPreview, call: Callable[[str], Awaitable[T]]
    ) -> T:
        _check_action(preview, action)
        batch_id = preview.batch_id
        await self._guard(action, [batch_id], [batch_id])
        counts = preview.counts.to_api()
        await self._record(action, batch_id, REQUESTED, targets=[batch_id], counts=counts)
        try:
            result: T = await call(batch_id)
        except ApiError as exc:
            await self._record(action, batch_id, FAILED, targets=[batch_id], counts=counts,
                               error=error_data(exc))
            raise ActionFailed(action, f"{action} of {batch_id} failed", exc) from None
        extra: dict[str, Any] = {}
        if isinstance(result, BatchSnapshot):
            extra = {"status": result.processing_status,
                     "counts": result.request_counts.to_api()}
        await self._record(action, batch_id, SUCCEEDED, targets=[batch_id],
                           **({"counts": counts} | extra))
        return result

    async def plan_cancel_many(self, batches: Iterable[BatchSnapshot | str]) -> BulkPreview:
        return BulkPreview(CANCEL, tuple([await self.plan_cancel(b) for b in batches]))

    async def plan_delete_many(self, batches: Iterable[BatchSnapshot | str]) -> BulkPreview:
        return BulkPreview(DELETE, tuple([await self.plan_delete(b) for b in batches]))

    async def cancel_many(self, bulk: BulkPreview) -> list[TargetOutcome]:
        return await self._many(CANCEL, bulk)

    async def delete_many(self, bulk: BulkPreview) -> list[TargetOutcome]:
        return await self._many(DELETE, bulk)

    async def _many(self, action: str, bulk: BulkPreview) -> list[TargetOutcome]:
        """Run the action on every target, one after the other; one failure stops nothing."""
        if bulk.action != action:
            raise ValueError(f"a {bulk.action} preview cannot {action}")
        await self._guard(action, bulk.targets, bulk.targets)
        out: list[TargetOutcome] = []
        for item in bulk.items:
            try:
                if isinstance(item, CancelPreview):
                    out.append(TargetOutcome(item.batch_id, True, batch=await self.cancel(item)))
                elif isinstance(item, DeletePreview):
                    await self.delete(item)
                    out.append(TargetOutcome(item.batch_id, True))
                else:
                    raise ValueError(f"not a {action} preview: {item!r}")
            except ActionFailed as exc:
                out.append(TargetOutcome(item.batch_id, False, error=exc.api_error))
        return out

    # -- retry --------------------------------------------------------------------------------

    async def plan_retry(
        self,
        batch: BatchSnapshot | str,
        include: frozenset[str] = DEFAULT_INCLUDE,
        *,
        max_per_batch: int = DEFAULT_MAX_PER_BATCH,
    ) -> RetryPreview:
        """Download the results if needed, choose failures, find their original params."""
        snap = await self._snapshot(batch, RETRY)
        if not snap.is_ended:
            raise ActionFailed(RETRY, f"batch {snap.id} is {snap.processing_status}: results "
                                      "exist once it has ended")
        rows, succeeded, incomplete = await self._failed_rows(snap)
        recorded = await asyncio.to_thread(self.ledger.custom_ids_for, snap.id)
        missing = self._missing(snap.id, recorded) if recorded and not incomplete else []
        selection = select_failures(rows, include, missing=missing)
        originals = await asyncio.to_thread(self.ledger.params_for, snap.id, selection.selected)
        plan = plan_retry(selection, originals, max_per_batch=max_per_batch, prices=self.prices)
        previous = tuple(self.ledger.retries_of(snap.id))
        label = self.ledger.label_for(snap.id)
        generation = self.ledger.generation(snap.id) + 1
        warnings = _retry_warnings(snap.id, plan, previous, bool(recorded), incomplete)
        return RetryPreview(
            action=RETRY, batch_id=snap.id, label=label, generation=generation,
            new_label=f"retry of {label or snap.id} (gen {generation})", include=include,
            by_class=selection.by_class, by_reason=selection.by_reason,
            succeeded=selection.succeeded + succeeded, selected_count=len(selection.selected),
            request_count=plan.request_count, batch_sizes=plan.batch_sizes,
            fix_first=selection.fix_first, missing_originals=plan.missing_originals,
            previous_retries=previous, estimate=plan.estimate,
            allowed=plan.request_count > 0, warnings=warnings, plan=plan,
        )

    async def _ensure_results(self, snap: BatchSnapshot, action: str) -> ResultsStore:
        """The store, holding the batch's results (downloaded now if needed)."""
        store = self.store
        if store is None:
            raise ActionFailed(action, "no results store: cannot read the batch's results")
        try:
            await store.ensure(self.api.client, snap, audit=self.audit)
        except ApiError as exc:
            raise ActionFailed(action, f"cannot download the results of {snap.id}",
                               exc) from None
        except ValueError as exc:  # ResultsNotReady
            raise ActionFailed(action, str(exc)) from None
        return store

    async def _failed_rows(self, snap: BatchSnapshot) -> tuple[list[IndexRow], int, bool]:
        """(failed rows, succeeded count, whether the stored results are incomplete)."""
        store = await self._ensure_results(snap, RETRY)
        rows = await asyncio.to_thread(
            lambda: store.query(snap.id, retry_classes=_FAILED_CLASSES)
        )
        succeeded = store.type_counts(snap.id).get("succeeded", 0)
        status = store.status(snap.id)
        return rows, succeeded, status is None or not status.complete

    def _missing(self, batch_id: str, recorded: Sequence[str]) -> list[str]:
        return self.store.missing_custom_ids(batch_id, recorded) if self.store else []

    async def retry(
        self, preview: RetryPreview, *, allow_repeat: bool = False
    ) -> list[BatchSnapshot]:
        """Submit the planned retry as new batch(es) with the same custom_ids and params.

        A parent retried before needs `allow_repeat=True` (after the user saw the warning);
        a retry that appeared since the preview was made always refuses.
        """
        _check_action(preview, RETRY)
        parent = preview.batch_id
        await self._guard(RETRY, [parent], [parent])
        if not preview.allowed:
            await self._record(RETRY, parent, FAILED, targets=[parent], reason="nothing to retry")
            raise ActionFailed(RETRY, f"nothing to retry in {parent}")
        async with self._retry_lock:
            return await self._retry_locked(preview, allow_repeat)

    async def _retry_locked(self, preview: RetryPreview, allow_repeat: bool) -> list[BatchSnapshot]:
        parent = preview.batch_id
        current = tuple(self.ledger.retries_of(parent))
        new_since = [item for item in current if item not in preview.previous_retries]
        if new_since or (current and not allow_repeat):
            await self._record(RETRY, parent, REFUSED, reason="already retried",
                               targets=[parent], retries=list(current))
            named = ", ".join(_retry_name(item) for item in current)
            raise ActionFailed(RETRY, f"batch {parent} was already retried as {named}")
        counts = {"requests": preview.request_count, "batches": preview.batches,
                  **preview.by_reason}
        await self._record(RETRY, parent, REQUESTED, targets=[parent], counts=counts,
                           include=sorted(preview.include), generation=preview.generation)
        labels = _numbered(preview.new_label, preview.batches)
        created = await self._create_all(
            RETRY, preview.plan.chunks, labels, source=f"retry of {parent}", parent=parent,
            generation=preview.generation, audit_batch=parent,
        )
        await self._record(RETRY, parent, SUCCEEDED, targets=[parent], counts=counts,
                           created=[b.id for b in created], generation=preview.generation)
        return created

    # -- submit -------------------------------------------------------------------------------

    async def plan_submit(
        self,
        path: Path | str,
        *,
        max_per_batch: int = DEFAULT_MAX_PER_BATCH,
        label: str | None = None,
        max_bytes: int = DEFAULT_MAX_BATCH_BYTES,
    ) -> SubmitPreview:
        """Read, validate and split a JSONL request file. Problems are listed, not raised."""
        source = Path(path)
        if not 1 <= max_per_batch <= MAX_REQUESTS_PER_BATCH:
            raise ValueError(f"max_per_batch must be between 1 and {MAX_REQUESTS_PER_BATCH:,}")
        chosen_label = clean_label(label if label is not None else source.name)
        parsed = await asyncio.to_thread(read_request_file, source)
        chunks = plan_split(parsed.requests, max_per_batch, max_bytes) if parsed.ok else []
        warnings: list[str] = []
        if max_per_batch > DEFAULT_MAX_PER_BATCH:
            warnings.append(f"batches of more than {DEFAULT_MAX_PER_BATCH:,} requests are "
                            "harder to debug and to retry")
        cost = await asyncio.to_thread(
            estimate_cost, [r.to_api() for r in parsed.requests], self.prices, self._clock()
        )
        if cost.unknown_models:
            models = ", ".join(safe_text(model) for model in cost.unknown_models)
            warnings.append(f"no price known for {models}: "
                            "those requests are not in the estimate")
        return SubmitPreview(
            action=SUBMIT, source_file=str(source), request_count=len(parsed.requests),
            lines=parsed.lines, problems=tuple(parsed.problems),
            problem_count=parsed.problem_count,
            batch_sizes=tuple(len(chunk) for chunk in chunks),
            batch_bytes=tuple(sum(r.size_bytes for r in chunk) for chunk in chunks),
            max_per_batch=max_per_batch, labels=_numbered(chosen_label, len(chunks)),
            estimate=cost, warnings=tuple(warnings),
            chunks=tuple(tuple(chunk) for chunk in chunks),
        )

    async def dry_run(self, preview: SubmitPreview) -> dict[str, Any]:
        """Send the first request to the Messages API; returns the message (billed normally)."""
        _check_action(preview, SUBMIT)
        source = preview.source_file
        await self._guard(DRY_RUN, [source], [])
        if not preview.allowed:
            raise ActionFailed(DRY_RUN, "the file has problems: nothing sent")
        first = preview.chunks[0][0]
        await self._record(DRY_RUN, None, REQUESTED, targets=[source],
                           custom_id=first.custom_id)
        try:
            message = await self.api.create_message(first.params)
        except ApiError as exc:
            await self._record(DRY_RUN, None, FAILED, targets=[source],
                               custom_id=first.custom_id, error=error_data(exc))
            raise ActionFailed(DRY_RUN, f"the dry run of {first.custom_id} failed", exc) from None
        await self._record(DRY_RUN, None, SUCCEEDED, targets=[source], custom_id=first.custom_id,
                           usage=message.get("usage"))
        return message

    async def submit(self, preview: SubmitPreview) -> list[BatchSnapshot]:
        """Create the batch(es); each is recorded in the ledger before its create call."""
        _check_action(preview, SUBMIT)
        source = preview.source_file
        await self._guard(SUBMIT, [source], [])
        counts = {"requests": preview.request_count, "batches": preview.batches,
                  "bytes": preview.total_bytes}
        if not preview.allowed:
            await self._record(SUBMIT, None, FAILED, targets=[source],
                               problems=preview.problem_count)
            raise ActionFailed(SUBMIT, f"{_plural(preview.problem_count, 'problem')} in "
                                       f"{source}: nothing submitted")
        if preview.token in self._submitted:
            await self._record(SUBMIT, None, REFUSED, targets=[source], reason="already submitted")
            raise ActionFailed(SUBMIT, f"{source} was already submitted from this preview")
        self._submitted.add(preview.token)
        await self._record(SUBMIT, None, REQUESTED, targets=[source], counts=counts)
        return await self._create_all(SUBMIT, preview.chunks, preview.labels, source=source)

    async def _create_all(
        self,
        action: str,
        chunks: Sequence[Sequence[BatchRequest]],
        labels: Sequence[str | None],
        *,
        source: str,
        parent: str | None = None,
        generation: int = 0,
        audit_batch: str | None = None,
    ) -> list[BatchSnapshot]:
        created: list[BatchSnapshot] = []
        for number, (chunk, label) in enumerate(zip(chunks, labels, strict=True), start=1):
            part = {"part": number, "of": len(chunks), "requests": len(chunk)}
            submit_id = await asyncio.to_thread(
                self.ledger.begin_submit, list(chunk), source_file=source, parent=parent,
                generation=generation, label=label,
            )
            try:
                batch = await self.api.create([request.to_api() for request in chunk])
            except ApiError as exc:
                await self._create_failed(action, submit_id, exc, audit_batch, source, part)
                done = ", ".join(b.id for b in created) or "none"
                raise ActionFailed(
                    action, f"batch {number} of {len(chunks)} was not created (created "
                            f"before it: {done})", exc, created=created,
                ) from None
            await asyncio.to_thread(self.ledger.complete_submit, submit_id, batch.id)
            created.append(batch)
            await self._record(action, batch.id, SUCCEEDED, targets=[source], submit=submit_id,
                               parent=parent, generation=generation, label=label,
                               counts=batch.request_counts.to_api(), **part)
        return created

    async def _create_failed(
        self,
        action: str,
        submit_id: str,
        error: ApiError,
        audit_batch: str | None,
        source: str,
        part: Mapping[str, int],
    ) -> None:
        # A timeout or a 5xx may hide a batch that was created, and a 2xx whose body could
        # not be read certainly does: keep the record pending so that `reconcile` can find
        # it; only a definite refusal drops it.
        answered = error.status is not None and 200 <= error.status < 300
        uncertain = error.kind in _UNCERTAIN_KINDS or answered
        if not uncertain:
            await asyncio.to_thread(self.ledger.fail_submit, submit_id, str(error))
        await self._record(action, audit_batch, FAILED, targets=[source], submit=submit_id,
                           error=error_data(error), uncertain=uncertain, **part)

    # -- attach and label ---------------------------------------------------------------------

    async def plan_attach(self, batch: BatchSnapshot | str, path: Path | str) -> AttachPreview:
        """Parse a request file and match it with the batch's results by custom_id."""
        snap = await self._snapshot(batch, ATTACH)
        source = Path(path)
        parsed = await asyncio.to_thread(read_request_file, source)
        result_ids: frozenset[str] | None = None
        warnings: list[str] = []
        if snap.is_ended and self.store is not None and snap.archived_at is None:
            await self._ensure_results(snap, ATTACH)
            result_ids = frozenset(self.store.custom_ids(snap.id))
        else:
            total = snap.request_counts.total
            if total != len(parsed.requests):
                warnings.append(f"the batch has {total:,} requests, the file "
                                f"{len(parsed.requests):,}")
        report, _ = match_attachment(snap.id, parsed.requests, str(source), result_ids)
        if report.unknown_in_file:
            warnings.append(f"{_plural(len(report.unknown_in_file), 'request')} in the file "
                            "are not in the batch (they are not kept)")
        if report.missing_from_file:
            warnings.append(f"{_plural(len(report.missing_from_file), 'result')} of the batch "
                            "have no request in the file (they cannot be retried)")
        if self.ledger.submit_for(snap.id) is not None:
            warnings.append("batchtop submitted this batch and already has its requests")
        return AttachPreview(
            action=ATTACH, batch_id=snap.id, label=self.ledger.label_for(snap.id),
            source_file=str(source), request_count=len(parsed.requests),
            problems=tuple(parsed.problems), problem_count=parsed.problem_count, report=report,
            allowed=parsed.ok and report.matched > 0, warnings=tuple(warnings),
            requests=tuple(parsed.requests), result_custom_ids=result_ids,
        )

    async def attach(self, preview: AttachPreview) -> AttachReport:
        _check_action(preview, ATTACH)
        batch_id = preview.batch_id
        await self._guard(ATTACH, [batch_id], [batch_id])
        if not preview.allowed:
            await self._record(ATTACH, batch_id, FAILED, targets=[batch_id],
                               source=preview.source_file, problems=preview.problem_count)
            raise ActionFailed(ATTACH, f"{preview.source_file} cannot be attached: "
                                       f"{_plural(preview.problem_count, 'problem')}, "
                                       f"{preview.report.matched} matching requests")
        await self._record(ATTACH, batch_id, REQUESTED, targets=[batch_id],
                           source=preview.source_file)
        report = await asyncio.to_thread(
            self.ledger.attach, batch_id, list(preview.requests), preview.source_file,
            preview.result_custom_ids,
        )
        await self._record(ATTACH, batch_id, SUCCEEDED, targets=[batch_id],
                           source=preview.source_file,
                           counts={"matched": report.matched,
                                   "unknown_in_file": len(report.unknown_in_file),
                                   "missing_from_file": len(report.missing_from_file)})
        return report

    async def label(self, batch_id: str, text: str | None) -> str | None:
        """Set (or with None/"" clear) a batch's local label; returns the label stored."""
        try:
            cleaned = clean_label(text)
        except ValueError as exc:
            raise ActionFailed(LABEL, str(exc)) from None
        await self._guard(LABEL, [batch_id], [batch_id])
        before = self.ledger.label_for(batch_id)
        await self._record(LABEL, batch_id, REQUESTED, targets=[batch_id], label=cleaned,
                           previous=before)
        self.ledger.set_label(batch_id, cleaned)
        await self._record(LABEL, batch_id, SUCCEEDED, targets=[batch_id], label=cleaned,
                           previous=before)
        return cleaned

    # -- after a crash --------------------------------------------------------------------------

    async def reconcile(
        self,
        existing_batches: Iterable[BatchSnapshot],
        *,
        window: timedelta = RECONCILE_WINDOW,
    ) -> list[ReconcileMatch]:
        """Settle submits left pending by a crash against the batches the API lists.

        A match gets its batch id (state `reconciled`, lineage and label written); a submit
        with no batch after `window` is marked failed; ambiguous or recent ones stay pending.
        In read-only mode nothing is written: the matches are only reported.
        """
        pending = self.ledger.pending_submits()
        if not pending:
            return []
        matches = match_pending(pending, existing_batches, claimed=self.ledger.known_batch_ids(),
                                now=self._clock(), window=window)
        if self.read_only:
            return matches
        for match in matches:
            if match.verdict == "matched" and match.batch_id is not None:
                self.ledger.complete_submit(match.submit_id, match.batch_id, reconciled=True)
                await self._record(SUBMIT, match.batch_id, SUCCEEDED, reconciled=True,
                                   submit=match.submit_id, targets=[match.batch_id],
                                   counts={"requests": match.request_count})
            elif match.verdict == "not_created":
                self.ledger.fail_submit(match.submit_id, "no batch found after a crash")
                await self._record(SUBMIT, None, FAILED, reconciled=True,
                                   submit=match.submit_id, targets=[match.submit_id],
                                   reason="not created")
        return matches

    # -- the merged view -------------------------------------------------------------------------

    async def merged_outcomes(self, batch_id: str) -> MergedView:
        """The final outcome of every custom_id across the original batch and its retries."""
        family = tuple(self.ledger.family(batch_id))
        attempts: list[Attempt] = []
        for member, generation in family:
            snap = await self._snapshot(member, RETRY)
            rows: Sequence[Row | IndexRow]
            if snap.is_ended and self.store is not None:
                store = await self._ensure_results(snap, RETRY)
                rows = await asyncio.to_thread(store.query, member)
            else:
                rows = [Row(cid, PENDING) for cid in self.ledger.custom_ids_for(member)]
            attempts.append(Attempt(member, generation, rows))
        merged = merge_outcomes(attempts)
        return MergedView(family[0][0], family, merged, outcome_counts(merged))


def _or_none(batch_ids: Sequence[str]) -> list[str | None]:
    """The batches an audit event is filed under; [None] for one not about a batch yet."""
    return list(batch_ids) if batch_ids else [None]


def _check_action(preview: Preview, action: str) -> None:
    if preview.action != action:
        raise ValueError(f"a {preview.action} preview cannot be used to {action}")


def _batch_ids(preview: Preview) -> list[str]:
    if isinstance(preview, SubmitPreview):
        return []
    return list(preview.targets)


def _retry_name(item: str) -> str:
    """A retry batch id, or a pending submit whose create call may have gone through."""
    return f"{item} (unconfirmed submit)" if item.startswith("sub_") else item


def _retry_warnings(
    batch_id: str,
    plan: RetryPlan,
    previous: Sequence[str],
    has_originals: bool,
    incomplete: bool,
) -> tuple[str, ...]:
    selection = plan.selection
    out: list[str] = []
    if previous:
        named = ", ".join(_retry_name(item) for item in previous)
        out.append(f"batch {batch_id} was already retried as {named}: retrying it again "
                   "resubmits the same failures (retry the newer batch instead)")
    if not has_originals:
        out.append("batchtop did not submit this batch: attach the request file you "
                   "submitted to retry it")
    elif plan.missing_originals:
        out.append(f"{_plural(len(plan.missing_originals), 'request')} have no original "
                   "params and cannot be resubmitted")
    permanent = selection.by_class.get("permanent", 0)
    chosen = set(selection.selected)
    chosen_permanent = sum(1 for custom_id, _ in selection.fix_first if custom_id in chosen)
    if chosen_permanent:
        out.append(f"{_plural(chosen_permanent, 'request')} failed with permanent errors and "
                   "will fail again unless fixed")
    elif permanent:
        out.append(f"{_plural(permanent, 'request')} failed with permanent errors: fix them "
                   "first (not included)")
    if incomplete:
        out.append("the stored results are incomplete: some failures may not be listed")
    if not selection.selected:
        out.append("no failed requests match what was chosen to retry")
    return tuple(out)
