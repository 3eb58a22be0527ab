"""What batches cost: token totals per model, the price table, batch vs standard cost, estimates."""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

from tui.core.requests import estimate_tokens
from tui.core.sanitize import safe_text

MILLION = Decimal(1_000_000)
BATCH_DISCOUNT = Decimal("0.5")
CACHE_READ_FACTOR = Decimal("0.1")
CACHE_WRITE_5M_FACTOR = Decimal("1.25")
CACHE_WRITE_1H_FACTOR = Decimal(2)
BATCH_TIER = "batch"
PRICE_UNKNOWN = "price unknown"
SHIPPED = "shipped"
CONFIG = "config"

_CENT = Decimal("0.01")
_DATED_ID = re.compile(r"^(?P<family>.+?)[-@]\d{8}$")


class PriceError(ValueError):
    """A price table or a config override cannot be used; the message names model and key."""


# ---------------------------------------------------------------------------------------------
# Token totals


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Token sums of the succeeded requests of one model (errored/canceled/expired are free)."""

    requests: int = 0
    input: int = 0
    output: int = 0
    cache_creation_5m: int = 0
    cache_creation_1h: int = 0
    cache_read: int = 0
    non_batch_tier: int = 0

    @property
    def cache_creation(self) -> int:
        return self.cache_creation_5m + self.cache_creation_1h

    @property
    def total_input(self) -> int:
        """Every input token: uncached + cache writes + cache reads."""
        return self.input + self.cache_creation + self.cache_read

    @property
    def cache_hit_rate(self) -> float | None:
        """cache_read ÷ (input + cache_creation + cache_read); None when there was no input."""
        total = self.total_input
        return self.cache_read / total if total else None

    def __add__(self, other: ModelUsage) -> ModelUsage:
        return ModelUsage(*(a + b for a, b in zip(_fields(self), _fields(other), strict=True)))

    def to_dict(self) -> dict[str, int]:
        return dict(zip(USAGE_FIELDS, _fields(self), strict=True))


USAGE_FIELDS: tuple[str, ...] = (
    "requests", "input", "output", "cache_creation_5m", "cache_creation_1h", "cache_read",
    "non_batch_tier",
)


def _fields(usage: ModelUsage) -> tuple[int, ...]:
    return (usage.requests, usage.input, usage.output, usage.cache_creation_5m,
            usage.cache_creation_1h, usage.cache_read, usage.non_batch_tier)


def _count(value: object) -> int | None:
    """A token count from untrusted JSON: non-negative int, or None when absent or malformed."""
    if type(value) is int:  # the common case, first: this runs for every result line
        return value if value > 0 else 0
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return max(0, int(value))


def _first(data: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        found = _count(data.get(key))
        if found is not None:
            return found
    return None


def _usage_row(data: Mapping[str, Any], requests: int) -> tuple[int, ...]:
    """Parse a `usage` object, or a mapping of sums in `ModelUsage.to_dict()` shape."""
    split = data.get("cache_creation")
    split_map: Mapping[str, Any] = split if isinstance(split, Mapping) else data
    one_h = _first(split_map, "ephemeral_1h_input_tokens", "cache_creation_1h") or 0
    five_m = _first(split_map, "ephemeral_5m_input_tokens", "cache_creation_5m") or 0
    creation = _first(data, "cache_creation_input_tokens", "cache_creation")
    if creation is not None:
        # Without a split every write is a 5-minute write; never lose tokens the split misses.
        five_m = max(five_m, creation - one_h)
    tier = data.get("service_tier")
    non_batch = _first(data, "non_batch_tier")
    if non_batch is None:
        non_batch = int(isinstance(tier, str) and tier != BATCH_TIER)
    counted = _first(data, "requests")
    return (
        requests if counted is None else counted,
        _first(data, "input_tokens", "input") or 0,
        _first(data, "output_tokens", "output") or 0,
        five_m,
        one_h,
        _first(data, "cache_read_input_tokens", "cache_read") or 0,
        non_batch,
    )


class UsageTotals:
    """Per-model token sums, accumulated one succeeded result at a time (cheap per call)."""

    __slots__ = ("_sums",)

    def __init__(self) -> None:
        self._sums: dict[str, list[int]] = {}

    def add(self, model: str, usage: Mapping[str, Any], requests: int = 1) -> None:
        """Count one succeeded result's `usage` (or a mapping of sums) for `model`."""
        row = _usage_row(usage, requests)
        sums = self._sums.get(model)
        if sums is None:
            self._sums[model] = list(row)
        else:
            for index, value in enumerate(row):
                sums[index] += value

    def add_model_usage(self, model: str, usage: ModelUsage) -> None:
        self.add(model, usage.to_dict())

    def merge(self, other: UsageTotals) -> None:
        for model, usage in other.items():
            self.add_model_usage(model, usage)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Mapping[str, Any]]) -> UsageTotals:
        """From ``{model: {token sums}}`` (the results store's shape, or `to_mapping()`'s)."""
        totals = cls()
        for model, sums in data.items():
            totals.add(str(model), sums, requests=0)
        return totals

    def to_mapping(self) -> dict[str, dict[str, int]]:
        return {model: usage.to_dict() for model, usage in self.items()}

    def __getitem__(self, model: str) -> ModelUsage:
        return ModelUsage(*self._sums[model])

    def __contains__(self, model: object) -> bool:
        return model in self._sums

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._sums))

    def __len__(self) -> int:
        return len(self._sums)

    def items(self) -> Iterator[tuple[str, ModelUsage]]:
        for model in self:
            yield model, self[model]

    @property
    def total(self) -> ModelUsage:
        return sum((usage for _, usage in self.items()), ModelUsage())


