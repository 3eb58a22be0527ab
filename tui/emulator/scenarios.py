"""Named workspaces to start from: `empty`, `demo`, `large:N` (one big ended batch), `many:N`."""

from __future__ import annotations

from dataclasses import dataclass, field

from tui.emulator.content import HOSTILE, HOSTILE_ERROR, PLAIN
from tui.emulator.engine import Engine
from tui.emulator.ids import mix64
from tui.emulator.model import DAY, default_duration
from tui.emulator.sources import Profile, SyntheticRequests, ToolSpec
from tui.emulator.validation import Invalid

HOUR = 3600.0
MINUTE = 60.0
SONNET, HAIKU, OPUS = "claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-6"

INVOICES = Profile("invoice-{:05d}-extraction", (SONNET,), 1024, (900, 2600), (60, 260),
                   tools=(ToolSpec("record_invoice", (("vendor", "string"), ("total", "number"),
                                                      ("currency", "string"),
                                                      ("due_date", "string"))),))
SUMMARIES = Profile("doc-{:05d}-summary", (HAIKU,), 512, (2000, 9000), (80, 400), cache_ttl="5m")
TICKETS = Profile("ticket-{:05d}-triage", (HAIKU,), 256, (150, 700), (20, 120))
REVIEWS = Profile("review-{:05d}-sentiment", (SONNET, HAIKU), 300, (100, 600), (20, 160))
CONTRACTS = Profile("contract-{:04d}-clauses", (OPUS,), 4096, (6000, 30000), (300, 1500),
                    cache_ttl="1h")
MODERATION = Profile("chat-{:05d}-moderation", (SONNET,), 400, (120, 500), (30, 120))
LARGE = Profile("item-{:06d}-classify", (SONNET, HAIKU), 1024, (300, 1500), (110, 180))
PROFILES = (INVOICES, SUMMARIES, TICKETS, REVIEWS, CONTRACTS)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    size: int = 0


def parse_scenario(text: str) -> Scenario:
    """`demo`, `empty`, `large:N` or `many:N`; raises ValueError otherwise."""
    name, _, size = text.strip().partition(":")
    if name in ("demo", "empty") and not size:
        return Scenario(name)
    if name in ("large", "many"):
        if not size.isdigit() or not 1 <= int(size) <= 1_000_000:
            raise ValueError(f"scenario {name}:N needs N between 1 and 1000000, got {size!r}")
        return Scenario(name, int(size))
    raise ValueError(f"unknown scenario {text!r} (demo, empty, large:N, many:N)")


def load_scenario(engine: Engine, text: str) -> None:
    """Fill `engine` with the named scenario, relative to its clock's current time."""
    scenario = parse_scenario(text)
    if scenario.name == "demo":
        _demo(engine)
    elif scenario.name == "large":
        _large(engine, scenario.size)
    elif scenario.name == "many":
        _many(engine, scenario.size)


@dataclass(frozen=True, slots=True)
class Planned:
    """One scenario batch: its requests' profile, size, age and fate."""

    profile: Profile
    count: int
    age: float  # seconds before the scenario starts
    duration: float | None = None
    error_rate: float | None = None
    style: str = PLAIN
    cancel_after: float | None = None  # seconds after creation
    cancel_seconds: float | None = None
    label: str | None = None
    forced: dict[int, Invalid] = field(default_factory=dict)


def _add(engine: Engine, plan: Planned, now: float) -> None:
    key = mix64(engine.seed * 7919 + len(engine) + 1)
    created = now - plan.age
    cancel = None if plan.cancel_after is None else created + plan.cancel_after
    engine.add_batch(
        SyntheticRequests(plan.profile, plan.count, key), created=created, key=key,
        duration=plan.duration, error_rate=plan.error_rate, style=plan.style,
        cancel_initiated=cancel if cancel is not None and cancel <= now else None,
        cancel_seconds=plan.cancel_seconds, label=plan.label, forced=plan.forced)


# The demo workspace, oldest first: archived, ended clean / with failures / with expired or
# canceled requests, a hostile-text batch, canceling, young and old in progress.
DEMO: tuple[Planned, ...] = (
    Planned(CONTRACTS, 150, 40 * DAY),
    Planned(TICKETS, 900, 31 * DAY),
    Planned(SUMMARIES, 20_000, 26 * DAY, error_rate=0.0),
    Planned(INVOICES, 1, 12 * DAY, error_rate=0.0),
    Planned(SUMMARIES, 10_000, 30 * HOUR, duration=40 * HOUR),
    Planned(CONTRACTS, 60, 27 * HOUR, error_rate=0.0),
    Planned(SUMMARIES, 40_000, 9 * HOUR, duration=20 * HOUR),
    Planned(REVIEWS, 2_000, 7 * HOUR, error_rate=0.2),
    Planned(TICKETS, 5_000, 5 * HOUR),
    Planned(INVOICES, 4_000, 3 * HOUR, duration=HOUR, cancel_after=25 * MINUTE),
    Planned(INVOICES, 250, 2 * HOUR, error_rate=0.0),
    Planned(MODERATION, 12, 50 * MINUTE, error_rate=0.0, style=HOSTILE, label="hostile",
            forced={4: Invalid("api_error", HOSTILE_ERROR)}),
    Planned(REVIEWS, 3_000, 20 * MINUTE, duration=HOUR, cancel_after=20 * MINUTE - 10,
            cancel_seconds=120.0),
    Planned(TICKETS, 8_000, 6 * MINUTE, duration=2 * HOUR),
    Planned(INVOICES, 1_200, 25),
)


def _demo(engine: Engine) -> None:
    now = engine.clock.time()
    for plan in DEMO:
        _add(engine, plan, now)
    engine.arrivals = DemoArrivals(now, engine.seed)


class DemoArrivals:
    """A new batch about every minute of emulator time, materialised when someone looks."""

    MAX_CATCH_UP = 50

    def __init__(self, start: float, seed: int) -> None:
        self._seed = seed
        self._serial = 0
        self._next = start + self._gap()

    def _gap(self) -> float:
        return 45.0 + mix64(self._seed * 31 + self._serial) % 30

    def __call__(self, engine: Engine, now: float) -> None:
        due: list[tuple[int, float]] = []
        while self._next <= now:
            due.append((self._serial, self._next))
            self._serial += 1
            self._next += self._gap()
        for serial, created in due[-self.MAX_CATCH_UP:]:
            h = mix64(self._seed + serial)
            profile = PROFILES[h % len(PROFILES)]
            _add(engine, Planned(profile, 20 + (h >> 8) % 3000, now - created), now)


def _large(engine: Engine, count: int) -> None:
    age = default_duration(count) + 10 * MINUTE
    _add(engine, Planned(LARGE, count, age, label="large"), engine.clock.time())


def _many(engine: Engine, count: int) -> None:
    now = engine.clock.time()
    running = min(3, count)
    span = 29 * DAY
    for k in range(count - running):
        h = mix64(engine.seed * 131 + k)
        age = span - span * (k + 0.5) / (count - running) + h % 600
        size = 1 + (h >> 12) % 300
        cancel_after = default_duration(size) / 2 if k % 17 == 5 else None
        _add(engine, Planned(PROFILES[(h >> 40) % len(PROFILES)], size, age,
                             cancel_after=cancel_after), now)
    for k in range(running):
        _add(engine, Planned(TICKETS, 50 + 25 * k, 5.0 * (running - k), duration=6 * HOUR), now)
