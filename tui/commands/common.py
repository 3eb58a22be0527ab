"""Shared CLI plumbing: services from args and settings, errors to exit codes, prompts, output.

A command body is `async def body(ctx: Context) -> int`; `run` turns any failure into one line
on stderr and a stable exit code (EXIT_CODES_HELP)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import IO, TYPE_CHECKING, Any, TypeAlias

import orjson

# Re-exported: the exit codes are defined once, in tui.cli.
from tui.cli import EXIT_ERROR as EXIT_ERROR
from tui.cli import EXIT_NOT_FOUND as EXIT_NOT_FOUND
from tui.cli import EXIT_OK as EXIT_OK
from tui.cli import EXIT_REFUSED as EXIT_REFUSED
from tui.cli import EXIT_USAGE as EXIT_USAGE
from tui.commands.formats import Align, Column, escape_json_controls, format_row
from tui.core.cost import PriceError, PriceTable
from tui.core.models import COUNT_FIELDS, BatchSnapshot, RequestCounts
from tui.core.results import DownloadProgress
from tui.core.sanitize import safe_cell, safe_text, text_width
from tui.service.audit import AuditLog
from tui.service.credentials import MissingApiKey
from tui.service.ledger import Ledger, LedgerError
from tui.service.wiring import ServiceSet, build_services
from tui.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    # The SDK takes seconds to import: only commands that call the API load it (in their
    # bodies), so `--help`, `audit`, `locate` and `config` start at once.
    from tui.service.actions import (
        Actions,
        AttachPreview,
        Preview,
        RetryPreview,
        SubmitPreview,
        TargetPreview,
    )
    from tui.service.api import ApiError
    from tui.service.results_store import ResultsStore

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
CLI_RETRIES = 2
"""SDK retries of 429/5xx/connection errors for one-shot commands (the monitor does its own)."""
LINE_CHARS = 2000
_REDACTED = "[redacted]"


# -- errors and exit codes -------------------------------------------------------------------


API_MODULES: tuple[str, ...] = ("tui.service.api", "tui.service.monitor")
"""What a command that calls the API loads as the process starts (`tui.cli.entry`): the SDK."""

EXIT_CODES_HELP = (
    "exit codes: 0 ok, 1 API or I/O error, 2 usage error (or no API key), 3 refused "
    "(read-only, or not confirmed), 4 not found. Errors print one line on stderr: "
    "batchtop: <what happened> (<error type>, request <request id>)."
)


def add_command(subparsers: Subparsers, name: str, parents: list[argparse.ArgumentParser],
                *, help: str, description: str) -> argparse.ArgumentParser:
    """A sub-command parser with the global options and the exit codes in its help."""
    return subparsers.add_parser(name, parents=parents, help=help, description=description,
                                 epilog=EXIT_CODES_HELP)



class CliError(Exception):
    """A failure the command already put in words; `code` is the exit code."""

    def __init__(self, message: str, code: int = EXIT_ERROR, *, error_type: str | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.error_type = error_type
        self.request_id = request_id


def one_line(text: str, limit: int = LINE_CHARS) -> str:
    """Untrusted text on one inert line (newlines shown as ⏎, controls made visible)."""
    return safe_cell(text, limit)


def error_line(what: str, error_type: str | None = None, request_id: str | None = None) -> str:
    """``batchtop: <what happened> (<error_type>, request <request_id>)``."""
    detail = ", ".join(
        part for part in (error_type, f"request {request_id}" if request_id else None) if part
    )
    return f"batchtop: {one_line(what)}" + (f" ({one_line(detail)})" if detail else "")


def _api_parts(error: ApiError) -> tuple[int, str | None, str | None]:
    code = EXIT_NOT_FOUND if error.kind == "not_found" else EXIT_ERROR
    return code, error.error_type or error.kind, error.request_id


def describe_error(exc: BaseException) -> tuple[int, str]:
    """The exit code and the stderr line for a failure; never a traceback."""
    from tui.service.actions import ActionFailed, ReadOnlyError
    from tui.service.api import ApiError
    from tui.service.results_store import ResultsDownloadError, ResultsNotReady

    if isinstance(exc, CliError):
        return exc.code, error_line(exc.message, exc.error_type, exc.request_id)
    if isinstance(exc, ReadOnlyError):
        return EXIT_REFUSED, error_line(
            f"read-only mode: {exc.action} refused (--read-only, BATCHTOP_READ_ONLY or the "
            "profile's read_only)")
    if isinstance(exc, ActionFailed):
        if exc.api_error is None:
            return EXIT_ERROR, error_line(exc.message)
        code, kind, request_id = _api_parts(exc.api_error)
        return code, error_line(f"{exc.message}: {exc.api_error.message}", kind, request_id)
    if isinstance(exc, ResultsDownloadError):
        code, kind, request_id = _api_parts(exc)
        return code, error_line(
            f"results could not be downloaded in full after {exc.attempts} attempts: "
            f"{exc.message}", kind, request_id)
    if isinstance(exc, ApiError):
        code, kind, request_id = _api_parts(exc)
        return code, error_line(exc.message, kind, request_id)
    if isinstance(exc, MissingApiKey | ConfigError | PriceError):
        return EXIT_USAGE, error_line(str(exc))
    if isinstance(exc, ResultsNotReady | LedgerError):
        return EXIT_ERROR, error_line(str(exc))
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return EXIT_ERROR, error_line(f"{where}{exc.strerror or exc}")
    if isinstance(exc, ValueError):
        return EXIT_USAGE, error_line(str(exc))
    return EXIT_ERROR, error_line(f"unexpected error: {type(exc).__name__}: {exc}")


def guarded(body: Callable[[], int], secrets: Sequence[str] = ()) -> int:
    """Run `body`; any failure becomes its exit code and one line on stderr, secrets removed."""
    try:
        return body()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BrokenPipeError:
        silence_stdout()  # the reader left (`| head`): not a failure of the command
        return EXIT_OK
    except Exception as exc:
        code, line = describe_error(exc)
        for secret in secrets:
            if secret:
                line = line.replace(secret, _REDACTED)
        print(line, file=sys.stderr)
        return code


# -- services --------------------------------------------------------------------------------


class Context:
    """A command's arguments and the services it runs with (closed by `run`)."""

    def __init__(self, args: argparse.Namespace, services: ServiceSet) -> None:
        self.args = args
        self.services = services
        self.settings = services.settings
        self.api = services.api

    @property
    def json(self) -> bool:
        return bool(getattr(self.args, "json", False))

    @property
    def audit(self) -> AuditLog:
        return self.services.audit

    @property
    def ledger(self) -> Ledger:
        return self.services.ledger

    @property
    def store(self) -> ResultsStore:
        return self.services.store

    @cached_property
    def prices(self) -> PriceTable:
        """The price table, a bad ``[prices]`` refused (the app falls back and warns)."""
        return PriceTable.load(self.settings.prices)

    @cached_property
    def actions(self) -> Actions:
        for warning in self.services.costs.warnings:
            note(f"warning: {one_line(warning)}")
        return self.services.actions


