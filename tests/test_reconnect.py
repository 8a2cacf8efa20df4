"""advise_reconnect and Reconnector: the client guide per code, jitter on every retry."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ws_close_policy import (
    Outcome,
    Profile,
    ReconnectAction,
    ReconnectAdvice,
    Reconnector,
    ReconnectPolicy,
    advise_reconnect,
)
from ws_close_policy.reconnect import APP_CODE_BANDS, PUSHER_BANDS, Band

A = ReconnectAction
EXACT = ReconnectPolicy(jitter="none")

SEED_TABLE = {
    1000: A.STOP,
    1001: A.STOP,
    1002: A.STOP,
    1003: A.STOP,
    1007: A.STOP,
    1010: A.STOP,
    1015: A.STOP,
    1008: A.REFRESH_CREDENTIALS,
    1009: A.REDUCE_PAYLOAD,
    1011: A.RETRY,
    1012: A.RETRY,
    1013: A.RETRY,
    1014: A.RETRY,
    1005: A.RETRY,
    1006: A.RETRY,
    None: A.RETRY,
}


@pytest.mark.parametrize(("code", "action"), list(SEED_TABLE.items()))
def test_seed_actions(code: int | None, action: ReconnectAction) -> None:
    assert advise_reconnect(code, 0).action is action


def test_rfc_strict_and_graphql_ws_tables() -> None:
    strict = ReconnectPolicy(profile=Profile.RFC_STRICT)
    assert advise_reconnect(1001, 0, strict).action is A.RETRY  # a server going away
    assert advise_reconnect(1008, 0, strict).action is A.REFRESH_CREDENTIALS
    graphql = ReconnectPolicy(profile=Profile.GRAPHQL_WS)
    assert advise_reconnect(4400, 0, graphql).action is A.STOP
    assert advise_reconnect(4401, 0, graphql).action is A.REFRESH_CREDENTIALS
    assert advise_reconnect(4403, 0, graphql).action is A.REFRESH_CREDENTIALS
    assert advise_reconnect(4500, 0, graphql).action is A.RETRY
    assert advise_reconnect(1000, 0, graphql).action is A.STOP


def test_exact_schedule_without_jitter() -> None:
    delays = [advise_reconnect(1011, n, EXACT).delay for n in range(10)]
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60, 60]
    assert advise_reconnect(1012, 3, EXACT).delay == 5.0


def test_full_jitter_on_every_attempt() -> None:
    for attempt in range(10):
        low = advise_reconnect(1011, attempt, random=lambda: 0.0).delay
        high = advise_reconnect(1011, attempt, random=lambda: 0.999999).delay
        assert low == 0.0
        assert high == pytest.approx(min(60, 2**attempt) * 0.999999)


def test_restart_window() -> None:
    assert advise_reconnect(1012, 0, random=lambda: 0.0).delay == 5.0
    assert advise_reconnect(1012, 0, random=lambda: 0.5).delay == 17.5
    custom = ReconnectPolicy(restart_delay=(1, 2))
    assert advise_reconnect(1012, 0, custom, random=lambda: 0.5).delay == 1.5


def test_reduce_payload_and_refresh_are_short_and_jittered() -> None:
    advice = advise_reconnect(1009, 0, random=lambda: 0.25)
    assert advice.action is A.REDUCE_PAYLOAD
    assert advice.delay == 0.25
    assert advise_reconnect(1008, 7, random=lambda: 0.5).delay == 0.5


def test_gives_up_after_max_attempts() -> None:
    policy = ReconnectPolicy(max_attempts=3)
    assert advise_reconnect(1011, 2, policy).action is A.RETRY
    advice = advise_reconnect(1011, 3, policy)
    assert advice.action is A.STOP
    assert "gave up after 3 attempts" in advice.why
    assert not advice.should_reconnect


def test_private_bands() -> None:
    pusher = ReconnectPolicy(private_bands=PUSHER_BANDS, jitter="none")
    assert advise_reconnect(4001, 0, pusher).action is A.STOP
    backoff = advise_reconnect(4100, 4, pusher)
    assert (backoff.action, backoff.delay) == (A.RETRY, 16.0)
    immediate = advise_reconnect(4200, 4, pusher)
    assert (immediate.action, immediate.delay) == (A.RETRY, 0.0)
    assert advise_reconnect(4300, 0, pusher).action is A.RETRY  # private_default
    stopper = ReconnectPolicy(private_bands=(), private_default=A.STOP)
    assert advise_reconnect(4999, 0, stopper).action is A.STOP


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (4004, A.STOP),  # "Job not found": retrying cannot help
        (4000, A.STOP),
        (4403, A.STOP),
        (4499, A.STOP),
        (4401, A.REFRESH_CREDENTIALS),
        (4408, A.RETRY),
        (4429, A.RETRY),
        (4500, A.RETRY),
        (4999, A.RETRY),
        (3000, A.RETRY),  # IANA-registered codes: private_default
    ],
)
def test_application_codes_carry_their_action_by_default(code: int, action: A) -> None:
    assert advise_reconnect(code, 0).action is action
    assert advise_reconnect(code, 0, ReconnectPolicy(profile=Profile.RFC_STRICT)).action is action


@given(st.integers(4000, 4999))
def test_every_application_code_has_the_bands_action(code: int) -> None:
    expected = next(b.action for b in APP_CODE_BANDS if b.first <= code <= b.last)
    assert advise_reconnect(code, 0).action is expected


@pytest.mark.parametrize("code", [-5, 0, 999, 1004, 1016, 2999, 5000, 65535, 70000])
def test_invalid_codes_read_as_abnormal_closure(code: int) -> None:
    advice = advise_reconnect(code, 0, EXACT)
    assert advice.action is A.RETRY
    assert advice.delay == 1.0
    assert "1006" in advice.why


@given(
    st.one_of(st.none(), st.integers(-10, 70000)),
    st.integers(0, 50),
    st.floats(0, 1, exclude_max=True),
    st.sampled_from([Profile.ACTIONABLE, Profile.RFC_STRICT, Profile.GRAPHQL_WS]),
)
def test_defined_for_every_code(
    code: int | None, attempt: int, draw: float, profile: Profile
) -> None:
    policy = ReconnectPolicy(profile=profile)
    advice = advise_reconnect(code, attempt, policy, random=lambda: draw)
    assert isinstance(advice, ReconnectAdvice)
    assert advice.why
    if advice.action is A.STOP:
        assert advice.delay == 0.0
    else:
        assert 0.0 <= advice.delay <= max(policy.cap, policy.restart_delay[1])
        assert attempt < policy.max_attempts


@pytest.mark.parametrize(
    ("kwargs", "name", "error"),
    [
        ({"base": 0}, "base", ValueError),
        ({"base": float("inf")}, "base", ValueError),
        ({"base": 10**400}, "base", ValueError),  # beyond any float: never OverflowError
        ({"base": "1"}, "base", TypeError),
        ({"factor": 0.5}, "factor", ValueError),
        ({"cap": -1}, "cap", ValueError),
        ({"max_attempts": 0}, "max_attempts", ValueError),
        ({"max_attempts": 2**64}, "max_attempts", ValueError),
        ({"max_attempts": True}, "max_attempts", TypeError),
        ({"restart_delay": (30, 5)}, "restart_delay", ValueError),
        ({"restart_delay": (1,)}, "restart_delay", ValueError),
        ({"restart_delay": [5, 30]}, "restart_delay", TypeError),
        ({"jitter": "half"}, "jitter", ValueError),
        ({"profile": "SEED"}, "profile", TypeError),
        ({"private_bands": [(4000, 4099)]}, "private_bands", TypeError),
        ({"private_default": "sometimes"}, "sometimes", ValueError),
    ],
)
def test_policy_validation(kwargs: dict[str, object], name: str, error: type[Exception]) -> None:
    with pytest.raises(error, match=name):
        ReconnectPolicy(**kwargs)  # type: ignore[arg-type]


def test_argument_validation() -> None:
    with pytest.raises(ValueError, match="attempt"):
        advise_reconnect(1011, -1)
    with pytest.raises(TypeError, match="code"):
        advise_reconnect("1011", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="random"):
        advise_reconnect(1011, 0, random=0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="random"):
        advise_reconnect(1011, 0, random=lambda: 1.0)
    with pytest.raises(ValueError, match="band"):
        Band(2000, 4000, A.STOP)
    assert advise_reconnect(2**70, 2**70).action is A.STOP  # huge ints: no OverflowError


def test_no_random_means_no_jitter() -> None:
    # The core reads no global random source: without `random` the delays are exact.
    assert advise_reconnect(1011, 2).delay == 4.0
    assert advise_reconnect(1012, 0).delay == 5.0
    advice = advise_reconnect(1012, 0, random=lambda: 0.5)
    assert advice.delay == 17.5
    assert advice.window == (5.0, 30.0)
    assert advise_reconnect(1011, 2, random=lambda: 0.25).window == (0.0, 4.0)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reconnector_stops_after_refused_refresh() -> None:
    clock = Clock()
    client = Reconnector(clock=clock, random=lambda: 0.5)
    client.on_open()
    first = client.on_close(1008)
    assert first.action is A.REFRESH_CREDENTIALS
    client.on_open()
    clock.now += 0.2
    second = client.on_close(1008)
    assert second.action is A.STOP
    assert "refused again" in second.why


def test_reconnector_refresh_again_after_a_stable_connection() -> None:
    clock = Clock()
    client = Reconnector(clock=clock, stable_after=10)
    client.on_open()
    assert client.on_close(1008).action is A.REFRESH_CREDENTIALS
    client.on_open()
    clock.now += 3600  # the refreshed token worked for an hour, then expired
    assert client.on_close(1008).action is A.REFRESH_CREDENTIALS


def test_reconnector_no_tight_loop_on_accept_then_close() -> None:
    clock = Clock()
    client = Reconnector(ReconnectPolicy(jitter="none", max_attempts=5), clock=clock)
    delays = []
    for _ in range(6):
        client.on_open()
        clock.now += 0.01  # the server closes at once
        advice = client.on_close(1011)
        delays.append(advice.delay)
        if advice.action is A.STOP:
            break
        clock.now += advice.delay
    assert delays == [1, 2, 4, 8, 16, 0]
    assert advice.action is A.STOP


def test_reconnector_resets_after_stable_connection() -> None:
    clock = Clock()
    client = Reconnector(ReconnectPolicy(jitter="none"), clock=clock, stable_after=5)
    client.on_close(None)
    client.on_close(None)
    assert client.attempt == 2
    client.on_open()
    clock.now += 6
    assert client.on_close(1011).delay == 1.0
    assert client.attempt == 1


def test_reconnector_handshake_failures() -> None:
    client = Reconnector(ReconnectPolicy(jitter="none"))
    assert client.on_handshake_failure(401).action is A.STOP
    assert client.on_handshake_failure(403).action is A.STOP
    assert client.on_handshake_failure(404).action is A.STOP
    limited = client.on_handshake_failure(429, retry_after=30)
    assert (limited.action, limited.delay) == (A.RETRY, 30.0)
    assert "Retry-After 30" in limited.why
    unavailable = client.on_handshake_failure(503)
    assert (unavailable.action, unavailable.delay) == (A.RETRY, 2.0)
    capped = Reconnector(ReconnectPolicy(max_attempts=1))
    capped.on_handshake_failure(502)
    assert capped.on_handshake_failure(502).action is A.STOP


def test_reconnector_validation() -> None:
    with pytest.raises(TypeError, match="policy"):
        Reconnector(policy=3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="stable_after"):
        Reconnector(stable_after=-1)
    with pytest.raises(TypeError, match="stable_after"):
        Reconnector(stable_after="5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock"):
        Reconnector(clock=5)  # type: ignore[arg-type]


def test_reconnector_without_a_clock_never_resets() -> None:
    client = Reconnector(ReconnectPolicy(jitter="none", max_attempts=2))
    client.on_open()
    assert client.on_close(1011).action is A.RETRY
    client.on_open()
    assert client.on_close(1011).action is A.RETRY
    client.on_open()
    assert client.on_close(1011).action is A.STOP


def test_retry_after_is_jittered_and_capped() -> None:
    client = Reconnector(ReconnectPolicy(), random=lambda: 0.5)
    advice = client.on_handshake_failure(429, retry_after=30)
    assert advice.window == (30.0, 31.0)  # spread over the backoff ceiling after Retry-After
    assert advice.delay == 30.5
    capped = Reconnector(ReconnectPolicy(cap=60), random=lambda: 0.0)
    assert capped.on_handshake_failure(503, retry_after=10**6).delay == 60.0


def test_handshake_failure_needs_an_error_status() -> None:
    client = Reconnector()
    with pytest.raises(ValueError, match="status"):
        client.on_handshake_failure(200)
    with pytest.raises(TypeError, match="status"):
        client.on_handshake_failure("503")  # type: ignore[arg-type]


def test_a_profile_s_own_restart_code_gets_the_restart_window() -> None:
    private = Profile.ACTIONABLE.derive(
        "private", outcomes={Outcome.RESTARTING: 4012}, client_actions={4012: ReconnectAction.RETRY}
    )
    advice = advise_reconnect(4012, 0, ReconnectPolicy(profile=private))
    assert advice.window == (5.0, 30.0)
    assert advise_reconnect(4012, 0).window == (0.0, 0.0)  # another profile: 4000-4499, stop


def test_an_application_code_listed_in_the_profile_overrides_its_band() -> None:
    # docs/reconnect.md: "Your application's codes".
    assert advise_reconnect(4004, 0).action is ReconnectAction.STOP  # 4000-4499: stop
    assert advise_reconnect(4503, 0).action is ReconnectAction.RETRY  # 4500-4999: retry
    jobs = Profile.ACTIONABLE.derive(
        "jobs", client_actions={4503: ReconnectAction.STOP, 4409: ReconnectAction.RETRY}
    )
    policy = ReconnectPolicy(profile=jobs)
    assert advise_reconnect(4503, 0, policy).action is ReconnectAction.STOP
    assert advise_reconnect(4409, 0, policy).action is ReconnectAction.RETRY
