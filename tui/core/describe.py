"""One inert line summing up an event's data, shared by the event pane and the audit viewer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tui.core import events as ev
from tui.core.alerts import ALERT_RAISED
from tui.core.events import Event
from tui.core.sanitize import safe_cell
from tui.core.timefmt import human_duration

FIELD_CHARS = 80
"""Longest single untrusted field (a message, a status) inside a summary."""
SUMMARY_CHARS = 300
"""Longest summary built; a table cuts it to its column anyway."""


def byte_size(size: int) -> str:
    """ "812 B", "45.1 KB", "3.2 MB", "1.1 GB" (powers of 1,000, like download tools)."""
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1000:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def as_dict(value: Any) -> dict[str, Any]:
    """`value` if it is a dict, else an empty one (audit data is untrusted in shape)."""
    return value if isinstance(value, dict) else {}


def as_number(value: Any) -> float | None:
    """`value` if it is a real number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value


def _field(value: Any) -> str:
    return safe_cell(str(value), FIELD_CHARS)


def _scalar(value: Any) -> str:
    if isinstance(value, dict):
        return "{…}"
    if isinstance(value, list):
        return f"[{len(value)}]"
    return str(value)


def _pairs(data: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={_scalar(value)}" for key, value in data.items() if value is not None)


def _counts(value: Any, *, grouped: bool = True) -> str:
    counts = as_dict(value)
    shown = ((name, count) for name, count in counts.items()
             if isinstance(count, int) and not isinstance(count, bool) and count)
    return " · ".join(f"{name} {count:,}" if grouped else f"{name} {count}"
                      for name, count in shown)


def _error(value: Any) -> str:
    error = value if isinstance(value, dict) else {"message": value}
    head = " ".join(str(error[k]) for k in ("type", "kind", "status") if error.get(k))
    message = error.get("message")
    if message and head:
        return f"{head}: {message}"
    return head or str(message or "")


# -- the monitor's own events ----------------------------------------------------------------------


def _discovered(data: Mapping[str, Any]) -> str:
    counts = as_dict(data.get("counts"))
    total = sum(v for v in counts.values() if isinstance(v, int))
    return f"{_field(data.get('status'))} · {total} requests"


def _counts_changed(data: Mapping[str, Any]) -> str:
    before, after = as_dict(data.get("from")), as_dict(data.get("to"))
    return " · ".join(f"{k} {before.get(k, 0)}→{v}" for k, v in after.items()
                      if before.get(k) != v)


def _ended(data: Mapping[str, Any]) -> str:
    text = _counts(data.get("counts"), grouped=False)
    rate = data.get("error_rate")
    if isinstance(rate, float) and rate:
        text += f" · {rate:.1%} failed"
    return text


def _api_error(data: Mapping[str, Any]) -> str:
    parts = [data.get("kind"), data.get("status"), data.get("error_type")]
    head = " ".join(_field(p) for p in parts if p)
    message = _field(data.get("message") or "")
    retry = as_number(data.get("retry_in_s"))
    tail = f" · retry in {retry:g}s" if retry is not None else ""
    request = f" · {_field(data['request_id'])}" if data.get("request_id") else ""
    return f"{head}: {message}{tail}{request}"


def _session(name: str, data: Mapping[str, Any]) -> str:
    if name == ev.SESSION_ENDED:
        duration = as_number(data.get("duration_s"))
        parts = [f"after {human_duration(duration)}" if duration is not None else "ended"]
        calls, batches = as_number(data.get("api_calls")), as_number(data.get("batches"))
        if calls is not None:
            parts.append(f"{calls:,.0f} API calls")
        if batches is not None:
            parts.append(f"{batches:,.0f} batches")
        return " · ".join(parts)
    return "monitor started" if name == ev.SESSION_STARTED else _pairs(data)


def _gone(data: Mapping[str, Any]) -> str:
    text = f"gone; last seen {data.get('last_status') or '?'}"
    return f"{text} ({data['reason']})" if data.get("reason") else text


# -- the families written by actions, downloads and alerts -----------------------------------------


def _action(data: Mapping[str, Any]) -> str:
    parts = [str(data.get("outcome") or "?")]
    if data.get("reason"):
        parts.append(str(data["reason"]))
    if data.get("error"):
        parts.append(_error(data["error"]))
    if data.get("label"):
        parts.append(f'label "{data["label"]}"')
    created = data.get("created")
    if isinstance(created, list) and created:
        parts.append(f"created {len(created)} batch" + ("" if len(created) == 1 else "es"))
    counts = _counts(data.get("counts"))
    if counts:
        parts.append(counts)
    return " · ".join(parts)


def _results(name: str, data: Mapping[str, Any]) -> str:
    lines, expected = as_number(data.get("lines")), as_number(data.get("expected"))
    got = f"{lines:,.0f}" if lines is not None else "?"
    progress = f"{got} of {expected:,.0f} lines" if expected is not None else f"{got} lines"
    if name == ev.RESULTS_FAILED:
        head = " ".join(str(data[k]) for k in ("kind", "status", "error_type") if data.get(k))
        failed = f"{head}: {data.get('error') or '?'}" if head else str(data.get("error") or "?")
        return f"{failed} · {progress}" if lines is not None else failed
    if name == ev.RESULTS_DOWNLOADED:
        size = as_number(data.get("bytes"))
        seconds = as_number(data.get("seconds"))
        parts = [progress]
        if size is not None:
            parts.append(byte_size(int(size)))
        if seconds is not None:
            parts.append(f"in {human_duration(seconds)}")
        return " · ".join(parts)
    if name == ev.RESULTS_OPENED:
        results = as_number(data.get("results"))
        shown = f"{results:,.0f} results" if results is not None else ""
        return " · ".join(p for p in (f"from {data.get('source') or '?'}", shown) if p)
    return _pairs(data)


def _describe(name: str, data: Mapping[str, Any]) -> str:
    simple = {
        ev.BATCH_DISCOVERED: _discovered,
        ev.BATCH_COUNTS_CHANGED: _counts_changed,
        ev.BATCH_ENDED: _ended,
        ev.BATCH_GONE: _gone,
        ev.API_ERROR: _api_error,
    }.get(name)
    if simple is not None:
        return simple(data)
    if name == ev.BATCH_STATUS_CHANGED:
        return f"{_field(data.get('from'))} → {_field(data.get('to'))}"
    if name == ev.API_RECOVERED:
        return f"after {data.get('outage_s')}s, {data.get('failures')} failures"
    if name == ev.AUDIT_DROPPED:
        return f"{data.get('count')} records dropped: {data.get('reason') or '?'}"
    if name == ALERT_RAISED:
        return f"{data.get('severity') or '?'} {data.get('kind') or '?'}: {data.get('message')}"
    if name == ev.ALERT_HOOK_FAILED:
        return f"on_alert command failed ({data.get('kind') or '?'}): {data.get('error')}"
    if name.startswith(ev.ACTION_PREFIX):
        return _action(data)
    if name.startswith(ev.RESULTS_PREFIX):
        return _results(name, data)
    if name.startswith("session."):
        return _session(name, data)
    return _pairs(data)


def describe_event(event: Event) -> str:
    """A short, inert, one-line account of the event's data, by event kind.

    Data from an older or foreign writer (odd types, missing fields) never raises: its
    fields are then shown as they are.
    """
    data = as_dict(event.data)
    try:
        text = _describe(event.event, data)
    except Exception:
        text = _pairs(data)
    return safe_cell(text, SUMMARY_CHARS)
