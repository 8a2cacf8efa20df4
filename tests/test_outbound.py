"""decide_outbound: measured once, 1009 above the hard limit, degrade tried once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ws_close_policy import (
    Close,
    OutboundPolicy,
    Policy,
    Profile,
    Send,
    Violation,
    decide_outbound,
)
from ws_close_policy.codes import is_sendable

HARD = 33_554_432
CODECS = ("json", "orjson", "msgspec")


def _message_of_size(size: int) -> dict[str, Any]:
    """A message whose compact JSON is exactly ``size`` bytes."""
    base = {"type": "job_complete", "payload": ""}
    overhead = len(json.dumps(base, separators=(",", ":")))
    return {"type": "job_complete", "payload": "x" * (size - overhead)}


def test_review_payload_over_32_mib_closes_1009_under_seed() -> None:
    result = decide_outbound(_message_of_size(HARD + 1))
    assert isinstance(result, Close)
    assert result.code == 1009
    assert result.reason == "Message too large"
    assert result.violation is Violation.OUTBOUND_TOO_BIG
    assert result.detail is not None
    assert str(HARD + 1) in result.detail
    assert str(HARD + 1) not in result.reason


def test_review_payload_over_32_mib_closes_1011_under_rfc_strict() -> None:
    result = decide_outbound(_message_of_size(HARD + 1), Policy(profile=Profile.RFC_STRICT))
    assert isinstance(result, Close)
    assert result.code == 1011


def test_exactly_32_mib_is_sent_and_large() -> None:
    result = decide_outbound(_message_of_size(HARD))
    assert isinstance(result, Send)
    assert result.size == HARD
    assert result.large


def test_between_soft_and_hard_limit_is_sent_large() -> None:
    result = decide_outbound(_message_of_size(2_000_000))
    assert isinstance(result, Send)
    assert result.large
    assert result.text
    small = decide_outbound(_message_of_size(1_000_000))
    assert isinstance(small, Send)
    assert not small.large  # exactly at the soft limit is not "above" it


@pytest.mark.parametrize("codec", CODECS)
def test_each_codec_measures_utf8_bytes(codec: str) -> None:
    policy = Policy(outbound=OutboundPolicy(codec=codec))
    result = decide_outbound({"type": "x", "v": "é😀"}, policy)
    assert isinstance(result, Send)
    data = result.data.encode() if isinstance(result.data, str) else result.data
    assert result.size == len(data)
    assert json.loads(data) == {"type": "x", "v": "é😀"}
    assert result.text


def test_serialised_once_and_sent_as_is() -> None:
    text = '{"type":"already"}'
    result = decide_outbound(text)
    assert isinstance(result, Send)
    assert result.data is text
    assert result.size == len(text)
    assert result.text
    raw = b"\x00\x01"
    binary = decide_outbound(raw)
    assert isinstance(binary, Send)
    assert binary.data == raw
    assert binary.text is False
    utf8 = decide_outbound("é")
    assert isinstance(utf8, Send)
    assert utf8.size == 2


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("message", [{"v": object()}, {"v": 1j}], ids=["object", "complex"])
def test_unserialisable_closes_1011_with_generic_reason(codec: str, message: Any) -> None:
    result = decide_outbound(message, Policy(outbound=OutboundPolicy(codec=codec)))
    assert isinstance(result, Close)
    assert result.code == 1011
    assert result.reason == "Internal error"
    assert result.violation is Violation.INTERNAL
    assert result.detail


def test_nan_refused_by_json_written_as_null_by_fast_codecs() -> None:
    refused = decide_outbound({"v": float("nan")})
    assert isinstance(refused, Close)
    assert refused.code == 1011
    for codec in ("orjson", "msgspec"):
        sent = decide_outbound({"v": float("inf")}, Policy(outbound=OutboundPolicy(codec=codec)))
        assert isinstance(sent, Send)
        assert sent.data == b'{"v":null}'


def test_cycle_closes_1011() -> None:
    cycle: dict[str, Any] = {"type": "x"}
    cycle["self"] = cycle
    result = decide_outbound(cycle)
    assert isinstance(result, Close)
    assert result.code == 1011


def test_lone_surrogate_text_cannot_be_sent() -> None:
    result = decide_outbound("\ud800")
    assert isinstance(result, Close)
    assert result.violation is Violation.INTERNAL


def _policy(degrade: Any) -> Policy:
    return Policy(outbound=OutboundPolicy(max_bytes=100, warn_bytes=50, degrade=degrade))


def test_degrade_sends_summary_once() -> None:
    calls: list[Any] = []

    def summary(message: dict[str, Any]) -> dict[str, Any]:
        calls.append(message)
        return {"type": message["type"], "summary": True}

    big = {"type": "job_complete", "rows": ["x" * 200]}
    result = decide_outbound(big, _policy(summary))
    assert isinstance(result, Send)
    assert result.degraded
    assert json.loads(result.data) == {"type": "job_complete", "summary": True}
    assert calls == [big]


@pytest.mark.parametrize(
    ("degrade", "note"),
    [
        (lambda m: None, "no summary"),
        (lambda m: {"type": "still", "rows": "y" * 500}, "summary still"),
        (lambda m: 1 / 0, "degrade raised ZeroDivisionError"),
    ],
)
def test_degrade_failures_close_1009(degrade: Any, note: str) -> None:
    result = decide_outbound({"type": "big", "rows": "x" * 200}, _policy(degrade))
    assert isinstance(result, Close)
    assert result.code == 1009
    assert result.detail is not None
    assert note in result.detail


def test_degrade_to_unserialisable_closes_1011() -> None:
    result = decide_outbound({"rows": "x" * 200}, _policy(lambda m: {"v": object()}))
    assert isinstance(result, Close)
    assert result.code == 1011


def test_degrade_not_called_when_message_fits() -> None:
    result = decide_outbound({"type": "ok"}, _policy(lambda m: 1 / 0))
    assert isinstance(result, Send)
    assert not result.degraded


@pytest.mark.parametrize(
    ("kwargs", "name", "error"),
    [
        ({"max_bytes": 0}, "max_bytes", ValueError),
        ({"max_bytes": 2**63}, "max_bytes", ValueError),
        ({"max_bytes": "1 MB"}, "max_bytes", TypeError),
        ({"warn_bytes": -5}, "warn_bytes", ValueError),
        ({"max_bytes": 10, "warn_bytes": 20}, "warn_bytes", ValueError),
        ({"codec": "raw"}, "codec", ValueError),
        ({"codec": "xml"}, "codec", ValueError),
        ({"codec": 3}, "codec", TypeError),
        ({"degrade": "summary"}, "degrade", TypeError),
    ],
)
def test_outbound_policy_validation(
    kwargs: dict[str, Any], name: str, error: type[Exception]
) -> None:
    with pytest.raises(error, match=name):
        OutboundPolicy(**kwargs)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4),
    max_leaves=15,
)


@given(json_values, st.sampled_from(CODECS), st.integers(1, 200))
def test_any_message_gives_send_or_sendable_close(message: Any, codec: str, limit: int) -> None:
    policy = Policy(outbound=OutboundPolicy(codec=codec, max_bytes=limit, warn_bytes=limit))
    result = decide_outbound(message, policy)
    if isinstance(result, Close):
        assert is_sendable(result.code)
        assert len(result.reason.encode()) <= 123
        assert result.violation in (Violation.OUTBOUND_TOO_BIG, Violation.INTERNAL)
    else:
        data = result.data.encode() if isinstance(result.data, str) else result.data
        assert result.size == len(data) <= limit


class CountingCodec:
    """The stdlib encoder, counting its calls."""

    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def decode(self, data: str | bytes) -> Any:
        return json.loads(data)

    def encode(self, message: Any) -> str:
        self.calls += 1
        return json.dumps(message)


@pytest.mark.parametrize("degrade", [None, lambda m: {"type": "summary"}])
def test_oversized_message_is_serialised_once(degrade: Any) -> None:
    codec = CountingCodec()
    policy = Policy(
        outbound=OutboundPolicy(max_bytes=100, warn_bytes=50, codec=codec, degrade=degrade)
    )
    decide_outbound({"type": "big", "rows": "x" * 200}, policy)
    # One encode for the message, plus one for its summary when there is one.
    assert codec.calls == (1 if degrade is None else 2)


class BrokenCodec:
    """A custom codec whose output is not what the protocol promises."""

    name = "broken"

    def __init__(self, output: Any) -> None:
        self.output = output

    def decode(self, data: str | bytes) -> Any:
        return json.loads(data)

    def encode(self, message: Any) -> Any:
        return self.output


@pytest.mark.parametrize("output", [b"\xff\xfe", 42, None, "\ud800"])
def test_a_broken_codec_closes_1011_never_raises(output: Any) -> None:
    policy = Policy(outbound=OutboundPolicy(codec=BrokenCodec(output)))
    result = decide_outbound({"type": "x"}, policy)
    assert isinstance(result, Close)
    assert result.code == 1011
    assert result.violation is Violation.INTERNAL
    assert result.detail


def test_a_smaller_hard_limit_takes_the_soft_limit_with_it() -> None:
    policy = OutboundPolicy(max_bytes=64 * 1024)
    assert policy.warn_bytes == 64 * 1024
    with pytest.raises(ValueError, match="warn_bytes"):
        OutboundPolicy(max_bytes=1000, warn_bytes=2000)


@pytest.mark.parametrize("codec", CODECS)
def test_a_lone_surrogate_is_never_sent(codec: str) -> None:
    # The inbound side refuses a lone surrogate escape: every codec refuses to send one.
    result = decide_outbound({"x": "\ud800"}, Policy(outbound=OutboundPolicy(codec=codec)))
    assert isinstance(result, Close)
    assert result.violation is Violation.INTERNAL


# The table in docs/architecture.md: where the codecs differ outbound.
OUTBOUND_DIFFERENCES: list[tuple[Any, dict[str, bytes | None]]] = [
    ({"v": float("nan")}, {"json": None, "orjson": b'{"v":null}', "msgspec": b'{"v":null}'}),
    (
        {"v": 2**70},
        {
            "json": b'{"v":1180591620717411303424}',
            "orjson": None,
            "msgspec": b'{"v":1180591620717411303424}',
        },
    ),
    ({1: 2}, {"json": b'{"1":2}', "orjson": None, "msgspec": b'{"1":2}'}),
]


@pytest.mark.parametrize(("message", "expected"), OUTBOUND_DIFFERENCES)
@pytest.mark.parametrize("codec", CODECS)
def test_documented_outbound_differences(
    codec: str, message: Any, expected: dict[str, bytes | None]
) -> None:
    result = decide_outbound(message, Policy(outbound=OutboundPolicy(codec=codec)))
    if expected[codec] is None:
        assert isinstance(result, Close)
        assert result.code == 1011
    else:
        assert isinstance(result, Send)
        data = result.data.encode() if isinstance(result.data, str) else result.data
        assert data == expected[codec]