def api_key_for(settings: Settings) -> str:
    key = settings.resolve_api_key()
    if key is None:
        raise MissingApiKey(
            f"no API key: set {settings.api_key_env} or give profile {settings.profile!r} an "
            "api_key_command (batchtop config --show lists the settings)")
    return key


def run(args: argparse.Namespace, body: Callable[[Context], Awaitable[int]],
        *, max_retries: int = CLI_RETRIES, for_monitor: bool = False) -> int:
    """Settings, key and services for `body`, run to the end; the exit code.

    The services are those of the app (`build_services`): reads retry `max_retries` times,
    actions never retry by themselves.
    """
    secrets: list[str] = []

    async def main(settings: Settings, key: str) -> int:
        services = await build_services(settings, key, settings.base_url,
                                        max_retries=max_retries, for_monitor=for_monitor)
        try:
            return await body(Context(args, services))
        finally:
            await services.close()

    def start() -> int:
        settings = load_settings(args)
        key = api_key_for(settings)
        secrets.append(key)
        return asyncio.run(main(settings, key))

    return guarded(start, secrets)


# -- confirmation ----------------------------------------------------------------------------


def add_yes(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-y", "--yes", action="store_true",
                        help="do it without asking (needed when stdin is not a terminal)")


def _ask(prompt: str) -> str:
    sys.stderr.write(prompt)
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer.endswith("\n"):
        sys.stderr.write("\n")
    return answer.strip()