def add_usage(totals: UsageTotals, model: str, usage: Mapping[str, Any]) -> None:
    """Count one succeeded result: ``add_usage(totals, message["model"], message["usage"])``."""
    totals.add(model, usage)


# ---------------------------------------------------------------------------------------------
# Prices


@dataclass(frozen=True, slots=True)
class Rate:
    """Standard base prices in USD per million tokens."""

    input: Decimal
    output: Decimal


@dataclass(frozen=True, slots=True)
class PricePeriod:
    """A superseded price, billed for batches created before `until`."""

    until: date
    rate: Rate


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """One model family's standard base price, where it came from and when it was checked."""

    key: str
    rate: Rate
    checked: date | None = None
    source: str = SHIPPED
    earlier: tuple[PricePeriod, ...] = ()

    def rate_at(self, when: datetime | None) -> Rate:
        """The price in force for a batch created at `when` (today's price when None)."""
        if when is not None:
            for period in sorted(self.earlier, key=lambda p: p.until):
                if when.date() < period.until:
                    return period.rate
        return self.rate


def _price(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise PriceError(f"{where} must be a number of USD per million tokens")
    try:
        amount = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation as exc:
        raise PriceError(f"{where} must be a number of USD per million tokens") from exc
    if not amount.is_finite() or amount < 0:
        raise PriceError(f"{where} must be a non-negative number")
    return amount


def _day(value: object, where: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise PriceError(f"{where} must be a date like 2026-11-01") from exc
    raise PriceError(f"{where} must be a date like 2026-11-01")


def _model_price(key: str, entry: Mapping[str, Any], source: str,
                 base: ModelPrice | None = None) -> ModelPrice:
    where = f"price of {key!r}"
    if not isinstance(entry, Mapping):
        raise PriceError(f"{where} must be a table with input and output")
    unknown = set(entry) - {"input", "output", "checked", "earlier"}
    if unknown:
        raise PriceError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    rates: dict[str, Decimal] = {}
    for name in ("input", "output"):
        if name in entry:
            rates[name] = _price(entry[name], f"{where}: {name}")
        elif base is not None:
            rates[name] = getattr(base.rate, name)
        else:
            raise PriceError(f"{where}: `{name}` is missing")
    earlier_raw = entry.get("earlier", [])
    if not isinstance(earlier_raw, list):
        raise PriceError(f"{where}: `earlier` must be a list of tables")
    earlier: list[PricePeriod] = []
    for item in earlier_raw:
        if not isinstance(item, Mapping) or "until" not in item:
            raise PriceError(f"{where}: each `earlier` entry needs until, input and output")
        until = _day(item["until"], f"{where}: earlier.until")
        assert until is not None
        earlier.append(PricePeriod(until, Rate(_price(item.get("input"), f"{where}: earlier.input"),
                                               _price(item.get("output"),
                                                      f"{where}: earlier.output"))))
    return ModelPrice(
        key=key,
        rate=Rate(rates["input"], rates["output"]),
        checked=_day(entry.get("checked"), f"{where}: checked"),
        source=source,
        earlier=tuple(earlier),
    )


class PriceTable:
    """Model family → standard base price; dated ids (``-20251001``) resolve to their family."""

    __slots__ = ("_models",)

    def __init__(self, models: Mapping[str, ModelPrice]) -> None:
        self._models: dict[str, ModelPrice] = dict(models)

    @classmethod
    def from_toml(cls, text: str, source: str = SHIPPED) -> PriceTable:
        """Parse a table in the shipped file's format (``[models."id"] input output checked``)."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PriceError(f"price table: {exc}") from exc
        models = data.get("models", {})
        if not isinstance(models, Mapping):
            raise PriceError("price table: [models] must be a table")
        return cls({key: _model_price(key, entry, source) for key, entry in models.items()})

    @classmethod
    def shipped(cls) -> PriceTable:
        """The table shipped with batchtop (``tui/core/prices.toml``)."""
        return _shipped_table()

    @classmethod
    def load(cls, overrides: Mapping[str, Mapping[str, Any]] | None = None) -> PriceTable:
        """The shipped table with the config file's ``[prices."model"]`` entries on top."""
        table = cls.shipped()
        return table.with_overrides(overrides) if overrides else table

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]]) -> PriceTable:
        """A copy where each override replaces (or, given only input or output, amends) a model."""
        models = dict(self._models)
        for key, entry in overrides.items():
            base = self.lookup(str(key))
            price = _model_price(str(key), entry, CONFIG, base)
            models[price.key] = price  # an override's price is today's: no earlier periods
        return PriceTable(models)

    def lookup(self, model: str) -> ModelPrice | None:
        """The price for `model`: exact id, else its family without the date; None if unknown."""
        found = self._models.get(model)
        if found is None:
            dated = _DATED_ID.match(model)
            if dated is not None:
                found = self._models.get(dated.group("family"))
        return found

    def per_million(self, model: str) -> tuple[float, float] | None:
        """Today's standard (input, output) USD per million tokens, for float-based callers."""
        price = self.lookup(model)
        return None if price is None else (float(price.rate.input), float(price.rate.output))

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and self.lookup(model) is not None

    def __iter__(self) -> Iterator[ModelPrice]:
        return iter(self._models[key] for key in sorted(self._models))

    def __len__(self) -> int:
        return len(self._models)


