"""Close reasons: at most 123 UTF-8 bytes, cut on a character boundary, never raising."""

from __future__ import annotations

from hypothesis import given

from ws_close_policy.codes import encode_reason, truncate_reason
from ws_close_policy.testing import reasons


def _clean(text: str) -> str:
    # What the reason should be before cutting: lone surrogates replaced by U+FFFD.
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


@given(reasons())
def test_encoded_reason_is_the_longest_valid_prefix(text: str) -> None:
    data = encode_reason(text)
    decoded = data.decode("utf-8")  # raises if a character was split
    assert len(data) <= 123
    clean = _clean(text)
    assert clean.startswith(decoded)
    if decoded != clean:
        next_char = clean[len(decoded)]
        assert len(data) + len(next_char.encode("utf-8")) > 123


@given(reasons())
def test_truncate_reason_matches_encode_reason(text: str) -> None:
    assert truncate_reason(text).encode("utf-8") == encode_reason(text)


def test_short_reason_unchanged() -> None:
    assert encode_reason("Invalid JSON") == b"Invalid JSON"
    assert encode_reason("") == b""


def test_exactly_123_bytes_kept_and_124_cut() -> None:
    assert encode_reason("a" * 123) == b"a" * 123
    assert encode_reason("a" * 124) == b"a" * 123


def test_multibyte_character_never_split() -> None:
    # 61 two-byte characters = 122 bytes; the 62nd would make 124.
    assert encode_reason("é" * 62) == "é".encode() * 61
    # 30 four-byte emoji = 120 bytes; the 31st would make 124.
    assert encode_reason("😀" * 40) == "😀".encode() * 30


def test_lone_surrogates_replaced() -> None:
    assert encode_reason("a\ud800b") == "a\ufffdb".encode()
    assert encode_reason("\udfff") == "\ufffd".encode()


def test_surrogate_pair_in_str_is_joined() -> None:
    assert encode_reason("\ud83d\ude00") == "😀".encode()