def _is_tty(stream: IO[Any] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


async def confirm(ctx: Context, preview: Preview, what: str, *, targets: int = 1) -> None:
    """Return when the user said yes (or gave --yes); otherwise record a refusal and raise.

    Without a terminal on stdin there is nobody to ask: the action is refused (exit 3).
    More than CONFIRM_TYPED_OVER targets need their number typed, as in the app.
    """
    from tui.service.actions import CONFIRM_TYPED_OVER

    if getattr(ctx.args, "yes", False):
        return
    if not _is_tty(sys.stdin):
        await ctx.actions.refuse(preview, reason="not confirmed: no terminal")
        raise CliError(f"{what}: not confirmed (stdin is not a terminal; pass --yes)",
                       EXIT_REFUSED)
    if targets > CONFIRM_TYPED_OVER:
        answer = await asyncio.to_thread(_ask, f"{what}? Type {targets} to confirm: ")
        confirmed = answer == str(targets)
    else:
        answer = await asyncio.to_thread(_ask, f"{what}? [y/N] ")
        confirmed = answer.lower() in ("y", "yes")
    if not confirmed:
        await ctx.actions.refuse(preview, reason="declined")
        raise CliError(f"{what}: not confirmed", EXIT_REFUSED)


# -- previews: what a confirmation shows -------------------------------------------------------


def plural(count: int, noun: str) -> str:
    """``1 batch``, ``2 batches``, ``1,000 requests``."""
    if count == 1:
        return f"{count:,} {noun}"
    return f"{count:,} {noun}" + ("es" if noun.endswith(("ch", "sh", "s", "x")) else "s")


def human_bytes(size: int) -> str:
    """``512 B``, ``3.9 kB``, ``12.5 MB``, ``1.2 GB`` (powers of 1000, like the API's limits)."""
    if size < 1000:
        return f"{size} B"
    value = size / 1000
    for unit in ("kB", "MB"):
        if value < 1000:
            return f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} GB"


def counts_text(counts: RequestCounts) -> str:
    """``1,200 requests (1,100 processing, 100 succeeded)``: the non-empty buckets."""
    parts = [f"{getattr(counts, name):,} {name}" for name in COUNT_FIELDS
             if getattr(counts, name)]
    return plural(counts.total, "request") + (f" ({', '.join(parts)})" if parts else "")


def named(batch_id: str, label: str | None) -> str:
    return safe_text(batch_id) + (f' "{one_line(label)}"' if label else "")


def _tally(mapping: Mapping[str, int]) -> str:
    return ", ".join(f"{safe_text(key)} {value:,}" for key, value in
                     sorted(mapping.items(), key=lambda item: (-item[1], item[0]))) or "none"


def _field(name: str, value: str) -> str:
    return f"  {name:<11} {value}"


def _target_lines(item: TargetPreview) -> list[str]:
    head = f"{item.action} {named(item.batch_id, item.label)}"
    if item.generation:
        head += f" (retry generation {item.generation})"
    return [
        head,
        _field("status", safe_text(item.status)),
        _field("requests", counts_text(item.counts)),
        _field("effect", item.consequence),
    ]


def _retry_lines(preview: RetryPreview) -> list[str]:
    sizes = ", ".join(f"{size:,}" for size in preview.batch_sizes)
    lines = [
        f"retry {named(preview.batch_id, preview.label)}",
        _field("failures", _tally(preview.by_class)),
        _field("reasons", _tally(preview.by_reason)),
        _field("include", ", ".join(sorted(preview.include))),
        _field("selected", plural(preview.selected_count, "request")),
        _field("resubmit", f"{plural(preview.request_count, 'request')} in "
                           f"{plural(preview.batches, 'new batch')}"
                           + (f" ({sizes})" if preview.batches > 1 else "")
                           + f' labelled "{one_line(preview.new_label)}"'),
        _field("cost", preview.estimate.label()),
    ]
    if preview.fix_first:
        lines.append(_field("fix first", plural(len(preview.fix_first), "request")
                            + " failed with permanent errors"))
    if preview.previous_retries:
        lines.append(_field("retried as", ", ".join(map(safe_text, preview.previous_retries))))
    return lines


def _submit_lines(preview: SubmitPreview) -> list[str]:
    lines = [
        f"submit {one_line(preview.source_file)}",
        _field("requests", f"{plural(preview.request_count, 'request')} on "
                           f"{plural(preview.lines, 'line')}"),
    ]
    if preview.batch_sizes:
        sizes = ", ".join(f"{size:,}" for size in preview.batch_sizes)
        lines.append(_field("batches", f"{plural(preview.batches, 'batch')} of at most "
                                       f"{preview.max_per_batch:,} ({sizes}), "
                                       f"{human_bytes(preview.total_bytes)}"))
        labels = [label for label in preview.labels if label]
        if labels:
            lines.append(_field("label", ", ".join(f'"{one_line(x)}"' for x in labels)))
        lines.append(_field("cost", preview.estimate.label()))
    lines.extend(f"  problem: {one_line(text)}" for text in preview.problem_report())
    return lines