@cache
def _shipped_table() -> PriceTable:
    text = resources.files("tui.core").joinpath("prices.toml").read_text(encoding="utf-8")
    return PriceTable.from_toml(text, SHIPPED)


# ---------------------------------------------------------------------------------------------
# Costs


def cost_at_standard(usage: ModelUsage, rate: Rate) -> Decimal:
    """USD at standard (non-batch) rates, cache writes and reads at their multiples of input."""
    units = (
        usage.input * rate.input
        + usage.cache_creation_5m * rate.input * CACHE_WRITE_5M_FACTOR
        + usage.cache_creation_1h * rate.input * CACHE_WRITE_1H_FACTOR
        + usage.cache_read * rate.input * CACHE_READ_FACTOR
        + usage.output * rate.output
    )
    return units / MILLION


def cost_at_batch(usage: ModelUsage, rate: Rate) -> Decimal:
    """USD at batch rates: 50 % of standard, cache multiples applied first."""
    return cost_at_standard(usage, rate) * BATCH_DISCOUNT


def _uncached(usage: ModelUsage) -> ModelUsage:
    """The same tokens with every cache write and read billed as plain input."""
    return ModelUsage(requests=usage.requests, input=usage.total_input, output=usage.output)


@dataclass(frozen=True, slots=True)
class ModelCost:
    """One model's tokens and what they cost; costs are None when the model has no price."""

    model: str
    usage: ModelUsage
    price_key: str | None = None
    batch_cost: Decimal | None = None
    standard_cost: Decimal | None = None
    uncached_cost: Decimal | None = None  # batch rates, as if nothing had been cached

    @property
    def priced(self) -> bool:
        return self.batch_cost is not None

    @property
    def saving(self) -> Decimal | None:
        """What batching saved against the standard API."""
        if self.batch_cost is None or self.standard_cost is None:
            return None
        return self.standard_cost - self.batch_cost

    @property
    def cache_saving(self) -> Decimal | None:
        """What prompt caching saved (negative when writes were never read back)."""
        if self.batch_cost is None or self.uncached_cost is None:
            return None
        return self.uncached_cost - self.batch_cost

    @property
    def cache_hit_rate(self) -> float | None:
        return self.usage.cache_hit_rate

    def __add__(self, other: ModelCost) -> ModelCost:
        def plus(a: Decimal | None, b: Decimal | None) -> Decimal | None:
            return None if a is None or b is None else a + b

        return ModelCost(
            model=self.model,
            usage=self.usage + other.usage,
            price_key=self.price_key if self.price_key == other.price_key else None,
            batch_cost=plus(self.batch_cost, other.batch_cost),
            standard_cost=plus(self.standard_cost, other.standard_cost),
            uncached_cost=plus(self.uncached_cost, other.uncached_cost),
        )


