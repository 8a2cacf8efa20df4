"""close_for outcomes (the review's completion/cancel/failure cases), Reject builders, and
the decisions every adapter asks for: admission, refusals, origins, the drain schedule and
the server's message limit."""

from __future__ import annotations

import re
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ws_close_policy import InboundPolicy, Outcome, Policy, Profile, Reject, close_for
from ws_close_policy.codes import is_sendable
from ws_close_policy.lifecycle import Origins, admission, drain_delays, refusal_close
from ws_close_policy.policy import server_max_size


@pytest.mark.parametrize(
    ("outcome", "code", "reason"),
    [
        (Outcome.COMPLETED, 1000, "Completed"),
        (Outcome.CANCELLED, 1001, "Cancelled"),
        (Outcome.FAILED, 1011, "Internal error"),
        (Outcome.GOING_AWAY, 1001, "Going away"),
        (Outcome.RESTARTING, 1012, "Service restarting"),
        (Outcome.OVERLOADED, 1013, "Try again later"),
        (Outcome.POLICY_VIOLATION, 1008, "Authentication required"),
    ],
)
def test_close_for_under_seed(outcome: Outcome, code: int, reason: str) -> None:
    close = close_for(outcome)
    assert close.code == code
    assert close.reason == reason
    assert close.outcome is outcome


def test_cancellation_is_1000_under_rfc_strict() -> None:
    assert close_for(Outcome.CANCELLED, Policy(profile=Profile.RFC_STRICT)).code == 1000


def test_custom_reason_truncated_safely() -> None:
    close = close_for(Outcome.COMPLETED, reason="done " + "😀" * 100)
    assert close.code == 1000
    assert len(close.reason.encode()) <= 123
    assert close.reason.startswith("done 😀")


def test_close_for_validates_arguments() -> None:
    with pytest.raises(TypeError, match="outcome"):
        close_for("completed")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reason"):
        close_for(Outcome.COMPLETED, reason=b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="policy"):
        close_for(Outcome.COMPLETED, Profile.ACTIONABLE)  # type: ignore[arg-type]


def test_unauthorized() -> None:
    reject = Reject.unauthorized(realm="jobs", error="invalid_token")
    assert reject.status == 401
    assert reject.header("WWW-Authenticate") == 'Bearer realm="jobs", error="invalid_token"'
    assert Reject.unauthorized().header("www-authenticate") == 'Bearer realm="websocket"'
    with pytest.raises(ValueError, match="realm"):
        Reject.unauthorized(realm='a"b')
    with pytest.raises(TypeError, match="realm"):
        Reject.unauthorized(realm=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="error"):
        Reject.unauthorized(error="x\r\ny")


def test_other_rejections() -> None:
    assert Reject.forbidden().status == 403
    upgrade = Reject.upgrade_required()
    assert upgrade.status == 426
    assert upgrade.header("Upgrade") == "websocket"
    assert upgrade.header("Sec-WebSocket-Version") == "13"
    limited = Reject.too_many_requests(30)
    assert limited.status == 429
    assert limited.header("Retry-After") == "30"
    assert Reject.too_many_requests().header("Retry-After") is None
    unavailable = Reject.unavailable(5)
    assert unavailable.status == 503
    assert unavailable.header("Retry-After") == "5"
    with pytest.raises(ValueError, match="retry_after"):
        Reject.unavailable(-1)
    for bad in (1.5, True):
        with pytest.raises(TypeError, match="retry_after"):
            Reject.unavailable(bad)  # type: ignore[arg-type]


def test_application_codes() -> None:
    close = close_for(4004, reason="Job not found")
    assert (close.code, close.reason) == (4004, "Job not found")
    assert close.outcome is None
    assert close_for(3000).reason == ""
    assert len(close_for(4000, reason="é" * 100).reason.encode()) <= 123
    for protocol_code in (1000, 1008, 2999, 5000):
        with pytest.raises(ValueError, match="application code"):
            close_for(protocol_code)
    with pytest.raises(TypeError, match="outcome"):
        close_for(True)


# --- the decisions the adapters ask for -------------------------------------------------------