def _attach_lines(preview: AttachPreview) -> list[str]:
    report = preview.report
    lines = [
        f"attach {one_line(preview.source_file)} to {named(preview.batch_id, preview.label)}",
        _field("matched", f"{report.matched:,} of {plural(preview.request_count, 'request')}"),
    ]
    if report.unknown_in_file:
        lines.append(_field("unknown", plural(len(report.unknown_in_file), "request")
                            + " in the file are not in the batch"))
    if report.missing_from_file:
        lines.append(_field("missing", plural(len(report.missing_from_file), "result")
                            + " have no request in the file"))
    lines.extend(f"  problem: {one_line(problem.describe(preview.source_file))}"
                 for problem in preview.problems)
    return lines


def preview_lines(preview: Preview) -> list[str]:
    """The preview as plain, inert lines: target, counts, consequence, warnings."""
    from tui.service.actions import BulkPreview, RetryPreview, SubmitPreview, TargetPreview

    warnings: Sequence[str]
    if isinstance(preview, BulkPreview):
        lines = [f"{preview.action} {plural(len(preview.items), 'batch')} "
                 f"({preview.allowed_count:,} allowed, "
                 f"{plural(preview.processing, 'request')} processing)"]
        for item in preview.items:
            lines.extend(_target_lines(item))
            lines.extend(f"  warning: {one_line(text)}" for text in item.warnings)
        return lines
    if isinstance(preview, TargetPreview):
        lines, warnings = _target_lines(preview), preview.warnings
    elif isinstance(preview, RetryPreview):
        lines, warnings = _retry_lines(preview), preview.warnings
    elif isinstance(preview, SubmitPreview):
        lines, warnings = _submit_lines(preview), preview.warnings
    else:
        lines, warnings = _attach_lines(preview), preview.warnings
    lines.extend(f"  warning: {one_line(text)}" for text in warnings)
    return lines


def show_preview(preview: Preview) -> None:
    """The preview on stderr: stdout carries only the ids a script reads."""
    for line in preview_lines(preview):
        note(line)


# -- output ----------------------------------------------------------------------------------


def _dumps(value: Any, option: int) -> bytes:
    """JSON for stdout: orjson's, with the controls it leaves raw (DEL, C1, bidi, U+2028/9)
    escaped as ``\\uXXXX``; the same JSON value."""
    try:
        return escape_json_controls(orjson.dumps(value, option=option))
    except TypeError:  # lone surrogates from a hostile API: escaped instead of refused
        indent = 2 if option & orjson.OPT_INDENT_2 else None
        return json.dumps(value, indent=indent, default=str).encode("ascii")


def emit_json(value: Any) -> None:
    """One JSON document on stdout (indented; orjson escapes every control character)."""
    print(_dumps(value, orjson.OPT_INDENT_2).decode())


def emit_json_line(value: Any) -> None:
    """One compact JSON object per line, flushed (for streams: watch, audit --follow)."""
    print(_dumps(value, 0).decode(), flush=True)


def batch_json(batch: BatchSnapshot, label: str | None, parent: str | None) -> dict[str, Any]:
    """A batch as the API returns it, plus what batchtop knows: label, error rate, parent.

    `error_rate` is null until the batch has ended: the API keeps the failure buckets at 0
    while it runs.
    """
    rate = round(batch.request_counts.error_rate, 6) if batch.is_ended else None
    return {**batch.to_api(), "label": label, "error_rate": rate, "parent_batch_id": parent}


@dataclass(frozen=True, slots=True)
class TableColumn:
    """A column whose width follows its content, up to `max_width` cells."""

    label: str
    align: Align = "left"
    max_width: int = 60


def print_table(columns: Sequence[TableColumn], rows: Iterable[Sequence[str]],
                out: IO[str] | None = None) -> None:
    """Rows under a header, widths fitted to the content; every cell made inert."""
    cells = [[safe_cell(cell, column.max_width) for cell, column in zip(row, columns, strict=True)]
             for row in rows]
    fitted = [
        Column(column.label,
               max([text_width(column.label), *(text_width(row[i]) for row in cells)]),
               column.align)
        for i, column in enumerate(columns)
    ]
    stream = out if out is not None else sys.stdout
    stream.write(format_row([column.label for column in fitted], fitted) + "\n")
    for row in cells:
        stream.write(format_row(row, fitted) + "\n")


def progress_printer(stream: IO[str] | None = None) -> Callable[[DownloadProgress], None] | None:
    """A download progress line on stderr, redrawn in place; None when stderr is no terminal."""
    target = stream if stream is not None else sys.stderr
    if not _is_tty(target):
        return None

    def show(state: DownloadProgress) -> None:
        mb = state.bytes / 1_000_000
        target.write(f"\r\x1b[Kdownloading results: {state.lines:,} / {state.expected:,} lines, "
                     f"{mb:,.1f} MB")
        target.flush()

    return show


