"""Deterministic ids (batches, messages, tool calls, requests) and the 64-bit mixer behind them."""

from __future__ import annotations

import random
import string
from binascii import b2a_base64

ALPHABET = string.digits + string.ascii_letters
_PAIRS = tuple(a + b for a in ALPHABET for b in ALPHABET)
_PAIRS12 = tuple(_PAIRS[n % len(_PAIRS)] for n in range(4096))
_MASK = (1 << 64) - 1
_ALNUM = bytes.maketrans(b"+/", b"xZ")


def mix64(value: int) -> int:
    """splitmix64 finaliser: a cheap, well-spread hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def _five_pairs(value: int) -> str:
    """Ten base-62 characters from the low 60 bits of `value` (12 bits per pair)."""
    pairs = _PAIRS12
    return (pairs[value & 4095] + pairs[(value >> 12) & 4095] + pairs[(value >> 24) & 4095]
            + pairs[(value >> 36) & 4095] + pairs[(value >> 48) & 4095])


def base62(value: int, width: int) -> str:
    """`width` base-62 characters drawn from `value`, re-mixed every ten characters."""
    out: list[str] = []
    state = value
    for _ in range((width + 9) // 10):
        out.append(_five_pairs(state))
        state = mix64(state)
    return "".join(out)[:width]


def unit(value: int) -> float:
    """Map a 64-bit hash onto [0, 1)."""
    return (value >> 11) * (1.0 / (1 << 53))


class IdFactory:
    """Batch and request ids from seeded streams, so a seed reproduces a whole run."""

    def __init__(self, seed: int) -> None:
        self._batches = random.Random(f"batch-ids:{seed}")
        self._requests = random.Random(f"request-ids:{seed}")

    def batch_id(self) -> str:
        return "msgbatch_01" + base62(self._batches.getrandbits(136), 22)

    def request_id(self) -> str:
        return "req_011C" + base62(self._requests.getrandbits(128), 20)


def _id_body(value: int) -> str:
    """22 alphanumeric characters from one 64-bit hash (base64 with `+/` swapped: results
    write one id per line, so this is a hot path)."""
    second = (value * 0x9E3779B97F4A7C15) & _MASK
    raw = ((value << 64) | second).to_bytes(16, "big")
    return b2a_base64(raw, newline=False)[:22].translate(_ALNUM).decode()


def message_id(batch_key: int, index: int) -> str:
    """`msg_01…` (24 characters after the prefix), stable for a batch key and request index."""
    return "msg_01" + _id_body(mix64(batch_key ^ (index * 0x2545F4914F6CDD1D)))


def tool_use_id(batch_key: int, index: int) -> str:
    return "toolu_01" + _id_body(mix64(batch_key + index * 0x9E3779B1))