@given(st.integers(0, 10_000), st.none() | st.integers(1, 10_000), st.booleans())
def test_admission_refuses_while_draining_or_full(
    open_now: int, max_open: int | None, draining: bool
) -> None:
    refused = admission(open_now, max_open, draining)
    if draining:
        assert refused is Outcome.RESTARTING  # 1012: a drain says "come back after the deploy"
    elif max_open is not None and open_now >= max_open:
        assert refused is Outcome.OVERLOADED  # 1013
    else:
        assert refused is None
    if refused is not None:
        assert close_for(refused).code in (1012, 1013)


def test_admission_validates_its_count() -> None:
    with pytest.raises(ValueError, match="open_now"):
        admission(-1, None, False)


@given(
    st.sampled_from([400, 401, 403, 404, 426, 429, 500, 503]),
    st.sampled_from([Profile.ACTIONABLE, Profile.RFC_STRICT, Profile.GRAPHQL_WS]),
    st.none() | st.sampled_from(list(Outcome)),
    st.none() | st.text(max_size=200),
)
def test_refusal_close_is_always_sendable(
    status: int, profile: Profile, outcome: Outcome | None, reason: str | None
) -> None:
    policy = Policy(profile=profile)
    close = refusal_close(Reject(status), policy, outcome=outcome, reason=reason)
    expected = outcome or (Outcome.POLICY_VIOLATION if status in (401, 403) else Outcome.OVERLOADED)
    assert close == close_for(expected, policy, reason)
    assert is_sendable(close.code)
    assert len(close.reason.encode()) <= 123


def test_refusal_close_validates() -> None:
    with pytest.raises(TypeError, match="refusal"):
        refusal_close(401)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="outcome"):
        refusal_close(Reject(401), outcome="failed")  # type: ignore[arg-type]


ORIGINS = Origins([None, "https://app.example", re.compile(r"https://[a-z]+\.test")])


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("https://app.example", True),
        ("https://a.test", True),
        ("https://app.example.evil", False),  # exact, not a prefix
        ("https://a.test.evil", False),  # the whole header must match
        ("http://app.example", False),
        ("", False),
    ],
)
def test_origins(origin: str | None, allowed: bool) -> None:
    refusal = ORIGINS.refusal(origin)
    assert (refusal is None) is allowed
    if refusal is not None:
        assert refusal.status == 403


@given(st.none() | st.text(max_size=40))
def test_an_origin_outside_the_list_is_always_403(origin: str | None) -> None:
    refusal = Origins(["https://only.example"]).refusal(origin)
    assert (refusal is None) is (origin == "https://only.example")
    assert Origins([]).refusal(origin) == Reject.forbidden()


def test_origins_validates_its_entries() -> None:
    with pytest.raises(TypeError, match="origins must hold"):
        Origins([3])  # type: ignore[list-item]


@given(st.integers(0, 200), st.floats(0, 60), st.randoms(use_true_random=False))
def test_drain_delays_fall_in_the_window(count: int, window: float, rng: Random) -> None:
    delays = drain_delays(count, window, rng.random)
    assert len(delays) == count
    assert all(0 <= delay <= window for delay in delays)


def test_drain_delays_spread_with_the_random_source() -> None:
    draws = iter([0.0, 0.5, 0.99])
    assert drain_delays(3, 2.0, lambda: next(draws)) == [0.0, 1.0, 1.98]
    assert drain_delays(2, 0, lambda: 0.7) == [0.0, 0.0]  # window 0: all at once
    with pytest.raises(ValueError, match="window"):
        drain_delays(1, -1, lambda: 0.5)
    with pytest.raises(TypeError, match="random"):
        drain_delays(1, 1, None)  # type: ignore[arg-type]


@given(st.integers(1, 1 << 30), st.none() | st.integers(1, 1 << 31))
def test_server_max_size_is_the_stricter_never_below_the_policy(
    max_bytes: int, yours: int | None
) -> None:
    policy = Policy(InboundPolicy(max_bytes=max_bytes))
    if yours is not None and yours < max_bytes:
        with pytest.raises(ValueError, match="below the policy's inbound limit"):
            server_max_size(policy, yours)
        return
    limit = server_max_size(policy, yours)
    assert max_bytes <= limit <= 2 * max_bytes
    assert limit == (2 * max_bytes if yours is None else min(yours, 2 * max_bytes))
