"""The requests of a batch: submitted ones kept as sent, scenario ones synthesised from a seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, NamedTuple, Protocol

import orjson

from tui.emulator.ids import mix64
from tui.emulator.validation import Invalid, check_params


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """What a fake `tool_use` block needs from a tool definition."""

    name: str
    fields: tuple[tuple[str, str], ...] = ()  # (property, JSON-schema type)


class RequestTraits(NamedTuple):
    """What a fake response needs to know about its request (a tuple: built once per line)."""

    model: str
    max_tokens: int
    input_tokens: int
    output_range: tuple[int, int] = (24, 480)
    tools: tuple[ToolSpec, ...] = ()
    force_tool: bool = False
    cache_ttl: str | None = None  # "5m" or "1h" when cache_control appears in the params
    stop_sequences: tuple[str, ...] = ()
    thinking: bool = False


class RequestSource(Protocol):
    """The requests of one batch, addressed by submission index."""

    def __len__(self) -> int: ...

    def custom_id(self, index: int) -> str: ...

    def invalid(self) -> Mapping[int, Invalid]:
        """Requests whose params fail validation (they end as errored results)."""
        ...

    def traits(self, index: int) -> RequestTraits: ...

    def cache_creator(self) -> int | None:
        """Index of the request that writes the prompt cache (the first that asks for it)."""
        ...


def _tool_spec(tool: Mapping[str, Any]) -> ToolSpec:
    schema = tool.get("input_schema")
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    fields: list[tuple[str, str]] = []
    if isinstance(props, Mapping):
        for name, spec in list(props.items())[:8]:
            kind = spec.get("type") if isinstance(spec, Mapping) else None
            fields.append((str(name), kind if isinstance(kind, str) else "string"))
    return ToolSpec(str(tool.get("name")), tuple(fields))


def traits_from_params(params: Mapping[str, Any]) -> RequestTraits:
    """Traits of valid Messages params (input tokens estimated as characters / 4)."""
    prompt = orjson.dumps([params.get("system"), params.get("messages"), params.get("tools")])
    everything = orjson.dumps(params)
    cache_ttl = None
    if b'"cache_control"' in everything:
        cache_ttl = "1h" if b'"ttl":"1h"' in everything else "5m"
    tools = params.get("tools") or ()
    choice = params.get("tool_choice")
    choice_type = choice.get("type") if isinstance(choice, Mapping) else None
    stops = params.get("stop_sequences")
    thinking = params.get("thinking")
    return RequestTraits(
        model=str(params["model"]),
        max_tokens=int(params["max_tokens"]),
        input_tokens=max(1, len(prompt) // 4),
        tools=() if choice_type == "none" else tuple(
            _tool_spec(tool) for tool in tools if isinstance(tool, Mapping)),
        force_tool=choice_type in ("any", "tool"),
        cache_ttl=cache_ttl,
        stop_sequences=tuple(s for s in stops if isinstance(s, str)) if isinstance(
            stops, list) else (),
        thinking=isinstance(thinking, Mapping) and thinking.get("type") in ("enabled", "adaptive"),
    )


class StoredRequests:
    """Requests exactly as submitted to create; params are validated here, once."""

    def __init__(self, pairs: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        self._ids = [custom_id for custom_id, _ in pairs]
        self._params = [params for _, params in pairs]
        self._invalid: dict[int, Invalid] = {}
        for index, params in enumerate(self._params):
            problem = check_params(params, in_batch=True)
            if problem is not None:
                self._invalid[index] = problem
        self._creator: int | None = -1

    def __len__(self) -> int:
        return len(self._ids)

    def custom_id(self, index: int) -> str:
        return self._ids[index]

    def params(self, index: int) -> Mapping[str, Any]:
        return self._params[index]

    def invalid(self) -> Mapping[int, Invalid]:
        return self._invalid

    def traits(self, index: int) -> RequestTraits:
        return traits_from_params(self._params[index])

    def cache_creator(self) -> int | None:
        if self._creator == -1:
            self._creator = next(
                (i for i in range(len(self._ids)) if i not in self._invalid
                 and b'"cache_control"' in orjson.dumps(self._params[i])), None)
        return self._creator


@dataclass(frozen=True, slots=True)
class Profile:
    """The shape of a synthetic batch's requests."""

    id_format: str = "request-{:05d}"
    models: tuple[str, ...] = ("claude-sonnet-4-6",)
    max_tokens: int = 1024
    input_tokens: tuple[int, int] = (200, 2000)
    output_range: tuple[int, int] = (24, 480)
    tools: tuple[ToolSpec, ...] = ()
    cache_ttl: str | None = None


@cache
def _variants(profile: Profile) -> tuple[RequestTraits, ...]:
    return tuple(RequestTraits(model=model, max_tokens=profile.max_tokens, input_tokens=0,
                               output_range=profile.output_range, tools=profile.tools,
                               cache_ttl=profile.cache_ttl)
                 for model in profile.models)


class SyntheticRequests:
    """Requests derived from a profile and a key on demand, so huge batches cost no memory."""

    def __init__(self, profile: Profile, count: int, key: int) -> None:
        self._profile = profile
        self._count = count
        self._key = key
        self._variants = _variants(profile)

    def __len__(self) -> int:
        return self._count

    def custom_id(self, index: int) -> str:
        return self._profile.id_format.format(index + 1)

    def invalid(self) -> Mapping[int, Invalid]:
        return {}

    def traits(self, index: int) -> RequestTraits:
        h = mix64(self._key ^ index)
        low, high = self._profile.input_tokens
        base = self._variants[h % len(self._variants)]
        return RequestTraits(base.model, base.max_tokens, low + (h >> 16) % (high - low + 1),
                             base.output_range, base.tools, False, base.cache_ttl)

    def cache_creator(self) -> int | None:
        return 0 if self._profile.cache_ttl else None
