"""What a careful server writes without this library: the baselines the decisions are
measured against (benchmarks/inbound.py, benchmarks/outbound.py).

Inbound: a size check, the decoder in a ``try``, then ``isinstance(message, dict)`` and
``isinstance(message.get("type"), str)``. Outbound: the encoder, ``len``, and a comparison
with the limit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec
import orjson

INBOUND_LIMIT = 1_048_576
OUTBOUND_LIMIT = 33_554_432

DECODERS: dict[str, Callable[[str | bytes], Any]] = {
    "json": json.loads,
    "orjson": orjson.loads,
    "msgspec": msgspec.json.decode,
}
ENCODERS: dict[str, Callable[[Any], str | bytes]] = {
    "json": json.dumps,
    "orjson": orjson.dumps,
    "msgspec": msgspec.json.Encoder().encode,
}
DECODE_ERRORS = (ValueError, msgspec.DecodeError)


def hand_inbound(codec: str) -> Callable[[str], dict[str, Any] | None]:
    """The hand-written inbound check with ``codec``'s decoder; ``None`` means "close"."""
    loads = DECODERS[codec]

    def receive(data: str) -> dict[str, Any] | None:
        if len(data) > INBOUND_LIMIT:
            return None
        try:
            message = loads(data)
        except DECODE_ERRORS:
            return None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return None
        return message

    return receive


def hand_outbound(codec: str) -> Callable[[Any], str | bytes | None]:
    """The hand-written outbound check with ``codec``'s encoder; ``None`` means "close"."""
    dumps = ENCODERS[codec]

    def send(message: Any) -> str | bytes | None:
        data = dumps(message)
        if len(data) > OUTBOUND_LIMIT:
            return None
        return data

    return send
