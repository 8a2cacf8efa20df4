"""The action types: valid by construction; the one UTF-8 size function."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ws_close_policy import Accept, Close, CloseCode, Reject, Send, Violation
from ws_close_policy._actions import utf8_size
from ws_close_policy.testing import reasons, sendable_codes


@given(sendable_codes(), reasons())
def test_close_reason_always_fits(code: int, reason: str) -> None:
    close = Close(code, reason)
    assert len(close.reason.encode("utf-8")) <= 123
    assert close.code == code


def test_registered_codes_become_close_code_members() -> None:
    assert Close(1008).code is CloseCode.POLICY_VIOLATION
    assert type(Close(4001).code) is int


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
    assert (a.code, a.reason) == (b.code, b.reason)


def test_actions_are_frozen_and_slotted() -> None:
    for action in (Close(1000), Reject(401)):
        assert not hasattr(action, "__dict__")
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(action, dataclasses.fields(action)[0].name, None)
    for built in (Send("x", 1), Accept({"type": "ping"}, "ping", 16)):
        assert not hasattr(built, "__dict__")
        with pytest.raises(AttributeError):
            setattr(built, built._fields[0], None)
        with pytest.raises(AttributeError):
            object.__setattr__(built, built._fields[1], None)


def test_named_tuple_actions_cannot_be_rebuilt_unchecked() -> None:
    send = Send("x", 1)
    assert tuple(send) == ("x", 1, True, False, False)
    assert send._replace(large=True) == Send("x", 1, large=True)
    with pytest.raises(ValueError, match="size"):
        send._replace(size=2)
    with pytest.raises(ValueError, match="size"):
        Send._make(("xy", 1, True, False, False))
    with pytest.raises(ValueError, match="type"):
        Accept({"type": "ping"}, "ping", 16)._replace(type="")
    with pytest.raises(TypeError, match="size"):
        Accept._make(({}, None, -1.0))
    for action in (send, Accept({"type": "ping"}, "ping", 16)):
        assert pickle.loads(pickle.dumps(action)) == action
        assert copy.copy(action) == action
        assert type(copy.deepcopy(action)) is type(action)


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
    assert Accept(b"raw", None, 3).type is None
    with pytest.raises(TypeError, match="type"):
        Accept({}, 3, 2)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="type"):
        Accept({}, "", 2)
    with pytest.raises(TypeError, match="size"):
        Accept({}, "x", 2.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="size"):
        Accept({}, "x", -1)


@given(st.text() | st.binary())
def test_utf8_size_is_the_wire_length_and_strict_refuses_lone_surrogates(
    data: str | bytes,
) -> None:
    expected = len(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    assert utf8_size(data) == expected
    valid = True
    if isinstance(data, str):
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            valid = False
    if valid:
        assert utf8_size(data, strict=True) == expected
    else:
        with pytest.raises(UnicodeEncodeError):
            utf8_size(data, strict=True)


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
