"""close_for outcomes (the review's completion/cancel/failure cases) and Reject builders."""

from __future__ import annotations

import pytest

from ws_close_policy import Outcome, Policy, Profile, Reject, close_for


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
