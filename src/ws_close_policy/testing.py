"""Hypothesis strategies for testing code that uses ws-close-policy.

Requires hypothesis (``pip install 'ws-close-policy[testing]'``)::

    from hypothesis import given
    from ws_close_policy import Close
    from ws_close_policy.testing import reasons, sendable_codes

    @given(sendable_codes(), reasons())
    def test_close_always_fits(code, reason):
        assert len(Close(code, reason).payload()) <= 125
"""

from __future__ import annotations

from hypothesis import strategies as st

from .codes import CloseCode, is_sendable

__all__ = ["close_codes", "close_payloads", "reasons", "sendable_codes"]

_NAMED_SENDABLE = sorted(int(code) for code in CloseCode if is_sendable(code))

# Characters that break naive truncation: multi-byte, combining, emoji parts, surrogates.
_TRICKY = "é€😀\u0301\u200d\ufe0f\U0001f469\U0001f3fd\ud800\udc00\udfff\x00\ufffd"


def close_codes() -> st.SearchStrategy[int]:
    """Any 16-bit integer, weighted towards the interesting edges of every range."""
    edges = [0, 999, 1000, 1004, 1005, 1006, 1015, 1016, 2999, 3000, 3999, 4000, 4999, 5000]
    return st.one_of(
        st.sampled_from(edges),
        st.sampled_from([int(code) for code in CloseCode]),
        st.integers(min_value=0, max_value=65535),
    )


def sendable_codes() -> st.SearchStrategy[int]:
    """Codes an endpoint may send: 1000-1003, 1007-1014 and 3000-4999."""
    return st.one_of(
        st.sampled_from(_NAMED_SENDABLE),
        st.integers(min_value=3000, max_value=4999),
    )


def reasons(max_size: int = 400) -> st.SearchStrategy[str]:
    """Any text, including lone surrogates, combining marks, emoji and long strings."""
    any_char = st.characters(codec=None, exclude_categories=())
    return st.one_of(
        st.text(any_char, max_size=max_size),
        st.text(st.sampled_from(_TRICKY) | any_char, min_size=100, max_size=max_size),
        st.builds(lambda c, n: c * n, st.sampled_from(_TRICKY), st.integers(30, 130)),
    )


def close_payloads() -> st.SearchStrategy[bytes]:
    """Received close-frame payloads, valid and invalid."""
    return st.one_of(
        st.binary(max_size=4),
        st.binary(min_size=126, max_size=200),  # too long for a control frame
        st.builds(
            lambda code, reason: code.to_bytes(2, "big") + reason,
            close_codes(),
            st.binary(max_size=123),
        ),
        st.builds(
            lambda code, reason: code.to_bytes(2, "big") + reason.encode("utf-8")[:123],
            sendable_codes(),
            st.text(max_size=60),
        ),
    )