def _known_sum(values: Iterable[Decimal | None]) -> Decimal:
    return sum((value for value in values if value is not None), Decimal(0))


@dataclass(frozen=True, slots=True)
class BatchCost:
    """Cost of one batch (or a sum of batches): per-model lines and their totals.

    Totals cover priced models only; `unknown_models` lists the rest, whose tokens are still
    counted in `usage` and the cache hit rate.
    """

    lines: tuple[ModelCost, ...] = ()

    @property
    def batch_cost(self) -> Decimal:
        return _known_sum(line.batch_cost for line in self.lines)

    @property
    def standard_cost(self) -> Decimal:
        return _known_sum(line.standard_cost for line in self.lines)

    @property
    def saving(self) -> Decimal:
        return self.standard_cost - self.batch_cost

    @property
    def cache_saving(self) -> Decimal:
        return _known_sum(line.cache_saving for line in self.lines)

    @property
    def usage(self) -> ModelUsage:
        return sum((line.usage for line in self.lines), ModelUsage())

    @property
    def cache_hit_rate(self) -> float | None:
        return self.usage.cache_hit_rate

    @property
    def unknown_models(self) -> tuple[str, ...]:
        return tuple(line.model for line in self.lines if not line.priced)

    @property
    def complete(self) -> bool:
        """Every model with tokens has a price, so the totals are the whole cost."""
        return not self.unknown_models

    @property
    def warnings(self) -> tuple[str, ...]:
        """Plain-text notes: models without a price, results not billed at the batch tier."""
        notes: list[str] = []
        for line in self.lines:
            name = safe_text(line.model)
            if not line.priced:
                notes.append(f"{name}: {PRICE_UNKNOWN} (add it under [prices] in the config file)")
            if line.usage.non_batch_tier:
                notes.append(
                    f"{name}: {line.usage.non_batch_tier:,} of {line.usage.requests:,} results "
                    f"report a service tier other than batch; costs assume batch rates"
                )
        return tuple(notes)

    def label(self) -> str:
        """One cell of text: "$67.50", "$12.30 + price unknown", or "price unknown"."""
        if not self.lines:
            return format_usd(Decimal(0))
        if not any(line.priced for line in self.lines):
            return PRICE_UNKNOWN
        text = format_usd(self.batch_cost)
        return text if self.complete else f"{text} + {PRICE_UNKNOWN}"


def cost_of(totals: UsageTotals | Mapping[str, Mapping[str, Any]], prices: PriceTable,
            at: datetime | None = None) -> BatchCost:
    """Price each model's tokens; `at` (the batch's created_at) picks superseded prices."""
    if not isinstance(totals, UsageTotals):
        totals = UsageTotals.from_mapping(totals)
    lines: list[ModelCost] = []
    for model, usage in totals.items():
        price = prices.lookup(model)
        if price is None:
            lines.append(ModelCost(model, usage))
            continue
        rate = price.rate_at(at)
        lines.append(
            ModelCost(
                model=model,
                usage=usage,
                price_key=price.key,
                batch_cost=cost_at_batch(usage, rate),
                standard_cost=cost_at_standard(usage, rate),
                uncached_cost=cost_at_batch(_uncached(usage), rate),
            )
        )
    return BatchCost(tuple(lines))


def sum_costs(costs: Iterable[BatchCost]) -> BatchCost:
    """One total over many batches (a day, a profile), model by model."""
    merged: dict[str, ModelCost] = {}
    for cost in costs:
        for line in cost.lines:
            previous = merged.get(line.model)
            merged[line.model] = line if previous is None else previous + line
    return BatchCost(tuple(merged[model] for model in sorted(merged)))


# ---------------------------------------------------------------------------------------------
# Estimates before submit or retry


@dataclass(frozen=True, slots=True)
class RequestSize:
    """One request's model, approximate input tokens and its `max_tokens` ceiling."""

    model: str
    input_tokens: int
    max_tokens: int


