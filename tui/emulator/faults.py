"""Fault injection: the `--faults` spec, and seeded decisions of which response misbehaves."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

STATUS_FAULTS = (429, 500, 502, 503, 504, 529)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s)?$")


@dataclass(frozen=True, slots=True)
class Faults:
    """What to break, and how often. The default breaks nothing."""

    statuses: tuple[tuple[int, float], ...] = ()  # (HTTP status, probability per request)
    retry_after: float = 1.0  # seconds, sent with every injected 429
    slow: float = 0.0  # seconds added before every response
    cut: float = 0.0  # probability that a results stream is cut partway
    malformed: int = 0  # malformed lines injected into every results stream
    unknown: int = 0  # results replaced by an unknown result type
    notfound_after_create: float = 0.0  # emulator seconds of 404 on retrieve after create

    @property
    def active(self) -> bool:
        return bool(self.statuses or self.slow or self.cut or self.malformed or self.unknown
                    or self.notfound_after_create)


def _probability(key: str, value: str) -> float:
    number = float(value)
    if not 0.0 <= number <= 1.0:
        raise ValueError(f"fault {key}: probability must be within 0..1, got {value}")
    return number


def _count(key: str, value: str) -> int:
    if not value.isdigit():
        raise ValueError(f"fault {key}: expected a whole number, got {value!r}")
    return int(value)


def _seconds(key: str, value: str) -> float:
    match = _DURATION.match(value.strip())
    if not match:
        raise ValueError(f"fault {key}: expected a duration like 0.5s or 200ms, got {value!r}")
    number = float(match.group(1))
    return number / 1000.0 if match.group(2) == "ms" else number


def parse_faults(spec: str | None) -> Faults:
    """Parse e.g. ``429=0.1,529=0.05,500=0.02,slow=0.5s,cut=0.3,malformed=1``."""
    if not spec or not spec.strip():
        return Faults()
    statuses: list[tuple[int, float]] = []
    values: dict[str, float | int] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip().lower().replace("-", "_"), value.strip()
        if not sep or not value:
            raise ValueError(f"fault {part.strip()!r}: expected NAME=VALUE")
        if key.isdigit():
            if int(key) not in STATUS_FAULTS:
                raise ValueError(f"fault {key}: status must be one of "
                                 + ", ".join(map(str, STATUS_FAULTS)))
            statuses.append((int(key), _probability(key, value)))
        elif key == "cut":
            values[key] = _probability(key, value)
        elif key in ("malformed", "unknown"):
            values[key] = _count(key, value)
        elif key in ("slow", "retry_after", "notfound_after_create"):
            values[key] = _seconds(key, value)
        else:
            raise ValueError(f"unknown fault {key!r} (known: {', '.join(map(str, STATUS_FAULTS))},"
                             " slow, cut, malformed, unknown, retry-after, notfound_after_create)")
    return Faults(
        statuses=tuple(statuses),
        retry_after=float(values.get("retry_after", 1.0)),
        slow=float(values.get("slow", 0.0)),
        cut=float(values.get("cut", 0.0)),
        malformed=int(values.get("malformed", 0)),
        unknown=int(values.get("unknown", 0)),
        notfound_after_create=float(values.get("notfound_after_create", 0.0)),
    )


class FaultDice:
    """Seeded decisions, consumed in request order, so a seed replays the same misbehaviour."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"faults:{seed}")

    def status(self, faults: Faults) -> int | None:
        """The status to fail this request with, or None."""
        for status, probability in faults.statuses:
            if probability and self._rng.random() < probability:
                return status
        return None

    def cut_fraction(self, faults: Faults) -> float | None:
        """Where to cut this results stream (a fraction of its expected size), or None."""
        if faults.cut and self._rng.random() < faults.cut:
            return 0.05 + 0.9 * self._rng.random()
        return None

    def ranks(self, how_many: int, total: int) -> frozenset[int]:
        """Distinct positions in a results stream for injected lines."""
        if how_many <= 0 or total <= 0:
            return frozenset()
        return frozenset(self._rng.sample(range(total), min(how_many, total)))