def end_progress(stream: IO[str] | None = None) -> None:
    """Clear the progress line, if one was drawn."""
    target = stream if stream is not None else sys.stderr
    if _is_tty(target):
        target.write("\r\x1b[K")
        target.flush()


def positive_int(text: str) -> int:
    """An argparse type: a whole number ≥ 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


@contextlib.contextmanager
def on_stop_signals(stop: Callable[[], object]) -> Iterator[None]:
    """Call `stop` on SIGINT or SIGTERM while inside (the main thread only; else a no-op)."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop)
        except (ValueError, RuntimeError, NotImplementedError):
            continue
        installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def silence_stdout() -> None:
    """The reader went away (`| head`): send the rest to /dev/null instead of failing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def note(text: str) -> None:
    """A human note on stderr (never on stdout, which belongs to scripts)."""
    print(text, file=sys.stderr)


def print_ids(ids: Iterable[str]) -> None:
    for batch_id in ids:
        print(safe_text(batch_id))


# -- actions: cancel and delete existing batches, submit and retry new ones ------------------


def print_batches(ctx: Context, batches: Sequence[BatchSnapshot]) -> None:
    """New or affected batches: ids one per line, or a JSON array of batch objects."""
    if not ctx.json:
        print_ids(batch.id for batch in batches)
        return
    ledger = ctx.ledger
    emit_json([batch_json(b, ledger.label_for(b.id), ledger.parent_of(b.id)) for b in batches])


def add_targets(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("batch_ids", nargs="+", metavar="ID",
                        help="the batch id(s); more than 5 need their number typed to confirm")
    add_yes(parser)


def _failure_code(failures: Sequence[tuple[str, ApiError | None]], action: str) -> int:
    code = EXIT_OK
    for batch_id, error in failures:
        if error is None:
            note(error_line(f"{action} of {batch_id} failed"))
            code = code or EXIT_ERROR
            continue
        failed, kind, request_id = _api_parts(error)
        note(error_line(f"{action} of {batch_id} failed: {error.message}", kind, request_id))
        code = code or failed
    return code


async def act_on_targets(ctx: Context, action: str, *, deleting: bool) -> int:
    """Plan, show, guard, confirm and run cancel or delete on the given batches.

    Batches the API would refuse (cancel of an ended batch, delete of a running one) are
    named on stderr and skipped; the exit code is then 1 even if the others went through.
    """
    from tui.service.actions import BulkPreview

    actions = ctx.actions
    ids: list[str] = list(dict.fromkeys(ctx.args.batch_ids))
    plan = actions.plan_delete_many if deleting else actions.plan_cancel_many
    bulk = await plan(ids)
    show_preview(bulk.items[0] if len(bulk.items) == 1 else bulk)
    if actions.read_only:
        await actions.refuse_read_only(bulk.action, bulk.targets)
    execute = actions.delete_many if deleting else actions.cancel_many
    allowed = BulkPreview(bulk.action, tuple(item for item in bulk.items if item.allowed))
    skipped = [item for item in bulk.items if not item.allowed]
    for item in skipped:
        reason = item.warnings[0] if item.warnings else f"the batch is {item.status}"
        note(error_line(f"{action} of {item.batch_id} skipped: {reason}"))
    if not allowed.items:
        return EXIT_ERROR
    subject = (f"{action} {safe_text(allowed.items[0].batch_id)}" if len(allowed.items) == 1
               else f"{action} {plural(len(allowed.items), 'batch')}")
    await confirm(ctx, allowed if len(allowed.items) > 1 else allowed.items[0], subject,
                  targets=len(allowed.items))
    outcomes = await execute(allowed)
    done = [outcome for outcome in outcomes if outcome.ok]
    if not deleting:
        print_batches(ctx, [o.batch for o in done if o.batch is not None])
    elif ctx.json:  # the API's DeletedMessageBatch objects
        emit_json([{"id": o.batch_id, "type": "message_batch_deleted"} for o in done])
    else:
        print_ids(o.batch_id for o in done)
    code = _failure_code([(o.batch_id, o.error) for o in outcomes if not o.ok], action)
    return code or (EXIT_ERROR if skipped else EXIT_OK)


async def creating(ctx: Context, work: Awaitable[list[BatchSnapshot]]) -> int:
    """Await a submit or retry and print what it created, also when it stopped halfway."""
    from tui.service.actions import ActionFailed

    try:
        created = await work
    except ActionFailed as exc:
        if exc.created:
            print_batches(ctx, exc.created)
        raise
    print_batches(ctx, created)
    return EXIT_OK
