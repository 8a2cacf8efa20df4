"""The action types: valid by construction, exact close payloads, parsing without raising."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given

from ws_close_policy import Accept, Close, CloseCode, Reject, Send, Violation
from ws_close_policy.actions import InvalidClose
from ws_close_policy.testing import close_payloads, reasons, sendable_codes


@given(sendable_codes(), reasons())
def test_close_reason_always_fits(code: int, reason: str) -> None:
    close = Close(code, reason)
    assert len(close.reason.encode("utf-8")) <= 123
    assert len(close.payload()) <= 125


@given(sendable_codes(), reasons())
def test_parse_round_trips_every_valid_close(code: int, reason: str) -> None:
    close = Close(code, reason)
    assert Close.parse(close.payload()) == close


@given(close_payloads())
def test_parse_never_raises(payload: bytes) -> None:
    result = Close.parse(payload)
    if isinstance(result, InvalidClose):
        assert result.code in (CloseCode.PROTOCOL_ERROR, CloseCode.INVALID_DATA)
        assert result.close.code == result.code
    elif isinstance(result, Close):
        assert result.payload() == payload
    else:
        assert payload == b""


def test_payload_layout() -> None:
    assert Close(1000).payload() == b"\x03\xe8"
    assert Close(4001, "bye").payload() == b"\x0f\xa1bye"


def test_registered_codes_become_close_code_members() -> None:
    assert Close(1008).code is CloseCode.POLICY_VIOLATION
    assert type(Close(4001).code) is int


@pytest.mark.parametrize(
    ("payload", "code", "why"),
    [
        (b"\x03", CloseCode.PROTOCOL_ERROR, "1 byte"),
        (b"\x03\xed", CloseCode.PROTOCOL_ERROR, "1005"),  # 1005 never on the wire
        (b"\x03\xee", CloseCode.PROTOCOL_ERROR, "1006"),
        (b"\x03\xf7", CloseCode.PROTOCOL_ERROR, "1015"),
        (b"\x00\x00", CloseCode.PROTOCOL_ERROR, "0 (unused)"),
        (b"\x13\x88", CloseCode.PROTOCOL_ERROR, "5000"),
        (b"\x03\xe8\xff", CloseCode.INVALID_DATA, "UTF-8"),
        (b"\x03\xe8" + b"a" * 124, CloseCode.PROTOCOL_ERROR, "126 bytes"),
    ],
)
def test_parse_reports_invalid_payloads(payload: bytes, code: CloseCode, why: str) -> None:
    result = Close.parse(payload)
    assert isinstance(result, InvalidClose)
    assert result.code == code
    assert why in result.why
    assert result.close.code == code
    assert result.close.detail == result.why


def test_parse_empty_payload_means_no_status() -> None:
    assert Close.parse(b"") is None


def test_parse_private_code_with_reason() -> None:
    assert Close.parse(b"\x0f\xa1hi") == Close(4001, "hi")


@pytest.mark.parametrize("code", [True, 1000.0, "1000", None])
def test_close_rejects_non_int_codes(code: object) -> None:
    with pytest.raises(TypeError, match="code"):
        Close(code)  # type: ignore[arg-type]


def test_close_error_names_code_and_ranges() -> None:
    with pytest.raises(ValueError, match=r"1006 \(abnormal closure\).*1000-1003, 1007-1014"):
        Close(1006)


def test_close_rejects_non_str_reason() -> None:
    with pytest.raises(TypeError, match="reason"):
        Close(1000, b"bytes")  # type: ignore[arg-type]


def test_close_metadata_not_compared_nor_sent() -> None:
    a = Close(1002, "Invalid JSON", violation=Violation.INVALID_JSON, detail="line 1")
    b = Close(1002, "Invalid JSON")
    assert a == b
    assert a.payload() == b.payload()
    assert b"line 1" not in a.payload()


def test_actions_are_frozen_and_slotted() -> None:
    for action in (
        Close(1000),
        Send("x", 1),
        Accept({"type": "ping"}, "ping"),
        Reject(401),
    ):
        assert not hasattr(action, "__dict__")
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(action, dataclasses.fields(action)[0].name, None)


def test_send_validation() -> None:
    assert Send(b"\x00", 1, text=False).text is False
    assert Send("é", 2).size == 2
    assert Send("é".encode(), 2).text is True  # UTF-8 bytes in a text frame
    with pytest.raises(ValueError, match="size"):
        Send("x", -1)
    with pytest.raises(TypeError, match="data"):
        Send(123, 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="size"):
        Send("x", 1.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text"):
        Send(b"x", 1, text=1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("abc", 99), "size"),  # the size must be the data's
        (("é", 1), "size"),  # UTF-8 bytes, not characters
        ((b"abc", 2, False), "size"),
        (("abc", 3, False), "text"),  # a str is always a text frame
        ((b"\xff", 1, True), "UTF-8"),  # bytes in a text frame must be UTF-8
        (("\ud800", 3), "UTF-8"),  # a lone surrogate cannot be sent
    ],
)
def test_send_is_valid_by_construction(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Send(*args)  # type: ignore[arg-type]


def test_accept_validation() -> None:
    assert Accept(b"raw", None).type is None
    with pytest.raises(TypeError, match="type"):
        Accept({}, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="type"):
        Accept({}, "")


def test_reject_validation_and_headers() -> None:
    reject = Reject(401, {"WWW-Authenticate": 'Bearer realm="jobs"'}, b"Unauthorized")  # type: ignore[arg-type]
    assert reject.status == 401
    assert reject.header("www-authenticate") == 'Bearer realm="jobs"'
    assert reject.header("missing") is None
    assert reject.body == b"Unauthorized"
    for status in (200, 302, 499, 600):
        with pytest.raises(ValueError, match="status"):
            Reject(status)
    with pytest.raises(TypeError, match="status"):
        Reject(True)
    with pytest.raises(ValueError, match="headers"):
        Reject(400, (("X-Bad", "a\r\nInjected: yes"),))
    with pytest.raises(TypeError, match="headers"):
        Reject(400, (("X-Bad", 3),))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="body"):
        Reject(400, (), "text")  # type: ignore[arg-type]
