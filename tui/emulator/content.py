"""Deterministic fake responses: messages with realistic text, tool calls and usage, and errors."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

from tui.emulator.ids import base62, message_id, mix64, tool_use_id
from tui.emulator.sources import RequestTraits, ToolSpec
from tui.emulator.validation import Invalid

PLAIN = "plain"
HOSTILE = "hostile"

_SENTENCES = (
    "The invoice lists twelve line items with a subtotal of 4,812.50 EUR and VAT at 19 percent.",
    "Vendor: Nordwind Logistics GmbH, invoice number NW-2024-0883, dated 14 March 2024.",
    "Payment terms are net 30 days; a 2 percent discount applies when paid within 10 days.",
    "The customer reports that the mobile app logs them out after every update.",
    "Sentiment is mostly negative, driven by delivery delays rather than product quality.",
    "Key entities: Acme Corp (buyer), Globex Ltd (supplier), and the Rotterdam warehouse.",
    "The contract renews automatically unless either party gives ninety days' written notice.",
    "Summary: the quarterly report shows revenue up 8 percent while margins narrowed slightly.",
    "Three action items were agreed: migrate the billing job, rotate the keys, and update docs.",
    "The document is classified as a purchase order, not an invoice, because it lacks a total.",
    "Detected language: German. Translation confidence is high for every paragraph.",
    "The ticket should be routed to the payments team with priority P2.",
    "No personally identifiable information was found beyond the company's registered address.",
    "The abstract claims a 14 percent improvement, but the evaluation uses a single dataset.",
    "Shipping address and billing address differ; the shipping address is in Lyon, France.",
    "The reviewer liked the battery life and disliked the glossy screen in direct sunlight.",
    "Clause 7.2 limits liability to the fees paid in the twelve months before the claim.",
    "The meeting notes mention a launch date of 2 June, which conflicts with the roadmap.",
    "Extracted fields: total=1,249.00, currency=USD, due_date=2024-05-01, po_number=PO-77120.",
    "The function fails on empty input because it indexes the first element without a check.",
    "Overall the answer is yes, with the caveat that the data covers only the European market.",
    "Category: hardware fault. Suggested reply: offer a replacement under the warranty.",
    "The email asks to reschedule the audit to the week of 22 April.",
    "Two totals disagree: the header says 980.00 while the line items add up to 1,012.40.",
    "The candidate has six years of backend experience, mostly Go and PostgreSQL.",
    "Risk score: low. The transaction pattern matches the customer's usual monthly spend.",
    "The poem uses an ABAB rhyme scheme and returns to the image of the harbour at the end.",
    "Recommended title: Faster month-end close with automated invoice matching.",
    "The support chat was resolved in four messages; the customer rated it five stars.",
    "Step 3 of the runbook is outdated: the service now restarts through systemd.",
    "The table has 48 rows; 3 rows have a missing tax id and were flagged for review.",
    "This looks like a duplicate of ticket 18812, opened two days earlier by the same user.",
)

# Terminal-hostile text: SGR colour, OSC 52 clipboard write, OSC 0 title change, Rich markup,
# and a bidi override. A monitor must show all of it inert.
HOSTILE_TEXT = (
    "\x1b[31mALERT\x1b[0m \x1b]52;c;cm0gLXJmIH4v\x07 \x1b]0;pwned-title\x07 "
    "[bold]markup[/] [link=https://evil.example]click[/link] \u202eevil.exe\u202c "
)
HOSTILE_ERROR = ("upstream said \x1b[2J\x1b[H[red]fatal[/red] \x1b]52;c;ZWNobyBoaQ==\x07 "
                 "\u202etxt.exe\u202c")

_CORPUS = " ".join(_SENTENCES * 6)
_STARTS: list[int] = []
_ENDS: list[int] = []
_pos = 0
for _sentence in _SENTENCES * 6:
    _STARTS.append(_pos)
    _ENDS.append(_pos + len(_sentence))
    _pos += len(_sentence) + 1
_MAX_TEXT = len(_CORPUS) // 2

_ERROR_KINDS = (
    ("api_error", "Internal server error"),
    ("api_error", "Internal server error"),
    ("overloaded_error", "Overloaded"),
    ("overloaded_error", "Overloaded"),
    ("overloaded_error", "Overloaded"),
    ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit "
     "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for current "
     "usage. Please reduce the prompt length or the maximum tokens requested, or try again "
     "later."),
    ("rate_limit_error", "This request would exceed the rate limit for your organization of "
     "400,000 input tokens per minute. Please try again later."),
    ("invalid_request_error", "prompt is too long: {n} tokens > 200000 maximum"),
    ("invalid_request_error", "messages.0.content.1.image.source.base64: image exceeds 5 MB "
     "maximum: {m} bytes > 5242880 bytes"),
    ("invalid_request_error", "messages: text content blocks must contain non-whitespace text"),
)


def random_error(key: int) -> Invalid:
    """A plausible failure (server, overload, rate limit or invalid request) picked by `key`."""
    h = mix64(key)
    error_type, message = _ERROR_KINDS[h % len(_ERROR_KINDS)]
    if "{" in message:
        message = message.format(n=200_001 + (h >> 12) % 60_000,
                                 m=5_242_881 + (h >> 20) % 4_000_000)
    return Invalid(error_type, message)


def _text(h: int, chars: int) -> str:
    start = _STARTS[h % len(_SENTENCES)]
    chars = min(chars, _MAX_TEXT)
    end = _ENDS[min(len(_ENDS) - 1, bisect_left(_ENDS, start + chars))]
    return _CORPUS[start:end]


def _tool_input(tool: ToolSpec, h: int) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for n, (name, kind) in enumerate(tool.fields):
        pick = mix64(h + n)
        if kind in ("integer", "number"):
            values[name] = pick % 1000
        elif kind == "boolean":
            values[name] = bool(pick & 1)
        elif kind == "array":
            values[name] = [_text(pick, 20)]
        elif kind == "object":
            values[name] = {}
        else:
            values[name] = _text(pick, 30)
    return values


def _usage(traits: RequestTraits, output_tokens: int, cache_role: str | None,
           tier: str) -> dict[str, Any]:
    total = traits.input_tokens
    cached = (total * 4) // 5 if cache_role else 0
    created = cached if cache_role == "create" else 0
    read = cached if cache_role == "read" else 0
    return {
        "input_tokens": total - cached,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": created if traits.cache_ttl != "1h" else 0,
            "ephemeral_1h_input_tokens": created if traits.cache_ttl == "1h" else 0,
        },
        "service_tier": tier,
    }


def message(traits: RequestTraits, key: int, index: int, *, style: str = PLAIN,
            cache_role: str | None = None, tier: str = "batch") -> dict[str, Any]:
    """A complete `Message` object, the same for the same (key, index, traits)."""
    h = mix64(key ^ (index * 0x9E3779B97F4A7C15))
    low, high = traits.output_range
    wanted = low + (h >> 8) % max(1, high - low + 1)
    output_tokens = min(wanted, traits.max_tokens)
    text = _text(h >> 24, output_tokens * 4)
    if wanted > traits.max_tokens:
        text = text[: output_tokens * 4]  # cut mid-sentence, as a max_tokens stop is
    if style == HOSTILE:
        text = HOSTILE_TEXT + text
    content: list[dict[str, Any]] = []
    stop_reason, stop_sequence = "end_turn", None
    if traits.thinking:
        content.append({"type": "thinking", "thinking": _text(h >> 40, 200),
                        "signature": base62(h, 40)})
    if traits.tools and (traits.force_tool or (h >> 32) % 10 < 6):
        tool = traits.tools[(h >> 36) % len(traits.tools)]
        content.append({"type": "text", "text": _text(h >> 28, 60), "citations": None})
        content.append({"type": "tool_use", "id": tool_use_id(key, index), "name": tool.name,
                        "input": _tool_input(tool, h)})
        stop_reason = "tool_use"
    else:
        content.append({"type": "text", "text": text, "citations": None})
        if wanted > traits.max_tokens:
            stop_reason = "max_tokens"
        elif traits.stop_sequences and (h >> 44) % 8 == 0:
            stop_reason, stop_sequence = "stop_sequence", traits.stop_sequences[0]
    return {
        "id": message_id(key, index),
        "type": "message",
        "role": "assistant",
        "model": traits.model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": _usage(traits, output_tokens, cache_role, tier),
    }


def error_envelope(problem: Invalid) -> dict[str, Any]:
    """The `errored` result's error: the full API error envelope (type at `error.error.type`)."""
    return {"type": "error", "error": {"type": problem.error_type, "message": problem.message},
            "request_id": None}
