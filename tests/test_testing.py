"""The public hypothesis strategies generate what they promise."""

from __future__ import annotations

from hypothesis import find, given

from ws_close_policy import is_sendable
from ws_close_policy.testing import close_codes, close_payloads, reasons, sendable_codes


@given(sendable_codes())
def test_sendable_codes_are_sendable(code: int) -> None:
    assert is_sendable(code)


@given(close_codes())
def test_close_codes_are_16_bit(code: int) -> None:
    assert 0 <= code <= 65535


def test_reasons_reach_the_hard_cases() -> None:
    assert any(0xD800 <= ord(c) <= 0xDFFF for c in find(reasons(), _has_surrogate))
    assert len(find(reasons(), lambda s: len(s.encode("utf-8", "surrogatepass")) > 123)) > 0
    assert find(reasons(), lambda s: "\u0301" in s)


def test_close_payloads_reach_invalid_lengths() -> None:
    assert len(find(close_payloads(), lambda b: len(b) == 1)) == 1
    assert len(find(close_payloads(), lambda b: len(b) > 125)) > 125


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)
