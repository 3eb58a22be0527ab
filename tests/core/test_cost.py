"""Costs are exact, follow the published pricing rules, and never invent a price."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tui.core.cost import (
    PRICE_UNKNOWN,
    BatchCost,
    ModelUsage,
    PriceError,
    PriceTable,
    RequestSize,
    UsageTotals,
    add_usage,
    cost_of,
    estimate_cost,
    format_rate,
    format_usd,
    request_size,
    sum_costs,
)
from tui.core.requests import estimate_tokens

SONNET = "claude-sonnet-4-5"
PRICES = PriceTable.load()
# The guide's $3 / $15 model, fixed here so the test does not depend on the shipped table.
GUIDE = PriceTable.from_toml('[models."guide-model"]\ninput = 3.0\noutput = 15.0\n')


def usage(**fields: Any) -> dict[str, Any]:
    return {"input_tokens": 0, "output_tokens": 0, "service_tier": "batch", **fields}


def totals_of(model: str, *usages: dict[str, Any]) -> UsageTotals:
    totals = UsageTotals()
    for item in usages:
        add_usage(totals, model, item)
    return totals


# --- the guide's worked example ---------------------------------------------------------------


def test_worked_example_from_results() -> None:
    totals = UsageTotals()
    for _ in range(10_000):
        add_usage(totals, "guide-model", usage(input_tokens=2_000, output_tokens=500))
    cost = cost_of(totals, GUIDE)
    assert cost.standard_cost == Decimal("135")
    assert cost.batch_cost == Decimal("67.50")
    assert cost.saving == Decimal("67.50")
    assert (format_usd(cost.batch_cost), format_usd(cost.standard_cost)) == ("$67.50", "$135.00")
    assert cost.label() == "$67.50"
    assert cost.usage.requests == 10_000
    assert cost.complete and cost.warnings == ()


def test_worked_example_as_an_estimate() -> None:
    estimate = estimate_cost([RequestSize("guide-model", 2_000, 500)] * 10_000, GUIDE)
    assert estimate.is_estimate
    assert estimate.max_cost == Decimal("67.50")
    assert estimate.standard_max == Decimal("135")
    assert (estimate.input_cost, estimate.max_output_cost) == (Decimal(30), Decimal("37.50"))
    assert estimate.label() == (
        "estimate: up to $67.50 at batch rates (input ≈ $30.00, output ≤ $37.50)"
    )


def test_shipped_sonnet_matches_the_guide_prices() -> None:
    totals = totals_of(SONNET, usage(input_tokens=20_000_000, output_tokens=5_000_000))
    assert cost_of(totals, PRICES).batch_cost == Decimal("67.50")


# --- cache arithmetic -------------------------------------------------------------------------


def test_cache_multiples_apply_before_the_batch_discount() -> None:
    totals = totals_of(
        "guide-model",
        usage(
            input_tokens=100,
            cache_creation_input_tokens=300,
            cache_read_input_tokens=600,
            cache_creation={"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100},
        ),
    )
    cost = cost_of(totals, GUIDE)
    # 100×3 + 200×3×1.25 + 100×3×2 + 600×3×0.1 = 1,830 USD per million tokens of each
    assert cost.standard_cost == Decimal("0.00183")
    assert cost.batch_cost == Decimal("0.000915")
    assert cost.cache_hit_rate == pytest.approx(0.6)
    line = cost.lines[0]
    assert (line.usage.cache_creation_5m, line.usage.cache_creation_1h) == (200, 100)
    # as plain input: 1,000 × $1.50/M = $0.0015; caching saved the difference
    assert line.cache_saving == Decimal("0.0015") - Decimal("0.000915")


def test_guide_cache_example_with_the_published_read_rate() -> None:
    """70 % cache hits: 7,000 × 2,000 cache reads. The guide prints $51.75 from a wrong
    cached rate; at 0.1× input before the 50 % discount it is $2.10 + $9 + $37.50."""
    totals = UsageTotals()
    totals.add("guide-model", usage(cache_read_input_tokens=14_000_000, output_tokens=3_500_000),
               requests=7_000)
    totals.add("guide-model", usage(input_tokens=6_000_000, output_tokens=1_500_000),
               requests=3_000)
    cost = cost_of(totals, GUIDE)
    assert cost.batch_cost == Decimal("48.60")
    assert cost.cache_hit_rate == pytest.approx(0.7)
    assert format_rate(cost.cache_hit_rate) == "70%"


def test_cache_creation_without_split_counts_as_five_minute_writes() -> None:
    totals = totals_of("guide-model", usage(cache_creation_input_tokens=1_000_000))
    assert totals["guide-model"].cache_creation_5m == 1_000_000
    assert cost_of(totals, GUIDE).standard_cost == Decimal("3.75")


def test_no_input_means_no_hit_rate() -> None:
    assert ModelUsage().cache_hit_rate is None
    assert format_rate(None) == "—"
    assert format_rate(0.05) == "5.0%"


# --- unknown models and the price table --------------------------------------------------------


def test_unknown_model_shows_tokens_but_no_price() -> None:
    totals = totals_of("claude-mystery-9", usage(input_tokens=1_000, output_tokens=10))
    cost = cost_of(totals, PRICES)
    assert cost.unknown_models == ("claude-mystery-9",)
    assert cost.lines[0].batch_cost is None and cost.lines[0].saving is None
    assert cost.usage.input == 1_000
    assert cost.label() == PRICE_UNKNOWN
    assert not cost.complete
    assert any(PRICE_UNKNOWN in note for note in cost.warnings)


def test_mixed_known_and_unknown_models() -> None:
    totals = totals_of(SONNET, usage(input_tokens=1_000_000))
    add_usage(totals, "claude-mystery-9", usage(input_tokens=5))
    cost = cost_of(totals, PRICES)
    assert cost.batch_cost == Decimal("1.50")
    assert cost.label() == f"$1.50 + {PRICE_UNKNOWN}"
    estimate = estimate_cost([RequestSize("claude-mystery-9", 10, 10)], PRICES)
    assert estimate.label() == f"estimate: {PRICE_UNKNOWN} for claude-mystery-9"


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("claude-opus-5", "claude-opus-5"),
    ],
)
def test_dated_ids_use_their_family(model: str, family: str) -> None:
    price = PRICES.lookup(model)
    assert price is not None and price.key == family


@pytest.mark.parametrize(
    "model", ["claude-sonnet-5-5", "claude-fable-5-1", "claude-mythos-preview", "claude-opus-4"]
)
def test_other_variants_are_not_guessed(model: str) -> None:
    assert PRICES.lookup(model) is None
    assert PRICES.per_million(model) is None and model not in PRICES


def test_float_lookup_for_request_estimates() -> None:
    assert PRICES.per_million("claude-haiku-4-5-20251001") == (1.0, 5.0)


def test_shipped_table_is_the_published_batch_list_doubled() -> None:
    published_batch = {
        "claude-opus-5": (2.5, 12.5), "claude-opus-4-8": (2.5, 12.5),
        "claude-opus-4-7": (2.5, 12.5), "claude-opus-4-6": (2.5, 12.5),
        "claude-opus-4-5": (2.5, 12.5), "claude-sonnet-4-6": (1.5, 7.5),
        "claude-sonnet-4-5": (1.5, 7.5), "claude-sonnet-5": (1.5, 7.5),
        "claude-haiku-4-5": (0.5, 2.5), "claude-fable-5": (5, 25), "claude-mythos-5": (5, 25),
        "claude-opus-4-1": (7.5, 37.5),
    }
    assert {price.key for price in PRICES} == set(published_batch)
    for price in PRICES:
        batch_in, batch_out = published_batch[price.key]
        assert (price.rate.input, price.rate.output) == (
            Decimal(str(batch_in)) * 2, Decimal(str(batch_out)) * 2
        )
        assert price.checked is not None and price.source == "shipped"


def test_superseded_price_applies_to_older_batches() -> None:
    totals = totals_of("claude-sonnet-5", usage(input_tokens=1_000_000, output_tokens=1_000_000))
    summer = cost_of(totals, PRICES, at=datetime(2026, 8, 15, tzinfo=UTC))
    autumn = cost_of(totals, PRICES, at=datetime(2026, 11, 24, tzinfo=UTC))
    assert summer.batch_cost == Decimal(6)  # $1 + $5 at the introductory batch price
    assert autumn.batch_cost == Decimal(9)
    assert cost_of(totals, PRICES).batch_cost == Decimal(9)


def test_config_overrides_replace_amend_and_add() -> None:
    table = PriceTable.load(
        {
            SONNET: {"input": 1.0, "output": 2.0},
            "claude-haiku-4-5": {"output": 4},
            "my-finetune": {"input": 0.5, "output": 0.5},
        }
    )
    sonnet = table.lookup("claude-sonnet-4-5-20250929")
    assert sonnet is not None and sonnet.source == "config"
    assert sonnet.rate.input == Decimal("1.0")
    haiku = table.lookup("claude-haiku-4-5")
    assert haiku is not None and (haiku.rate.input, haiku.rate.output) == (Decimal(1), Decimal(4))
    assert "my-finetune" in table
    sonnet5 = PriceTable.load({"claude-sonnet-5": {"input": 3, "output": 15}})
    price = sonnet5.lookup("claude-sonnet-5")
    assert price is not None and price.earlier == ()
    assert PriceTable.load().lookup(SONNET) == PRICES.lookup(SONNET)  # shipped table untouched


@pytest.mark.parametrize(
    ("override", "problem"),
    [
        ({"new-model": {"input": 1.0}}, "`output` is missing"),
        ({SONNET: {"input": "cheap"}}, "must be a number"),
        ({SONNET: {"input": -1}}, "non-negative"),
        ({SONNET: {"input": True}}, "must be a number"),
        ({SONNET: {"inptu": 1}}, "unknown key 'inptu'"),
    ],
)
def test_bad_overrides_name_the_model_and_key(override: dict[str, Any], problem: str) -> None:
    with pytest.raises(PriceError, match=problem) as caught:
        PriceTable.load(override)
    assert repr(next(iter(override))) in str(caught.value)


# --- usage parsing ----------------------------------------------------------------------------


def test_non_batch_tier_is_a_warning() -> None:
    totals = totals_of(
        SONNET,
        usage(input_tokens=1),
        usage(input_tokens=1, service_tier="standard"),
        {"input_tokens": 1, "output_tokens": 1},  # no service_tier: assumed batch
    )
    cost = cost_of(totals, PRICES)
    assert totals[SONNET].non_batch_tier == 1
    assert cost.warnings == (
        f"{SONNET}: 1 of 3 results report a service tier other than batch; "
        "costs assume batch rates",
    )


def test_malformed_usage_values_count_as_zero() -> None:
    totals = totals_of(
        SONNET,
        {"input_tokens": "12", "output_tokens": None, "cache_read_input_tokens": -5,
         "cache_creation": "x", "service_tier": 7},
        {"input_tokens": float("nan"), "output_tokens": True},
    )
    assert totals[SONNET] == ModelUsage(requests=2)


def test_store_shaped_totals_are_accepted() -> None:
    store = {
        SONNET: {"requests": 3, "input_tokens": 1_000_000, "output_tokens": 0,
                 "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        "claude-haiku-4-5": {"input": 1_000_000, "cache_creation_1h": 10, "cache_read": 5},
    }
    cost = cost_of(store, PRICES)
    assert cost.batch_cost == Decimal("1.50") + Decimal("0.50") + Decimal("0.00001") + Decimal(
        "0.00000025"
    )
    totals = UsageTotals.from_mapping(store)
    assert UsageTotals.from_mapping(totals.to_mapping()).to_mapping() == totals.to_mapping()
    assert totals[SONNET].requests == 3


def test_request_size_from_items_and_params() -> None:
    item: dict[str, Any] = {
        "custom_id": "doc-1",
        "params": {
            "model": SONNET,
            "max_tokens": 1024,
            "system": "x" * 40,
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "y" * 400},
                    {"type": "image", "source": {"type": "base64", "data": "A" * 100_000}},
                ]},
            ],
        },
    }
    size = request_size(item)
    assert size == RequestSize(SONNET, estimate_tokens(item["params"]).input_tokens, 1024)
    assert 110 < size.input_tokens - 1_600 < 120  # ~448 characters ÷ 4, the image counted flat
    assert request_size(item["params"]) == size
    estimate = estimate_cost([item, item], PRICES)
    assert (estimate.requests, estimate.max_output_tokens) == (2, 2048)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("67.5"), "$67.50"),
        (Decimal("1234.005"), "$1,234.01"),
        (Decimal("0.004"), "<$0.01"),
        (Decimal(0), "$0.00"),
        (Decimal("-2.5"), "-$2.50"),
        (None, PRICE_UNKNOWN),
    ],
)
def test_format_usd(amount: Decimal | None, text: str) -> None:
    assert format_usd(amount) == text


# --- properties -------------------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=10**9)
usages = st.builds(
    lambda i, o, c5, c1, r: usage(
        input_tokens=i, output_tokens=o, cache_creation_input_tokens=c5 + c1,
        cache_read_input_tokens=r,
        cache_creation={"ephemeral_5m_input_tokens": c5, "ephemeral_1h_input_tokens": c1},
    ),
    counts, counts, counts, counts, counts,
)
models = st.sampled_from([SONNET, "claude-opus-4-6-20250101", "claude-haiku-4-5", "mystery"])


model_usages = st.lists(st.tuples(models, usages), max_size=8)


@given(model_usages, model_usages)
def test_cost_is_additive(first: list[tuple[str, dict[str, Any]]],
                          second: list[tuple[str, dict[str, Any]]]) -> None:
    part_a, part_b, whole = UsageTotals(), UsageTotals(), UsageTotals()
    for model, item in first:
        part_a.add(model, item)
        whole.add(model, item)
    for model, item in second:
        part_b.add(model, item)
        whole.add(model, item)
    together = cost_of(whole, PRICES)
    summed = sum_costs([cost_of(part_a, PRICES), cost_of(part_b, PRICES)])
    assert summed.batch_cost == together.batch_cost
    assert summed.standard_cost == together.standard_cost
    assert summed.usage == together.usage
    assert summed.unknown_models == together.unknown_models
    assert together.batch_cost * 2 == together.standard_cost
    assert together.saving >= 0


@given(st.lists(usages, max_size=6), st.integers(min_value=1, max_value=5))
def test_cost_is_linear_and_hit_rate_bounded(items: list[dict[str, Any]], factor: int) -> None:
    once = totals_of(SONNET, *items)
    many = totals_of(SONNET, *(items * factor))
    assert cost_of(many, PRICES).batch_cost == cost_of(once, PRICES).batch_cost * factor
    rate = cost_of(once, PRICES).cache_hit_rate
    assert rate is None or 0.0 <= rate <= 1.0


def test_sum_of_nothing_is_zero() -> None:
    total = sum_costs([])
    assert total == BatchCost() and total.batch_cost == 0 and total.label() == "$0.00"
