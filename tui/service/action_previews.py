"""The frozen previews and results that actions plan, confirm and report."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from tui.core.cost import Estimate
from tui.core.models import BatchSnapshot, RequestCounts
from tui.core.requests import BatchRequest, RequestProblem
from tui.core.retry_plan import MergedOutcome, RetryPlan
from tui.service.api import ApiError
from tui.service.ledger import AttachReport

CONFIRM_TYPED_OVER = 5
"""A bulk action on more targets than this needs the target count typed to confirm."""


@dataclass(frozen=True, slots=True)
class TargetPreview:
    """What a confirmation of an action on one existing batch shows."""

    action: str
    batch_id: str
    label: str | None
    status: str
    counts: RequestCounts
    allowed: bool
    """False when the API is expected to refuse (the UI should not offer to confirm)."""
    consequence: str
    warnings: tuple[str, ...] = ()
    generation: int = 0

    @property
    def processing(self) -> int:
        return self.counts.processing

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.batch_id,)


@dataclass(frozen=True, slots=True)
class CancelPreview(TargetPreview):
    """Cancel one in-progress batch."""


@dataclass(frozen=True, slots=True)
class DeletePreview(TargetPreview):
    """Delete one ended batch."""


@dataclass(frozen=True, slots=True)
class BulkPreview:
    """The same action on several batches (marked rows)."""

    action: str
    items: tuple[TargetPreview, ...]

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(item.batch_id for item in self.items)

    @property
    def allowed_count(self) -> int:
        return sum(1 for item in self.items if item.allowed)

    @property
    def needs_typed_count(self) -> bool:
        return len(self.items) > CONFIRM_TYPED_OVER

    @property
    def processing(self) -> int:
        return sum(item.processing for item in self.items)


@dataclass(frozen=True, slots=True)
class TargetOutcome:
    """How a bulk action went for one batch."""

    batch_id: str
    ok: bool
    batch: BatchSnapshot | None = None
    error: ApiError | None = None


@dataclass(frozen=True, slots=True)
class RetryPreview:
    """A planned retry of one batch's failed requests."""

    action: str
    batch_id: str
    label: str | None
    generation: int
    """Generation of the new batch(es): the parent's plus one."""
    new_label: str
    include: frozenset[str]
    by_class: Mapping[str, int]
    by_reason: Mapping[str, int]
    succeeded: int
    selected_count: int
    request_count: int
    """Selected requests whose original params are known: what will be submitted."""
    batch_sizes: tuple[int, ...]
    fix_first: tuple[tuple[str, str], ...]
    missing_originals: tuple[str, ...]
    previous_retries: tuple[str, ...]
    estimate: Estimate
    """A cost estimate (`label()` says so); not a price quote."""
    allowed: bool
    warnings: tuple[str, ...]
    plan: RetryPlan = field(repr=False, compare=False)

    @property
    def batches(self) -> int:
        return len(self.batch_sizes)

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.batch_id,)


@dataclass(frozen=True, slots=True)
class SubmitPreview:
    """A validated, split request file ready to submit (or the problems preventing it)."""

    action: str
    source_file: str
    request_count: int
    lines: int
    problems: tuple[RequestProblem, ...]
    problem_count: int
    batch_sizes: tuple[int, ...]
    batch_bytes: tuple[int, ...]
    max_per_batch: int
    labels: tuple[str | None, ...]
    """The label each new batch gets (the given label, numbered when there are several)."""
    estimate: Estimate
    """A cost estimate (`label()` says so); not a price quote."""
    warnings: tuple[str, ...]
    chunks: tuple[tuple[BatchRequest, ...], ...] = field(repr=False, compare=False)
    token: str = field(default_factory=lambda: uuid.uuid4().hex, repr=False)
    """Identifies this preview: one preview is submitted at most once."""

    @property
    def allowed(self) -> bool:
        return self.problem_count == 0 and bool(self.chunks)

    @property
    def batches(self) -> int:
        return len(self.batch_sizes)

    @property
    def total_bytes(self) -> int:
        return sum(self.batch_bytes)

    @property
    def omitted_problems(self) -> int:
        return self.problem_count - len(self.problems)

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.source_file,)

    def problem_report(self) -> list[str]:
        """Every listed problem as "file:line: field: message", then "... and N more"."""
        out = [problem.describe(self.source_file) for problem in self.problems]
        if self.omitted_problems:
            out.append(f"... and {self.omitted_problems} more problems")
        return out


@dataclass(frozen=True, slots=True)
class AttachPreview:
    """A request file checked against a batch created elsewhere."""

    action: str
    batch_id: str
    label: str | None
    source_file: str
    request_count: int
    problems: tuple[RequestProblem, ...]
    problem_count: int
    report: AttachReport
    allowed: bool
    warnings: tuple[str, ...]
    requests: tuple[BatchRequest, ...] = field(repr=False, compare=False)
    result_custom_ids: frozenset[str] | None = field(default=None, repr=False, compare=False)

    @property
    def targets(self) -> tuple[str, ...]:
        return (self.batch_id,)


Preview = TargetPreview | BulkPreview | RetryPreview | SubmitPreview | AttachPreview


@dataclass(frozen=True, slots=True)
class MergedView:
    """Final outcome per custom_id across an original batch and all its retries."""

    root_id: str
    batches: tuple[tuple[str, int], ...]
    outcomes: Mapping[str, MergedOutcome]
    counts: Mapping[str, int]


# -- helpers -------------------------------------------------------------------------------------
