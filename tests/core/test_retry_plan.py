"""Retry planning picks retryable failures by default, lists permanent ones, merges lineages."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.core.cost import PriceTable
from tui.core.errors import RetryClass, classify
from tui.core.retry_plan import (
    DEFAULT_INCLUDE,
    PENDING,
    Attempt,
    Row,
    merge_outcomes,
    outcome_counts,
    parse_include,
    plan_retry,
    select_failures,
)

MIXED = [
    Row("ok-1", "succeeded"),
    Row("ok-2", "succeeded"),
    Row("rl", "errored", "rate_limit_error"),
    Row("ov", "errored", "overloaded_error"),
    Row("api", "errored", "api_error"),
    Row("to", "errored", "timeout_error"),
    Row("exp", "expired"),
    Row("can", "canceled"),
    Row("bad", "errored", "invalid_request_error"),
    Row("auth", "errored", "authentication_error"),
    Row("envelope", "errored", "error"),  # the outer envelope's type: never a retry
    Row("", "malformed"),
]


def originals(ids: Any) -> dict[str, dict[str, Any]]:
    return {cid: {"model": f"m-{cid}", "max_tokens": 7, "messages": []} for cid in ids}


def test_default_takes_retryable_errors_and_expired() -> None:
    selection = select_failures(MIXED)
    assert set(selection.selected) == {"rl", "ov", "api", "to", "exp"}
    assert selection.by_class == {"retryable": 5, "canceled": 1, "permanent": 2, "unknown": 1}
    assert selection.by_reason["rate_limit_error"] == 1
    assert selection.by_reason["expired"] == 1
    assert selection.fix_first == (("bad", "invalid_request_error"),
                                   ("auth", "authentication_error"))
    assert selection.succeeded == 2
    assert selection.failed == 9
    assert selection.not_selected == 4


@pytest.mark.parametrize(
    ("tokens", "extra"),
    [
        (["canceled"], {"can"}),
        (["permanent"], {"bad", "auth"}),
        (["invalid_request_error"], {"bad"}),
        (["unknown"], {"envelope"}),
    ],
)
def test_other_failures_only_when_chosen(tokens: list[str], extra: set[str]) -> None:
    include = DEFAULT_INCLUDE | parse_include(tokens)
    selection = select_failures(MIXED, include)
    assert set(selection.selected) == {"rl", "ov", "api", "to", "exp"} | extra


def test_specific_types_alone() -> None:
    selection = select_failures(MIXED, parse_include(["expired", "rate_limit_error"]))
    assert set(selection.selected) == {"exp", "rl"}


def test_all_takes_every_failure() -> None:
    selection = select_failures(MIXED, parse_include(["all"]))
    assert set(selection.selected) == {"rl", "ov", "api", "to", "exp", "can", "bad", "auth",
                                       "envelope"}


def test_unknown_include_token_is_refused() -> None:
    with pytest.raises(ValueError, match="bogus"):
        parse_include(["retryable", "bogus"])


def test_missing_results_count_and_can_be_chosen() -> None:
    selection = select_failures(MIXED, missing=["lost", "ok-1"])
    assert selection.by_reason["missing"] == 1
    assert "lost" not in selection.selected
    chosen = select_failures(MIXED, parse_include(["missing"]), missing=["lost"])
    assert chosen.selected == ("lost",)


def test_plan_uses_original_params_and_reports_the_missing() -> None:
    selection = select_failures(MIXED)
    plan = plan_retry(selection, originals(["rl", "ov", "api", "exp"]), max_per_batch=3,
                      prices=PriceTable.from_toml('[models."m-rl"]\ninput = 1.0\noutput = 1.0\n'))
    assert plan.missing_originals == ("to",)
    assert plan.request_count == 4
    assert plan.batch_sizes == (3, 1)
    assert plan.batches == 2
    sent = {r.custom_id: r.params["model"] for chunk in plan.chunks for r in chunk}
    assert sent == {"rl": "m-rl", "ov": "m-ov", "api": "m-api", "exp": "m-exp"}
    assert plan.estimate.max_output_tokens == 4 * 7
    assert plan.estimate.unknown_models == ("m-api", "m-exp", "m-ov")  # only m-rl has a price
    assert plan.estimate.max_output_cost == Decimal(7) * Decimal("0.5") / 1_000_000


def test_merge_first_success_wins_else_latest() -> None:
    merged = merge_outcomes([
        Attempt("b2", 1, [Row("x", "succeeded"), Row("y", "errored", "api_error"),
                          Row("z", "succeeded")]),
        Attempt("b1", 0, [Row("x", "errored", "rate_limit_error"), Row("y", "expired"),
                          Row("z", "succeeded"), Row("w", "canceled")]),
        Attempt("b3", 2, [Row("y", PENDING), Row("z", "errored", "api_error")]),
    ])
    assert merged["x"].type == "succeeded" and merged["x"].batch_id == "b2"
    assert merged["x"].attempts == 2
    assert merged["y"].type == PENDING and merged["y"].generation == 2
    assert merged["y"].attempts == 3
    assert merged["z"].batch_id == "b1" and merged["z"].attempts == 3
    assert merged["w"].retry_class is RetryClass.CANCELED
    assert outcome_counts(merged) == {"succeeded": 2, PENDING: 1, "canceled": 1}


RESULT = st.one_of(
    st.tuples(st.sampled_from(["succeeded", "expired", "canceled", "malformed"]), st.none()),
    st.tuples(st.just("errored"), st.sampled_from([
        "api_error", "overloaded_error", "rate_limit_error", "timeout_error",
        "invalid_request_error", "billing_error", "error", None,
    ])),
)


@given(
    rows=st.lists(st.tuples(st.text("abc", min_size=1, max_size=3), RESULT), max_size=40),
    tokens=st.sets(st.sampled_from(["retryable", "permanent", "canceled", "unknown",
                                    "expired", "api_error", "billing_error"])),
)
def test_selection_invariants(rows: list[tuple[str, tuple[str, str | None]]],
                              tokens: set[str]) -> None:
    include = parse_include(tokens)
    result_rows = [Row(cid, kind, err) for cid, (kind, err) in rows]
    selection = select_failures(result_rows, include)
    latest = {row.custom_id: row for row in result_rows}
    failed = {cid for cid, row in latest.items()
              if classify(row.type, row.error_type) is not RetryClass.SUCCEEDED}
    assert set(selection.selected) <= failed
    assert len(selection.selected) == len(set(selection.selected))
    assert selection.failed == len(failed)
    assert selection.succeeded == len(latest) - len(failed)
    for cid in failed:
        row = latest[cid]
        klass = classify(row.type, row.error_type).value
        wanted = klass in include or row.type in include or row.error_type in include
        assert (cid in selection.selected) == wanted
    default = select_failures(result_rows)
    assert set(default.selected) == {
        cid for cid in failed
        if classify(latest[cid].type, latest[cid].error_type) is RetryClass.RETRYABLE
    }
