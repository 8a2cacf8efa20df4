"""Nothing is kept between decisions: memory does not grow when the actions are dropped."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

import pytest

from ws_close_policy import (
    Accept,
    InboundPolicy,
    OutboundPolicy,
    Policy,
    Send,
    decide_inbound,
    decide_outbound,
)

CODECS = ("json", "orjson", "msgspec")
PAD = "x" * (64 * 1024 - 40)  # a message of about 64 KiB


def _growth(decide: Callable[[], object], times: int = 10_000) -> int:
    decide()  # warm up: caches, lazy imports
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(times):
            decide()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("codec", CODECS)
def test_inbound_keeps_nothing(codec: str) -> None:
    policy = Policy(InboundPolicy(codec=codec))
    text = '{"type": "upload", "pad": "' + PAD + '"}'
    assert isinstance(decide_inbound(text, policy), Accept)
    assert _growth(lambda: decide_inbound(text, policy)) < 64 * 1024


@pytest.mark.parametrize("codec", CODECS)
def test_outbound_keeps_nothing(codec: str) -> None:
    policy = Policy(outbound=OutboundPolicy(codec=codec))
    message = {"type": "result", "pad": PAD}
    assert isinstance(decide_outbound(message, policy), Send)
    assert _growth(lambda: decide_outbound(message, policy)) < 64 * 1024


def test_the_measure_can_fail() -> None:
    kept: list[object] = []
    policy = Policy()
    text = '{"type": "upload", "pad": "' + PAD + '"}'
    assert _growth(lambda: kept.append(decide_inbound(text, policy)), times=20) > 64 * 1024
