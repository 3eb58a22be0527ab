"""`batchtop ls` and `show`: golden JSON and tables for fixed batches, then against the emulator."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest

from tests.cli.conftest import Cli, golden
from tui.cli import EXIT_NOT_FOUND, EXIT_OK
from tui.commands.common import emit_json, print_table
from tui.commands.ls import COLUMNS, json_rows, table_rows
from tui.commands.show import Details, details_json, details_lines
from tui.core.cost import PriceTable, cost_of
from tui.core.errors import RetryClass
from tui.core.models import COUNT_FIELDS, BatchSnapshot
from tui.core.results import ErrorGroup, ModelTokenSums, StoreStatus

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
PRICES = PriceTable.from_toml('[models."claude-sonnet-4-6"]\ninput = 3.0\noutput = 15.0\n')


def snapshot(batch_id: str, status: str, created: str, *, ended: str | None = None,
             archived: str | None = None, **counts: int) -> BatchSnapshot:
    return BatchSnapshot.from_api({
        "id": batch_id, "type": "message_batch", "processing_status": status,
        "request_counts": {name: counts.get(name, 0) for name in COUNT_FIELDS},
        "created_at": created, "expires_at": created.replace("2026-05-01", "2026-05-02"),
        "ended_at": ended, "archived_at": archived, "cancel_initiated_at": None,
        "results_url": f"https://api.example/v1/messages/batches/{batch_id}/results"
        if ended else None,
    })


BATCHES = [
    snapshot("msgbatch_running", "in_progress", "2026-05-01T11:55:00Z", processing=1200),
    snapshot("msgbatch_retry", "ended", "2026-05-01T11:00:00Z", ended="2026-05-01T11:20:00Z",
             succeeded=30, errored=2),
    snapshot("msgbatch_failures", "ended", "2026-05-01T09:00:00Z", ended="2026-05-01T10:02:03Z",
             succeeded=1600, errored=380, expired=20),
    snapshot("msgbatch_clean", "ended", "2026-05-01T08:00:00Z", ended="2026-05-01T08:10:00Z",
             succeeded=250),
]
LABELS = {"msgbatch_failures": "nightly, \x1b[31mred\x1b[0m", "msgbatch_retry": "retry of nightly"}
LINEAGE = {"msgbatch_retry": ("msgbatch_failures", 1)}


def test_ls_json_golden(capsys: pytest.CaptureFixture[str]) -> None:
    emit_json(json_rows(BATCHES, LABELS, LINEAGE))
    out = capsys.readouterr().out
    golden("ls.json", out)
    rows = orjson.loads(out)
    assert [row["id"] for row in rows] == [b.id for b in BATCHES]
    assert rows[0]["error_rate"] is None  # failure buckets stay 0 until a batch ends
    assert rows[1]["parent_batch_id"] == "msgbatch_failures"
    assert rows[2]["error_rate"] == 0.2


def test_ls_table_golden(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(COLUMNS, table_rows(BATCHES, LABELS, NOW))
    out = capsys.readouterr().out
    golden("ls_table.txt", out)
    assert "\x1b" not in out and "␛[31mred" in out


def details() -> Details:
    batch = BATCHES[2]
    usage = {"claude-sonnet-4-6": ModelTokenSums(1600, 2_000_000, 500_000, 0, 700_000)}
    return Details(
        batch, label=LABELS[batch.id], retries=("msgbatch_retry",),
        results=StoreStatus(batch.id, True, 2000, 2000, 1_234_567, downloaded_at=None),
        errors=(
            ErrorGroup("overloaded_error", "Overloaded", 300, RetryClass.RETRYABLE),
            ErrorGroup("invalid_request_error", "bad\nrequest \x1b]52;c;x\x07", 80,
                       RetryClass.PERMANENT),
            ErrorGroup("expired", "", 20, RetryClass.RETRYABLE, result_type="expired"),
        ),
        usage=usage,
        cost=cost_of({m: {"requests": u.requests, "input_tokens": u.input_tokens,
                          "output_tokens": u.output_tokens,
                          "cache_read_input_tokens": u.cache_read_input_tokens}
                      for m, u in usage.items()}, PRICES),
    )


def test_show_json_golden(capsys: pytest.CaptureFixture[str]) -> None:
    emit_json(details_json(details(), NOW))
    out = capsys.readouterr().out
    golden("show.json", out)
    shown: dict[str, Any] = orjson.loads(out)
    assert shown["cost"]["batch_usd"] == pytest.approx(6.855)
    assert [group["count"] for group in shown["errors"]] == [300, 80, 20]


def test_show_text_golden() -> None:
    text = "\n".join(details_lines(details(), NOW)) + "\n"
    golden("show.txt", text)
    assert "\x1b" not in text and "\x07" not in text


# -- against the emulator -------------------------------------------------------------------


def test_ls_lists_every_batch_newest_first(cli: Cli) -> None:
    ran = cli("ls", "--json")
    assert ran.code == EXIT_OK, ran.err
    rows = orjson.loads(ran.out)
    api = cli.batches()
    assert [row["id"] for row in rows] == [b.id for b in api]
    created = [row["created_at"] for row in rows]
    assert created == sorted(created, reverse=True)
    assert set(rows[0]) >= {"id", "processing_status", "request_counts", "label", "error_rate",
                            "parent_batch_id"}


def test_ls_status_and_limit(cli: Cli) -> None:
    running = orjson.loads(cli("ls", "--json", "--status", "running").out)
    assert running and all(r["processing_status"] in ("in_progress", "canceling")
                           for r in running)
    failed = orjson.loads(cli("--json", "ls", "--status", "failed").out)
    assert failed and all(r["request_counts"]["errored"] + r["request_counts"]["expired"]
                          for r in failed)
    ended = orjson.loads(cli("ls", "--json", "--status", "ended", "--limit", "2").out)
    assert len(ended) == 2 and all(r["processing_status"] == "ended" for r in ended)
    table = cli("ls", "--limit", "3").out.splitlines()
    assert table[0].startswith("ID ") and len(table) == 4


def test_show_ended_batch(cli: Cli) -> None:
    batch = min((b for b in cli.batches() if b.is_ended and b.archived_at is None
                 and b.request_counts.errored), key=lambda b: b.request_counts.total)
    ran = cli("show", batch.id, "--json")
    assert ran.code == EXIT_OK, ran.err
    shown = orjson.loads(ran.out)
    assert shown["results"]["complete"] is True
    assert sum(g["count"] for g in shown["errors"]) == batch.request_counts.errored
    assert shown["cost"]["batch_usd"] > 0
    text = cli("show", batch.id)
    assert text.out.startswith(f"id          {batch.id}\n")
    assert "errors\n" in text.out


def test_show_archived_and_unknown(cli: Cli) -> None:
    archived = cli.find(lambda b: b.archived_at is not None)
    ran = cli("show", archived.id)
    assert ran.code == EXIT_OK
    assert "archived: results can no longer be downloaded" in ran.out
    missing = cli("show", "msgbatch_nope")
    assert missing.code == EXIT_NOT_FOUND and "not_found_error" in missing.err


def cached_line(custom_id: str, model: str, *, write_5m: int = 0, write_1h: int = 0,
                tier: str = "batch") -> bytes:
    usage = {
        "input_tokens": 20_000, "output_tokens": 3_000, "cache_read_input_tokens": 50_000,
        "cache_creation_input_tokens": write_5m + write_1h, "service_tier": tier,
        "cache_creation": {"ephemeral_5m_input_tokens": write_5m,
                           "ephemeral_1h_input_tokens": write_1h},
    }
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": model,
               "content": [], "stop_reason": "end_turn", "usage": usage}
    return orjson.dumps(
        {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}
    ) + b"\n"


def batch_usd(lines: list[bytes]) -> float:
    """By the published rules, from the raw lines: batch = 50 % of standard; cache reads 0.1x,
    5-minute writes 1.25x, 1-hour writes 2x of the input price (shipped table)."""
    total = Decimal(0)
    for raw in lines:
        message = orjson.loads(raw)["result"]["message"]
        usage, split = message["usage"], message["usage"]["cache_creation"]
        rate = PriceTable.shipped().lookup(message["model"])
        assert rate is not None
        price_in, price_out = rate.rate.input, rate.rate.output
        standard = (usage["input_tokens"] * price_in
                    + split["ephemeral_5m_input_tokens"] * price_in * Decimal("1.25")
                    + split["ephemeral_1h_input_tokens"] * price_in * 2
                    + usage["cache_read_input_tokens"] * price_in * Decimal("0.1")
                    + usage["output_tokens"] * price_out)
        total += standard / 2 / 1_000_000
    return float(total)


def test_show_prices_1h_cache_writes_and_warns_of_other_tiers(cli: Cli) -> None:
    batch = cli.find(lambda b: b.is_ended and b.archived_at is None)
    lines = [
        cached_line("a", "claude-opus-4-6", write_1h=300_000),
        cached_line("b", "claude-opus-4-6", write_5m=40_000, write_1h=80_000, tier="standard"),
        cached_line("c", "claude-haiku-4-5", write_5m=10_000),
    ]
    with cli.store() as store:  # already downloaded: show reads the store, not the API
        store.ingest(batch.id, lines)
    ran = cli("show", batch.id, "--json")
    assert ran.code == EXIT_OK, ran.err
    shown = orjson.loads(ran.out)
    assert shown["cost"]["batch_usd"] == pytest.approx(batch_usd(lines), abs=1e-6)
    assert shown["usage"]["claude-opus-4-6"]["cache_creation_1h"] == 380_000
    assert shown["usage"]["claude-opus-4-6"]["non_batch_tier"] == 1
    text = cli("show", batch.id).out
    assert ("claude-opus-4-6: 1 of 2 results report a service tier other than batch; "
            "costs assume batch rates") in text
