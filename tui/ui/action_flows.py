"""The action flows keys start: plan, ask in a dialog, run, toast the outcome, refresh the view.

The business rules (what is allowed, what is recorded) are in `tui.service.actions`; this
module only sequences them with dialogs. Every "no" is recorded as a refusal; read-only
mode is refused by the service (or, for actions that would first ask for input, up front).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, Protocol, TypeVar, cast

from rich.text import Text
from textual.app import App
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker

from tui.core.models import ENDED, BatchSnapshot
from tui.core.sanitize import safe_cell, safe_text
from tui.service.actions import (
    ATTACH,
    CANCEL,
    DELETE,
    LABEL,
    MAX_LABEL_CHARS,
    RETRY,
    SUBMIT,
    ActionFailed,
    Actions,
    AttachPreview,
    BulkPreview,
    ReadOnlyError,
    RetryPreview,
    TargetOutcome,
    TargetPreview,
)
from tui.service.api import ApiError
from tui.service.ledger import ReconcileMatch
from tui.service.monitor import MonitorState
from tui.settings import Settings
from tui.ui.screens.confirm import ConfirmModal, plural
from tui.ui.screens.retry import RetryModal
from tui.ui.screens.submit import SubmitScreen, expand_path, problem_line
from tui.ui.screens.text_prompt import TextPrompt

R = TypeVar("R")

ID_WIDTH = 64
LABEL_WIDTH = 60
LIST_LIMIT = 30
ERROR_TIMEOUT_S = 15.0
DIALOG_CHECK_S = 0.25
_CREATING = frozenset({SUBMIT, RETRY})
_VERBS: Mapping[str, tuple[str, str]] = {  # action -> (verb, past participle)
    CANCEL: ("Cancel", "canceled"),
    DELETE: ("Delete", "deleted"),
}


class MonitorLike(Protocol):
    """What the flows need of the monitor."""

    @property
    def state(self) -> MonitorState: ...

    def focus(self, batch_id: str | None) -> None: ...

    async def refresh_now(self, ids: Iterable[str] | None = None) -> None: ...


class ActionHost(Protocol):
    """What the flows need of the app, read only when a flow runs (services start late)."""

    @property
    def actions(self) -> Actions: ...

    @property
    def monitor(self) -> MonitorLike: ...

    @property
    def settings(self) -> Settings: ...

    def set_labels(self, labels: Mapping[str, str]) -> None: ...

    def forget_batches(self, batch_ids: Sequence[str]) -> None:
        """These batches were deleted: stop showing them."""
        ...


# -- what the dialogs show ------------------------------------------------------------------------


def batch_heading(batch_id: str, label: str | None) -> Text:
    text = Text()
    text.append(safe_cell(batch_id, ID_WIDTH), "bold")
    if label:
        text.append(f"  “{safe_cell(label, LABEL_WIDTH)}”")
    return text


def counts_lines(item: TargetPreview) -> list[str]:
    """The target's status and counts as short lines, each a whole phrase.

    A batch that has not ended shows only its total and processing counts: the API keeps
    the outcome counts at 0 until the end (the list shows "–" for them).
    """
    c = item.counts
    status = f"{safe_cell(item.status, 20)} · {plural(c.total, 'request')}"
    if item.status != ENDED:
        return [f"{status}, {c.processing:,} processing"]
    return [status, f"{c.succeeded:,} succeeded · {c.errored:,} errored · "
                    f"{c.canceled:,} canceled · {c.expired:,} expired"]


def _counts(text: Text, item: TargetPreview, indent: str) -> None:
    for line in counts_lines(item):
        text.append(f"\n{indent}{line}")


def target_body(item: TargetPreview) -> Text:
    text = batch_heading(item.batch_id, item.label)
    _counts(text, item, "")
    return text


def bulk_body(chosen: Sequence[TargetPreview], skipped: Sequence[TargetPreview]) -> Text:
    """One heading per target with its counts below, then the batches left out and why."""
    text = Text()
    for number, item in enumerate(chosen):
        if number:
            text.append("\n")
        text.append_text(batch_heading(item.batch_id, item.label))
        _counts(text, item, "    ")
    if skipped:
        text.append(f"\n\nLeft out ({len(skipped):,}):", "bold")
        for item in skipped:
            why = item.warnings[0] if item.warnings else item.status
            text.append(f"\n  {safe_cell(item.batch_id, ID_WIDTH)}: {safe_cell(why, 100)}")
    return text


def bulk_warnings(items: Sequence[TargetPreview]) -> list[str]:
    return [f"{item.batch_id}: {warning}" for item in items for warning in item.warnings]


def bulk_consequence(action: str, items: Sequence[TargetPreview]) -> str:
    count = plural(len(items), "batch")
    if action == CANCEL:
        processing = sum(item.processing for item in items)
        return (f"{count} move to canceling. Of {processing:,} requests still processing, those "
                "already running may finish; the rest end as canceled. Finished results are kept.")
    return (f"{count} and their results are deleted from the API for good and leave the list. "
            "Local copies (results, requests, audit) stay.")


def attach_body(preview: AttachPreview) -> Text:
    text = batch_heading(preview.batch_id, preview.label)
    text.append(f"\nFile: {safe_cell(preview.source_file, 100)}")
    text.append(f"\n{plural(preview.request_count, 'valid request')} in the file")
    report = preview.report
    if report.checked:
        text.append(f"\n{report.matched:,} match the batch's results by custom_id; "
                    f"{len(report.unknown_in_file):,} in the file are not in the batch; "
                    f"{len(report.missing_from_file):,} results have no request in the file")
    else:
        text.append(f"\n{report.matched:,} requests would be kept (the results are not read "
                    "yet, so they were not compared)")
    if preview.problem_count:
        text.append(f"\n\n{plural(preview.problem_count, 'problem')} in the file:", "bold")
        for problem in preview.problems[:LIST_LIMIT]:
            text.append("\n" + problem_line(problem))
        if preview.problem_count > min(len(preview.problems), LIST_LIMIT):
            text.append(f"\n… and {preview.problem_count - LIST_LIMIT:,} more")
    return text


# -- what the toasts say --------------------------------------------------------------------------


def next_step(action: str, error: ApiError) -> str:
    """What to do about a failed API call, in a few words."""
    kind = error.kind
    if kind == "rate_limited":
        wait = f" {error.retry_after:.0f} s" if error.retry_after else " a minute"
        return f"the API is rate limiting: wait{wait} and try again"
    if kind in ("connection", "timeout") and action in _CREATING:
        return ("the batch may have been created anyway: press r and look for it before "
                "trying again")
    if kind in ("connection", "timeout"):
        return "check the network, press r to see whether it went through, then try again"
    if kind == "server":
        return "the API had a problem (it may be overloaded): try again in a minute"
    if kind == "auth":
        return "check the API key of this profile (batchtop config --show)"
    if kind == "not_found":
        return "the batch is gone (deleted, or in another workspace): press r to refresh"
    if kind == "bad_request" and action in (CANCEL, DELETE):
        return "the batch's state has changed: press r to refresh, then look again"
    if kind == "bad_request":
        return "the API refused the request as sent: it will fail again unchanged"
    return "press r to refresh, then try again"


def api_error_line(error: ApiError) -> str:
    parts = [f"API error: {error.error_type or error.kind}"]
    if error.status:
        parts.append(f"HTTP {error.status}")
    if error.request_id:
        parts.append(f"request id {error.request_id}")
    return " · ".join(parts)


def failure_text(exc: ActionFailed) -> str:
    lines = [exc.message]
    error = exc.api_error
    if error is not None:
        lines.append(api_error_line(error))
        if error.message and error.message not in exc.message:
            lines.append(error.message)
    if error is not None:
        lines.append("Next: " + next_step(exc.action, error))
    return safe_text("\n".join(lines))


def outcome_failure(outcome: TargetOutcome) -> str:
    error = outcome.error
    if error is None:
        return f"{outcome.batch_id}: failed"
    request = f" (request id {error.request_id})" if error.request_id else ""
    return f"{outcome.batch_id}: {error.error_type or error.kind}{request}: {error.message}"


def _names(batches: Sequence[BatchSnapshot]) -> str:
    return ", ".join(batch.id for batch in batches)


def reconcile_text(matches: Sequence[ReconcileMatch], read_only: bool) -> str | None:
    """What settling the submits a crash left pending found; None when there were none."""
    if not matches:
        return None
    found = [m for m in matches if m.verdict == "matched"]
    lost = [m for m in matches if m.verdict == "not_created"]
    open_ = len(matches) - len(found) - len(lost)
    lines = [f"{plural(len(matches), 'submit')} left pending by an earlier run:"]
    for match in found[:LIST_LIMIT]:
        lines.append(f"{match.submit_id} was created as {match.batch_id}")
    if lost:
        lines.append(f"{plural(len(lost), 'submit')} never became a batch")
    if open_:
        lines.append(f"{open_:,} still unsettled (recent, or more than one batch matches)")
    if read_only:
        lines.append("read-only: nothing was written; run without read-only to settle them")
    return "\n".join(lines)


# -- the flows ------------------------------------------------------------------------------------


class ActionFlows:
    """The flows behind c, D, R, n, a, t. Start one with `run(flows.cancel(ids))`.

    Every flow returns True when the action was carried out (for a bulk action: tried on
    every target), False when it was declined, refused or failed. One flow runs at a time;
    failures become toasts naming the API's error type and request id and what to do next.
    """

    def __init__(self, app: App[Any]) -> None:
        self._app = app
        self._running: str | None = None

    @property
    def host(self) -> ActionHost:
        return cast(ActionHost, self._app)

    @property
    def running(self) -> str | None:
        """The action of the flow in progress, if any."""
        return self._running

    def run(self, flow: Coroutine[Any, Any, R], name: str = "action") -> Worker[R]:
        """Run a flow in an app worker (it outlives the screen that started it)."""
        return self._app.run_worker(flow, name=name, group="actions", exit_on_error=False)

    # -- the flows, one per action ------------------------------------------------------------

    async def cancel(self, batch_ids: Sequence[str]) -> bool:
        """Cancel one batch, or every one of the marked batches that is still running."""
        return await self._guarded(CANCEL,
                                   lambda actions: self._on_targets(actions, CANCEL, batch_ids))

    async def delete(self, batch_ids: Sequence[str]) -> bool:
        """Delete one ended batch, or every one of the marked batches that has ended."""
        return await self._guarded(DELETE,
                                   lambda actions: self._on_targets(actions, DELETE, batch_ids))

    async def retry(self, batch_id: str) -> bool:
        return await self._guarded(RETRY, lambda actions: self._retry(actions, batch_id))

    async def submit(self, path: str | None = None) -> bool:
        return await self._guarded(SUBMIT, lambda actions: self._submit(actions, path))

    async def attach(self, batch_id: str) -> bool:
        return await self._guarded(ATTACH, lambda actions: self._attach(actions, batch_id))

    async def label(self, batch_id: str) -> bool:
        return await self._guarded(LABEL, lambda actions: self._label(actions, batch_id))

    async def reconcile(self, batches: Sequence[BatchSnapshot]) -> bool:
        """After the first full list: settle submits a crash left pending, and say what."""
        try:
            actions = self.host.actions
        except (AttributeError, RuntimeError):
            return False
        matches = await actions.reconcile(batches)
        text = reconcile_text(matches, actions.read_only)
        if text is None:
            return False
        if any(match.verdict == "matched" for match in matches) and not actions.read_only:
            self._refresh_labels(actions)
        self._toast(text, title="submits settled", timeout=ERROR_TIMEOUT_S)
        return True

    # -- shared steps -----------------------------------------------------------------------------

    async def _guarded(self, action: str, body: Callable[[Actions], Awaitable[bool]]) -> bool:
        if self._running is not None:
            self._toast(f"{self._running} is still in progress: wait for it to finish",
                        severity="warning")
            return False
        try:
            actions = self.host.actions
        except (AttributeError, RuntimeError):
            self._toast("not connected to the API yet", severity="warning")
            return False
        self._running = action
        try:
            return await body(actions)
        except ReadOnlyError as exc:
            self._toast(f"{exc.action} refused: batchtop runs read-only (--read-only or "
                        "read_only in the config). Start it without read-only to change "
                        "batches.", title="read-only mode", severity="warning")
        except ActionFailed as exc:
            self._toast(failure_text(exc), title=f"{exc.action} failed", severity="error",
                        timeout=ERROR_TIMEOUT_S)
        finally:
            self._running = None
        return False

    def _toast(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None) -> None:
        self._app.notify(safe_text(message), title=safe_text(title), severity=severity,
                         timeout=timeout, markup=False)

    async def _ask(self, screen: Screen[R]) -> R | None:
        """Show a dialog and wait for its answer; None when it closes without one."""
        answer: asyncio.Future[R | None] = asyncio.get_running_loop().create_future()

        def done(result: R | None) -> None:
            if not answer.done():
                answer.set_result(result)

        await self._app.push_screen(screen, callback=done)
        # A dialog popped without an answer (the app closing, a jump) must not hang the flow.
        while not answer.done():
            await asyncio.wait({answer}, timeout=DIALOG_CHECK_S)
            if not answer.done() and screen not in self._app.screen_stack:
                answer.set_result(None)
        return answer.result()

    async def _refresh(self, focus: str | None = None,
                       ids: Iterable[str] | None = None) -> None:
        """Poll now: the batches `ids` only when given, else the whole list."""
        monitor = self.host.monitor
        if focus is not None:
            monitor.focus(focus)
        await monitor.refresh_now(ids)

    def _refresh_labels(self, actions: Actions) -> None:
        self.host.set_labels(actions.ledger.labels())

    def _known(self, batch_ids: Sequence[str]) -> list[BatchSnapshot | str]:
        """The monitor's snapshots where it has them (no extra API call), else the ids."""
        batches = self.host.monitor.state.batches
        return [batches.get(batch_id, batch_id) for batch_id in batch_ids]

    # -- cancel and delete --------------------------------------------------------------------

    async def _on_targets(self, actions: Actions, action: str, batch_ids: Sequence[str]) -> bool:
        ids = list(dict.fromkeys([batch_ids] if isinstance(batch_ids, str) else batch_ids))
        if not ids:
            self._toast("no batch selected", severity="warning")
            return False
        if len(ids) == 1:
            return await self._on_one(actions, action, ids[0])
        return await self._on_many(actions, action, ids)

    async def _on_one(self, actions: Actions, action: str, batch_id: str) -> bool:
        if action == CANCEL:
            cancel = await actions.plan_cancel(batch_id)
            if not await self._confirmed(actions, cancel):
                return False
            batch = await actions.cancel(cancel)
            self._toast(f"{batch_id} is {batch.processing_status}: "
                        f"{plural(cancel.processing, 'request')} were still processing. "
                        "The list follows it to the end.", title="cancel requested")
            await self._refresh(focus=batch_id, ids=[batch_id])
            return True
        delete = await actions.plan_delete(batch_id)
        if not await self._confirmed(actions, delete):
            return False
        await actions.delete(delete)
        self.host.forget_batches([batch_id])
        self._toast(f"{batch_id} was deleted", title="deleted")
        await self._refresh()
        return True

    async def _confirmed(self, actions: Actions, preview: TargetPreview) -> bool:
        """Ask about one target; a "no" is recorded. Read-only passes on: the service refuses."""
        verb, done = _VERBS[preview.action]
        if not preview.allowed:
            why = preview.warnings[0] if preview.warnings else f"it is {preview.status}"
            self._toast(f"{preview.batch_id} cannot be {done}: {why}", severity="warning")
            return False
        if actions.read_only:
            return True
        dialog = ConfirmModal(
            f"{verb} batch?", target_body(preview), preview.consequence,
            confirm_label=f"{verb} batch", cancel_label="No", warnings=preview.warnings,
        )
        if await self._ask(dialog):
            return True
        await actions.refuse(preview)
        self._toast(f"{preview.batch_id} was not {done}")
        return False

    async def _on_many(self, actions: Actions, action: str, batch_ids: Sequence[str]) -> bool:
        verb, done = _VERBS[action]
        known = self._known(batch_ids)
        bulk = await (actions.plan_cancel_many(known) if action == CANCEL
                      else actions.plan_delete_many(known))
        allowed = tuple(item for item in bulk.items if item.allowed)
        skipped = [item for item in bulk.items if not item.allowed]
        if not allowed:
            self._toast(f"none of the {len(bulk.items)} marked batches can be {done}",
                        severity="warning")
            return False
        chosen = BulkPreview(action, allowed)
        if not actions.read_only:
            dialog = ConfirmModal(
                f"{verb} {plural(len(allowed), 'batch')}?", bulk_body(allowed, skipped),
                bulk_consequence(action, allowed), confirm_label=f"{verb} {len(allowed)}",
                cancel_label="No", warnings=bulk_warnings(allowed),
                typed_count=len(allowed) if chosen.needs_typed_count else None,
            )
            if not await self._ask(dialog):
                await actions.refuse(chosen)
                self._toast(f"nothing was {done}")
                return False
        outcomes = await (actions.cancel_many(chosen) if action == CANCEL
                          else actions.delete_many(chosen))
        if action == DELETE:
            self.host.forget_batches([outcome.batch_id for outcome in outcomes if outcome.ok])
        self._toast_outcomes(done, outcomes, len(skipped))
        # A cancel changed only its batches: just those are polled.
        await self._refresh(ids=None if action == DELETE
                            else [outcome.batch_id for outcome in outcomes])
        return True

    def _toast_outcomes(self, done: str, outcomes: Sequence[TargetOutcome], skipped: int) -> None:
        failed = [outcome for outcome in outcomes if not outcome.ok]
        head = f"{len(outcomes) - len(failed)} of {plural(len(outcomes), 'batch')} {done}"
        if skipped:
            head += f" ({skipped} left out)"
        if not failed:
            self._toast(head, title=done)
            return
        lines = [head, *[outcome_failure(outcome) for outcome in failed[:5]]]
        if len(failed) > 5:
            lines.append(f"… and {len(failed) - 5} more (see the audit log)")
        lines.append("Next: press r to refresh, then look at the failed batches")
        self._toast("\n".join(lines), title=f"some were not {done}", severity="error",
                    timeout=ERROR_TIMEOUT_S)

    # -- retry ----------------------------------------------------------------------------------

    async def _retry(self, actions: Actions, batch_id: str) -> bool:
        max_per_batch = self.host.settings.max_per_batch
        self._toast(f"planning the retry of {batch_id}: reading its results…", timeout=3)
        preview = await actions.plan_retry(batch_id, max_per_batch=max_per_batch)
        if actions.read_only:
            await actions.retry(preview)  # refused and recorded by the service
            return False
        dialog = RetryModal(preview, lambda include: actions.plan_retry(
            batch_id, include, max_per_batch=max_per_batch))
        chosen = await self._ask(dialog)
        if chosen is None:
            await actions.refuse(dialog.preview)
            self._toast(f"{batch_id} was not retried")
            return False
        allow_repeat = bool(chosen.previous_retries)
        if allow_repeat and not await self._confirm_repeat(batch_id, chosen):
            await actions.refuse(chosen, reason="declined: already retried")
            self._toast(f"{batch_id} was not retried again")
            return False
        created = await actions.retry(chosen, allow_repeat=allow_repeat)
        self._refresh_labels(actions)
        self._toast(f"{plural(chosen.request_count, 'request')} of {batch_id} resubmitted as "
                    f"{_names(created)}", title="retry submitted")
        await self._refresh()
        return True

    async def _confirm_repeat(self, batch_id: str, preview: RetryPreview) -> bool:
        """The second question before retrying a batch that was retried before."""
        again = ConfirmModal(
            "Retry again?", batch_heading(batch_id, preview.label),
            f"Submits {plural(preview.request_count, 'request')} again although {batch_id} "
            "was already retried.",
            confirm_label="Retry again", cancel_label="No",
            warnings=[w for w in preview.warnings if "already retried" in w],
        )
        answer = await self._ask(again)
        return answer is True

    # -- submit -----------------------------------------------------------------------------------

    async def _submit(self, actions: Actions, path: str | None) -> bool:
        if actions.read_only:  # refused (and recorded) before anything is asked
            await actions.refuse_read_only(SUBMIT, [path] if path else [])
        max_per_batch = self.host.settings.max_per_batch
        screen = SubmitScreen(
            lambda source, label: actions.plan_submit(source, label=label,
                                                      max_per_batch=max_per_batch),
            actions.dry_run, path or "",
        )
        chosen = await self._ask(screen)
        if chosen is None:
            shown = screen.preview
            if shown is not None and shown.allowed:
                await actions.refuse(shown)
            return False
        created = await actions.submit(chosen)
        self._refresh_labels(actions)
        self._toast(f"{plural(chosen.request_count, 'request')} submitted as "
                    f"{_names(created)}", title="submitted")
        await self._refresh()
        return True

    # -- attach and label -------------------------------------------------------------------------

    async def _attach(self, actions: Actions, batch_id: str) -> bool:
        if actions.read_only:
            await actions.refuse_read_only(ATTACH, [batch_id])
        path = await self._ask(TextPrompt(
            "Attach requests",
            f"The JSONL request file {batch_id} was created from. Its requests are kept so "
            "that failed ones can be retried.",
            placeholder="path/to/requests.jsonl", hint="enter checks the file · esc cancels",
        ))
        if path is None or not path.strip():
            return False
        preview = await actions.plan_attach(batch_id, expand_path(path))
        dialog = ConfirmModal(
            "Attach requests?", attach_body(preview),
            "The requests are kept in the local ledger (nothing is sent to the API); failed "
            "ones can then be retried.",
            confirm_label="Attach", cancel_label="No", destructive=False,
            warnings=preview.warnings, can_confirm=preview.allowed,
            reason="Nothing can be attached: fix the file or choose another one.",
        )
        if not await self._ask(dialog):
            if preview.allowed:
                await actions.refuse(preview)
            return False
        report = await actions.attach(preview)
        self._toast(f"{report.matched:,} requests attached to {batch_id}: its failed requests "
                    "can now be retried", title="attached")
        return True

    async def _label(self, actions: Actions, batch_id: str) -> bool:
        if actions.read_only:
            await actions.refuse_read_only(LABEL, [batch_id])
        current = actions.ledger.label_for(batch_id) or ""
        text = await self._ask(TextPrompt(
            "Label", f"A local label for {batch_id}, shown in the list and matched by /. "
            "Empty clears it.", value=current, max_length=MAX_LABEL_CHARS,
        ))
        if text is None or text.strip() == current:
            return False
        stored = await actions.label(batch_id, text)
        self._refresh_labels(actions)
        self._toast(f"{batch_id}: label " + (f"set to “{stored}”" if stored else "cleared"))
        return True