def request_size(request: Mapping[str, Any]) -> RequestSize:
    """Size a batch request item (``{"custom_id", "params"}``) or its bare ``params``."""
    params = request.get("params", request)
    if not isinstance(params, Mapping):
        params = {}
    tokens = estimate_tokens(params)
    return RequestSize(
        model=str(params.get("model") or ""),
        input_tokens=tokens.input_tokens,
        max_tokens=tokens.output_tokens_max,
    )


@dataclass(frozen=True, slots=True)
class Estimate:
    """A cost estimate before submitting: input from request sizes, output at `max_tokens`.

    It assumes no cache hits and every request using its whole `max_tokens`, so the real
    cost is usually lower. Always shown labelled as an estimate.
    """

    requests: int = 0
    input_tokens: int = 0
    max_output_tokens: int = 0
    input_cost: Decimal = Decimal(0)
    max_output_cost: Decimal = Decimal(0)
    standard_max: Decimal = Decimal(0)
    unknown_models: tuple[str, ...] = ()
    unknown_requests: int = 0
    is_estimate: bool = field(default=True, init=False)

    @property
    def max_cost(self) -> Decimal:
        """Upper bound at batch rates (known models only)."""
        return self.input_cost + self.max_output_cost

    @property
    def complete(self) -> bool:
        return not self.unknown_models

    def label(self) -> str:
        """E.g. "estimate: up to $67.50 at batch rates (input ≈ $30.00, output ≤ $37.50)"."""
        models = ", ".join(safe_text(model) for model in self.unknown_models)
        if self.requests and self.unknown_requests == self.requests:
            return f"estimate: {PRICE_UNKNOWN} for {models}"
        text = (
            f"estimate: up to {format_usd(self.max_cost)} at batch rates "
            f"(input ≈ {format_usd(self.input_cost)}, output ≤ {format_usd(self.max_output_cost)})"
        )
        if self.unknown_models:
            text += f" + {PRICE_UNKNOWN} for {models}"
        return text


def estimate_cost(requests: Iterable[RequestSize | Mapping[str, Any]], prices: PriceTable,
                  at: datetime | None = None) -> Estimate:
    """Estimate a submit or retry from its requests (sizes, items or params)."""
    per_model: dict[str, list[int]] = {}
    for request in requests:
        size = request if isinstance(request, RequestSize) else request_size(request)
        sums = per_model.setdefault(size.model, [0, 0, 0])
        sums[0] += 1
        sums[1] += size.input_tokens
        sums[2] += size.max_tokens
    input_cost = Decimal(0)
    output_cost = Decimal(0)
    standard = Decimal(0)
    unknown: list[str] = []
    unknown_requests = 0
    for model in sorted(per_model):
        count, input_tokens, output_tokens = per_model[model]
        price = prices.lookup(model)
        if price is None:
            unknown.append(model)
            unknown_requests += count
            continue
        rate = price.rate_at(at)
        input_cost += cost_at_batch(ModelUsage(count, input=input_tokens), rate)
        output_cost += cost_at_batch(ModelUsage(count, output=output_tokens), rate)
        standard += cost_at_standard(ModelUsage(count, input_tokens, output_tokens), rate)
    return Estimate(
        requests=sum(sums[0] for sums in per_model.values()),
        input_tokens=sum(sums[1] for sums in per_model.values()),
        max_output_tokens=sum(sums[2] for sums in per_model.values()),
        input_cost=input_cost,
        max_output_cost=output_cost,
        standard_max=standard,
        unknown_models=tuple(unknown),
        unknown_requests=unknown_requests,
    )


# ---------------------------------------------------------------------------------------------
# Formatting


def format_usd(amount: Decimal | None) -> str:
    """"$67.50", "$1,234.00", "<$0.01" for a non-zero fraction of a cent; None → price unknown."""
    if amount is None:
        return PRICE_UNKNOWN
    sign = "-" if amount < 0 else ""
    magnitude = abs(amount)
    if 0 < magnitude < _CENT:
        return f"{sign}<$0.01"
    cents = magnitude.quantize(_CENT, rounding=ROUND_HALF_UP)
    return f"{sign}${cents:,.2f}"


def format_rate(rate: float | None) -> str:
    """A cache hit rate as "70%" (one decimal below 10 %), "—" when there was no input."""
    if rate is None:
        return "—"
    percent = rate * 100
    return f"{percent:.1f}%" if 0 < percent < 10 else f"{percent:.0f}%"
