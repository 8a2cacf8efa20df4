"""The close-code registry against RFC 6455 7.4 and the IANA registry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ws_close_policy import Close, CloseCode
from ws_close_policy.codes import (
    CODE_CLASSES,
    CodeRange,
    code_class,
    code_info,
    code_range,
    describe,
    is_receivable,
    is_sendable,
)
from ws_close_policy.testing import close_codes

# RFC 6455 7.4.1 plus the IANA additions: the codes a close frame may carry.
WIRE = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
# Defined, but "MUST NOT be set as a status code in a Close control frame".
NEVER_ON_WIRE = {1004, 1005, 1006, 1015}


def test_registry_has_all_sixteen_codes() -> None:
    assert sorted(int(c) for c in CloseCode) == list(range(1000, 1016))
    assert all(code_info(c) is not None for c in range(1000, 1016))
    assert code_info(999) is None
    assert code_info(1016) is None


def test_names_match_websockets() -> None:
    frames = pytest.importorskip("websockets.frames", reason="websockets extra not installed")
    for theirs in frames.CloseCode:
        assert CloseCode[theirs.name] == theirs.value
    assert int(CloseCode.RESERVED) == 1004


@pytest.mark.parametrize("code", sorted(WIRE))
def test_wire_codes_are_sendable_and_receivable(code: int) -> None:
    assert is_sendable(code)
    assert is_receivable(code)
    info = code_info(code)
    assert info is not None
    assert info.on_wire


@pytest.mark.parametrize("code", sorted(NEVER_ON_WIRE))
def test_reserved_and_local_codes_never_on_the_wire(code: int) -> None:
    assert not is_sendable(code)
    assert not is_receivable(code)
    info = code_info(code)
    assert info is not None
    assert not info.on_wire
    assert info.sent_by == "nobody"


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        (-1, False),
        (0, False),
        (999, False),
        (1016, False),
        (1100, False),
        (2000, False),
        (2999, False),
        (3000, True),
        (3999, True),
        (4000, True),
        (4999, True),
        (5000, False),
        (65535, False),
        (65536, False),
    ],
)
def test_ranges_outside_the_registry(code: int, ok: bool) -> None:
    assert is_sendable(code) is ok
    assert is_receivable(code) is ok


@given(close_codes())
def test_close_constructs_exactly_when_sendable(code: int) -> None:
    if is_sendable(code):
        assert Close(code).code == code
    else:
        with pytest.raises(ValueError, match=str(code)):
            Close(code)


@given(st.integers(min_value=0, max_value=65535))
def test_sendable_and_receivable_agree_today(code: int) -> None:
    expected = code in WIRE or 3000 <= code <= 4999
    assert is_sendable(code) is expected
    assert is_receivable(code) is expected


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (1000, "1000 (normal closure)"),
        (1008, "1008 (policy violation)"),
        (1004, "1004 (reserved)"),
        (1015, "1015 (TLS handshake failure)"),
        (4001, "4001 (private use)"),
        (3001, "3001 (registered use)"),
        (2000, "2000 (unassigned, reserved for the protocol)"),
        (500, "500 (unused)"),
        (70000, "70000 (invalid)"),
        (-3, "-3 (invalid)"),
    ],
)
def test_describe(code: int, text: str) -> None:
    assert describe(code) == text


@given(st.integers())
def test_describe_any_int(code: int) -> None:
    assert describe(code).startswith(f"{code} (")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (0, CodeRange.UNUSED),
        (1000, CodeRange.PROTOCOL),
        (2999, CodeRange.PROTOCOL),
        (3000, CodeRange.REGISTERED),
        (4000, CodeRange.PRIVATE),
        (5000, CodeRange.INVALID),
        (-1, CodeRange.INVALID),
    ],
)
def test_code_range(code: int, kind: CodeRange) -> None:
    assert code_range(code) is kind


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (1000, "normal"),
        (1001, "normal"),
        (1002, "client_error"),
        (1009, "client_error"),
        (1011, "server_error"),
        (1012, "retry_later"),
        (1013, "retry_later"),
        (1006, "abnormal"),
        (3000, "application"),
        (4999, "application"),
        (1004, "invalid"),
        (2999, "invalid"),
        (5000, "invalid"),
        (-1, "invalid"),
    ],
)
def test_code_class(code: int, kind: str) -> None:
    assert code_class(code) == kind


@given(st.integers())
def test_code_classes_are_bounded(code: int) -> None:
    assert code_class(code) in CODE_CLASSES
