"""decide_inbound: the review's cases, the order of the checks, and every codec alike."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from ws_close_policy import (
    Accept,
    Close,
    InboundPolicy,
    OutboundPolicy,
    Policy,
    Profile,
    Violation,
    decide_inbound,
)
from ws_close_policy._jsontext import has_lone_surrogate_escape, nests_deeper_than
from ws_close_policy.codecs import JsonCodec
from ws_close_policy.codes import is_sendable

from .strategies import fuzz_text, messages

CODECS = ("json", "orjson", "msgspec")
POLICIES = {name: Policy(InboundPolicy(codec=name, accept_binary=True)) for name in CODECS}

REVIEW_CASES = ['{"invalid": "json"', "null", "{}", '{"type": 123}', '"not an object"']


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("data", REVIEW_CASES)
def test_review_cases_close_1002_under_seed(codec: str, data: str) -> None:
    result = decide_inbound(data, Policy(InboundPolicy(codec=codec)))
    assert isinstance(result, Close)
    assert result.code == 1002
    assert result.reason


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("data", REVIEW_CASES)
def test_review_cases_close_1008_under_rfc_strict(codec: str, data: str) -> None:
    result = decide_inbound(data, Policy(InboundPolicy(codec=codec), profile=Profile.RFC_STRICT))
    assert isinstance(result, Close)
    assert result.code == 1008


@pytest.mark.parametrize(
    ("data", "violation"),
    [
        ('{"invalid": "json"', Violation.INVALID_JSON),
        ("null", Violation.NOT_AN_OBJECT),
        ("[]", Violation.NOT_AN_OBJECT),
        ("42", Violation.NOT_AN_OBJECT),
        ('"not an object"', Violation.NOT_AN_OBJECT),
        ("{}", Violation.MISSING_TYPE),
        ('{"type": 123}', Violation.MISSING_TYPE),
        ('{"type": ""}', Violation.MISSING_TYPE),
        ('{"type": null}', Violation.MISSING_TYPE),
        ('{"type": ["a"]}', Violation.MISSING_TYPE),
        ("NaN", Violation.INVALID_JSON),
        ('{"type": "x", "v": Infinity}', Violation.INVALID_JSON),
        ('{"type": "x", "v": -Infinity}', Violation.INVALID_JSON),
        ('{"type": "x", "v": 1e400}', Violation.INVALID_JSON),
        ('{"type": "x", "v": "\\ud800"}', Violation.INVALID_JSON),
        ('{"type": "x", "\\udc00": 1}', Violation.INVALID_JSON),
        ('{"type": "x", "v": ' + "9" * 5000 + "}", Violation.INVALID_JSON),
        ('{"type": "x"} trailing', Violation.INVALID_JSON),
        ("\ufeff{}", Violation.INVALID_JSON),
        ("", Violation.INVALID_JSON),
        ("[" * 100_000, Violation.INVALID_JSON),
        ('{"type": "x", "a": ' + "[" * 65 + "]" * 65 + "}", Violation.INVALID_JSON),
    ],
)
@pytest.mark.parametrize("codec", CODECS)
def test_violations(codec: str, data: str, violation: Violation) -> None:
    result = decide_inbound(data, POLICIES[codec])
    assert isinstance(result, Close), result
    assert result.violation is violation
    assert result.code == Profile.ACTIONABLE.close_for_violation(violation).code


@pytest.mark.parametrize("codec", CODECS)
def test_accepts_valid_messages(codec: str) -> None:
    policy = POLICIES[codec]
    assert decide_inbound('{"type": "ping"}', policy) == Accept({"type": "ping"}, "ping", 16)
    # A surrogate *pair* is a valid escape, big integers and 63 levels of nesting are fine.
    message = '{"type": "x", "e": "\\ud83d\\ude00", "n": 12345678901234567890, "d": '
    message += "[" * 63 + "]" * 63 + "}"
    result = decide_inbound(message, policy)
    assert isinstance(result, Accept)
    assert result.message["e"] == "😀"
    assert result.message["n"] == 12345678901234567890


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("limit", [1, 2, 64, 256])
def test_depth_limit_is_exact(codec: str, limit: int) -> None:
    policy = Policy(InboundPolicy(codec=codec, max_depth=limit))

    def nested(depth: int) -> str:  # `depth` levels, the outer object included
        inner = depth - 1
        return '{"type": "x", "d": ' + ("[" * inner + "]" * inner or "0") + "}"

    assert isinstance(decide_inbound(nested(limit), policy), Accept)
    refused = decide_inbound(nested(limit + 1), policy)
    assert isinstance(refused, Close)
    assert refused.violation is Violation.INVALID_JSON
    assert refused.detail == f"nesting deeper than {limit}"


HIDDEN_BY_A_REPEATED_KEY = {
    "too deep": '{"type": "a", "x": ' + "[" * 64 + "]" * 64 + ', "x": 0}',
    "not finite": '{"type": "a", "x": 1e400, "x": 0}',
    "lone surrogate": '{"type": "a", "x": "\\ud800", "x": 0}',
    "NaN": '{"type": "a", "x": NaN, "x": 0}',
}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("case", list(HIDDEN_BY_A_REPEATED_KEY))
def test_a_repeated_key_hides_no_violation(codec: str, case: str) -> None:
    result = decide_inbound(HIDDEN_BY_A_REPEATED_KEY[case], POLICIES[codec])
    assert isinstance(result, Close), result
    assert result.violation is Violation.INVALID_JSON


class ShoutingJson(JsonCodec):
    """A subclass of a built-in codec: its overrides must run."""

    def decode(self, data: str | bytes) -> Any:
        message = super().decode(data)
        if isinstance(message, dict) and isinstance(message.get("type"), str):
            message["type"] = message["type"].upper()
        return message


def test_codec_subclass_overrides_are_honoured() -> None:
    result = decide_inbound('{"type": "ping"}', Policy(InboundPolicy(codec=ShoutingJson())))
    assert result == Accept({"type": "PING"}, "PING", 16)


@pytest.mark.parametrize("codec", CODECS)
def test_integers_beyond_doubles_accepted_alike(codec: str) -> None:
    # 400 digits: beyond a double (orjson refuses it natively) but within Python's limit.
    result = decide_inbound('{"type": "x", "n": ' + "7" * 400 + "}", POLICIES[codec])
    assert isinstance(result, Accept)
    assert result.message["n"] == int("7" * 400)


def test_size_limit_is_inclusive() -> None:
    policy = Policy(InboundPolicy(max_bytes=20))
    exact = '{"type": "ab' + "c" * 6 + '"}'
    assert len(exact) == 20
    assert isinstance(decide_inbound(exact, policy), Accept)
    over = decide_inbound(exact[:-2] + 'c"}', policy)
    assert isinstance(over, Close)
    assert over.violation is Violation.TOO_BIG
    assert over.code == 1009


def test_size_counts_utf8_bytes_not_characters() -> None:
    policy = Policy(InboundPolicy(max_bytes=20))
    # 15 characters, 21 bytes: too big even though len() fits.
    data = '{"type":"' + "é" * 5 + '"}'
    assert len(data) == 16
    assert len(data.encode()) == 21
    result = decide_inbound(data, policy)
    assert isinstance(result, Close)
    assert result.violation is Violation.TOO_BIG


def test_size_checked_before_anything_else() -> None:
    policy = Policy(InboundPolicy(max_bytes=8))
    for data in ("not json at all", b"\xff\xfe binary junk", "\ud800" * 9):
        result = decide_inbound(data, policy)
        assert isinstance(result, Close)
        assert result.violation is Violation.TOO_BIG


def test_huge_string_rejected_without_encoding() -> None:
    big = "é" * (64 * 1024 * 1024)
    result = decide_inbound(big)
    assert isinstance(result, Close)
    assert result.violation is Violation.TOO_BIG


def test_binary_refused_by_default_then_utf8_checked() -> None:
    result = decide_inbound(b'{"type": "ping"}')
    assert isinstance(result, Close)
    assert result.violation is Violation.BINARY_UNSUPPORTED
    assert result.code == 1003
    policy = Policy(InboundPolicy(accept_binary=True))
    assert decide_inbound(b'{"type": "ping"}', policy) == Accept({"type": "ping"}, "ping", 16)
    from_bytearray = decide_inbound(bytearray(b'{"type": "ping"}'), policy)  # type: ignore[arg-type]
    assert from_bytearray == Accept({"type": "ping"}, "ping", 16)
    bad = decide_inbound(b'{"type": "\xff"}', policy)
    assert isinstance(bad, Close)
    assert bad.violation is Violation.INVALID_UTF8
    assert bad.code == 1007


def test_lone_surrogate_in_str_is_invalid_utf8() -> None:
    result = decide_inbound('{"type": "\ud800"}')
    assert isinstance(result, Close)
    assert result.violation is Violation.INVALID_UTF8


def test_allowed_types_and_validators() -> None:
    policy = Policy(
        InboundPolicy(
            allowed_types={"ping", "cancel", "refresh_token"},
            validators={
                "refresh_token": lambda m: isinstance(m.get("token"), str),
                "cancel": lambda m: m["reason"] != "x",  # raises KeyError without a reason
            },
        )
    )
    assert isinstance(decide_inbound('{"type": "ping"}', policy), Accept)
    unknown = decide_inbound('{"type": "pong"}', policy)
    assert isinstance(unknown, Close)
    assert unknown.violation is Violation.UNKNOWN_TYPE
    invalid = decide_inbound('{"type": "refresh_token", "token": 5}', policy)
    assert isinstance(invalid, Close)
    assert invalid.violation is Violation.INVALID_MESSAGE
    raised = decide_inbound('{"type": "cancel"}', policy)
    assert isinstance(raised, Close)
    assert raised.violation is Violation.INVALID_MESSAGE
    assert raised.detail is not None
    assert "KeyError" in raised.detail
    ok = decide_inbound('{"type": "refresh_token", "token": "t"}', policy)
    assert ok == Accept({"type": "refresh_token", "token": "t"}, "refresh_token", 39)


def test_custom_type_field() -> None:
    policy = Policy(InboundPolicy(type_field="op"))
    assert decide_inbound('{"op": "subscribe"}', policy) == Accept(
        {"op": "subscribe"}, "subscribe", 19
    )


@pytest.mark.parametrize("codec", CODECS)
def test_duplicate_keys_rejectable(codec: str) -> None:
    data = '{"type": "a", "type": "b"}'
    assert isinstance(decide_inbound(data, POLICIES[codec]), Accept)
    strict = Policy(InboundPolicy(codec=codec, reject_duplicate_keys=True))
    result = decide_inbound(data, strict)
    assert isinstance(result, Close)
    assert result.violation is Violation.INVALID_JSON
    nested = decide_inbound('{"type": "a", "o": {"k": 1, "k": 2}}', strict)
    assert isinstance(nested, Close)
    assert isinstance(decide_inbound('{"type": "a", "o": {"k": 1}}', strict), Accept)


def test_raw_codec_passes_data_through() -> None:
    policy = Policy(InboundPolicy(codec="raw", accept_binary=True, max_bytes=10))
    assert decide_inbound("not json", policy) == Accept("not json", None, 8)
    assert decide_inbound(b"\xff\x00", policy) == Accept(b"\xff\x00", None, 2)
    too_big = decide_inbound("x" * 11, policy)
    assert isinstance(too_big, Close)
    assert too_big.violation is Violation.TOO_BIG
    text_only = decide_inbound(b"x", Policy(InboundPolicy(codec="raw")))
    assert isinstance(text_only, Close)
    assert text_only.violation is Violation.BINARY_UNSUPPORTED


class _UpperCodec:
    """A custom codec: 'TYPE:payload' lines."""

    name = "upper"

    def decode(self, data: str | bytes) -> Any:
        text = data if isinstance(data, str) else data.decode()
        kind, _, body = text.partition(":")
        if not kind.isupper():
            raise ValueError("not upper")
        return {"type": kind, "body": body}

    def encode(self, message: Any) -> str:
        return f"{message['type']}:{message['body']}"


def test_custom_codec() -> None:
    policy = Policy(InboundPolicy(codec=_UpperCodec()))
    assert decide_inbound("PING:x", policy) == Accept({"type": "PING", "body": "x"}, "PING", 6)
    bad = decide_inbound("ping:x", policy)
    assert isinstance(bad, Close)
    assert bad.violation is Violation.INVALID_JSON


class Ping(msgspec.Struct, tag="ping"):
    pass


class Refresh(msgspec.Struct, tag="refresh_token"):
    token: str


def test_msgspec_typed_messages() -> None:
    from ws_close_policy.codecs import MsgspecCodec

    policy = Policy(InboundPolicy(codec=MsgspecCodec(Ping | Refresh)))
    ok = decide_inbound('{"type": "refresh_token", "token": "t"}', policy)
    assert ok == Accept(Refresh("t"), "refresh_token", 39)
    cases = {
        '{"type": "refresh_token", "token": 5}': Violation.INVALID_MESSAGE,
        '{"type": "nope"}': Violation.UNKNOWN_TYPE,
        "{}": Violation.MISSING_TYPE,
        "[1]": Violation.NOT_AN_OBJECT,
        "{": Violation.INVALID_JSON,
    }
    for data, violation in cases.items():
        result = decide_inbound(data, policy)
        assert isinstance(result, Close), data
        assert result.violation is violation, data


@pytest.mark.parametrize(
    ("kwargs", "name", "error"),
    [
        ({"max_bytes": 0}, "max_bytes", ValueError),
        ({"max_bytes": -1}, "max_bytes", ValueError),
        ({"max_bytes": 2**63}, "max_bytes", ValueError),  # beyond any object's size
        ({"max_bytes": 1.5}, "max_bytes", TypeError),
        ({"max_bytes": True}, "max_bytes", TypeError),
        ({"max_depth": 0}, "max_depth", ValueError),
        ({"max_depth": 10_000}, "max_depth", ValueError),
        ({"max_depth": 2**100}, "max_depth", ValueError),
        ({"accept_binary": "yes"}, "accept_binary", TypeError),
        ({"codec": "yaml"}, "codec", ValueError),
        ({"codec": object()}, "codec", TypeError),
        ({"type_field": ""}, "type_field", ValueError),
        ({"type_field": 3}, "type_field", TypeError),
        ({"allowed_types": "ping"}, "allowed_types", TypeError),
        ({"allowed_types": {""}}, "allowed_types", ValueError),
        ({"allowed_types": {3}}, "allowed_types", TypeError),
        ({"validators": {"ping": 3}}, "validators", TypeError),
        ({"validators": [1]}, "validators", TypeError),
        ({"reject_duplicate_keys": 1}, "reject_duplicate_keys", TypeError),
    ],
)
def test_inbound_policy_validation(
    kwargs: dict[str, Any], name: str, error: type[Exception]
) -> None:
    with pytest.raises(error, match=name):
        InboundPolicy(**kwargs)


def test_the_largest_limit_is_accepted_and_compared_as_an_int() -> None:
    policy = Policy(InboundPolicy(max_bytes=2**63 - 1, codec="orjson"))
    assert isinstance(decide_inbound('{"type": "ping"}', policy), Accept)


def test_non_str_data_is_a_caller_error() -> None:
    with pytest.raises(TypeError, match="data"):
        decide_inbound(123)  # type: ignore[arg-type]


def test_policy_validation() -> None:
    with pytest.raises(TypeError, match="profile"):
        Policy(profile="SEED")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="inbound"):
        Policy(inbound=OutboundPolicy())  # type: ignore[arg-type]


def test_policy_is_hashable_and_compares_by_value() -> None:
    def is_ping(message: Any) -> bool:
        return True

    a = Policy(InboundPolicy(allowed_types={"ping"}, validators={"ping": is_ping}))
    b = Policy(InboundPolicy(allowed_types=["ping"], validators={"ping": is_ping}))
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, Policy()}) == 2


# --- properties ----------------------------------------------------------------------------


def _decision(result: Accept | Close) -> tuple[str, object]:
    if isinstance(result, Close):
        return ("close", result.violation)
    return ("accept", result.type)


def _check_action(result: Accept | Close) -> None:
    if isinstance(result, Close):
        assert is_sendable(result.code)
        assert len(result.reason.encode()) <= 123
        assert result.violation is not None
    else:
        assert isinstance(result, Accept)


@given(messages, st.sampled_from(CODECS), st.booleans())
def test_valid_messages_come_back_equal(message: dict[str, Any], codec: str, binary: bool) -> None:
    data = json.dumps(message, ensure_ascii=False)
    result = decide_inbound(data.encode() if binary else data, POLICIES[codec])
    assert isinstance(result, Accept), result
    assert result.type == message["type"]
    assert result.message == message


@given(fuzz_text | st.binary(max_size=60))
def test_any_input_gives_a_valid_action_with_every_codec(data: str | bytes) -> None:
    decisions = {}
    for codec in CODECS:
        result = decide_inbound(data, POLICIES[codec])
        _check_action(result)
        decisions[codec] = _decision(result)
    note(repr(decisions))
    assert len(set(decisions.values())) == 1, decisions


@given(fuzz_text, st.integers(1, 80))
def test_any_input_under_small_limits(data: str, limit: int) -> None:
    policy = Policy(InboundPolicy(max_bytes=limit, max_depth=3))
    result = decide_inbound(data, policy)
    _check_action(result)
    size = len(data.encode("utf-8", "surrogatepass"))
    assert (isinstance(result, Close) and result.violation is Violation.TOO_BIG) == (size > limit)


def test_json_codec_roundtrip_helpers() -> None:
    codec = JsonCodec()
    assert codec.encode({"a": 1}) == '{"a":1}'
    with pytest.raises(ValueError, match="duplicate"):
        JsonCodec(reject_duplicate_keys=True).decode('{"a":1,"a":2}')


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


tricky_text = st.text(st.sampled_from('[]{}"\\ab\u00e9\n'), max_size=6)
nested = st.recursive(
    st.none() | st.integers() | tricky_text,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(tricky_text, c, max_size=3),
    max_leaves=25,
)


@given(nested, st.integers(1, 8), st.booleans(), st.booleans())
def test_text_depth_matches_the_decoded_depth(
    value: Any, limit: int, ascii_only: bool, as_bytes: bool
) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    data = text.encode() if as_bytes else text
    assert nests_deeper_than(data, limit) == (_depth(value) > limit)


escapes = st.lists(
    st.sampled_from(["\\ud83d", "\\ude00", "\\udbff", "\\udc00", "\\u0041", "\\\\", "a", "\\n"]),
    max_size=6,
).map(lambda parts: json.dumps({"type": "x"})[:-1] + ', "s": "' + "".join(parts) + '"}')


@given(escapes)
def test_lone_surrogate_escapes_found_on_the_text(text: str) -> None:
    decoded = json.loads(text)["s"]
    try:
        decoded.encode("utf-8")
        lone = False
    except UnicodeEncodeError:
        lone = True
    assert has_lone_surrogate_escape(text) is lone
    assert has_lone_surrogate_escape(text.encode()) is lone


@pytest.mark.parametrize("depth", [63, 64, 65, 100])
def test_many_deep_blocks_are_measured_exactly(depth: int) -> None:
    # Past the first passes the depth is a running sum: still exact, and linear in size.
    block = "[" * depth + "]" * depth
    text = '{"type": "x", "d": [' + ",".join([block] * 200) + "]}"
    assert nests_deeper_than(text, 64) is (depth + 2 > 64)  # the object and the list
    assert nests_deeper_than(text.encode(), 64) is (depth + 2 > 64)
