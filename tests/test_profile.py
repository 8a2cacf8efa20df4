"""Profiles: the presets match the design's table; custom profiles are validated."""

from __future__ import annotations

import pytest

from ws_close_policy import Close, Outcome, Policy, Profile, ReconnectAction, Violation, close_for
from ws_close_policy.profile import PRESETS, Rule, profile_named

V = Violation
O = Outcome  # noqa: E741

# The table in DESIGN.md, column by column.
EXPECTED_VIOLATIONS = {
    "ACTIONABLE": {
        V.TOO_BIG: 1009,
        V.BINARY_UNSUPPORTED: 1003,
        V.INVALID_UTF8: 1007,
        V.INVALID_JSON: 1002,
        V.NOT_AN_OBJECT: 1002,
        V.MISSING_TYPE: 1002,
        V.UNKNOWN_TYPE: 1002,
        V.INVALID_MESSAGE: 1002,
        V.POLICY: 1008,
        V.OUTBOUND_TOO_BIG: 1009,
        V.INTERNAL: 1011,
    },
    "RFC_STRICT": {
        V.TOO_BIG: 1009,
        V.BINARY_UNSUPPORTED: 1003,
        V.INVALID_UTF8: 1007,
        V.INVALID_JSON: 1008,
        V.NOT_AN_OBJECT: 1008,
        V.MISSING_TYPE: 1008,
        V.UNKNOWN_TYPE: 1008,
        V.INVALID_MESSAGE: 1008,
        V.POLICY: 1008,
        V.OUTBOUND_TOO_BIG: 1011,
        V.INTERNAL: 1011,
    },
    "GRAPHQL_WS": {
        V.TOO_BIG: 1009,
        V.BINARY_UNSUPPORTED: 4400,
        V.INVALID_UTF8: 1007,
        V.INVALID_JSON: 4400,
        V.NOT_AN_OBJECT: 4400,
        V.MISSING_TYPE: 4400,
        V.UNKNOWN_TYPE: 4400,
        V.INVALID_MESSAGE: 4400,
        V.POLICY: 4403,
        V.OUTBOUND_TOO_BIG: 4500,
        V.INTERNAL: 4500,
    },
}
EXPECTED_OUTCOMES = {
    "ACTIONABLE": {O.COMPLETED: 1000, O.CANCELLED: 1001, O.FAILED: 1011, O.POLICY_VIOLATION: 1008},
    "RFC_STRICT": {
        O.COMPLETED: 1000,
        O.CANCELLED: 1000,
        O.FAILED: 1011,
        O.POLICY_VIOLATION: 1008,
    },
    "GRAPHQL_WS": {
        O.COMPLETED: 1000,
        O.CANCELLED: 1000,
        O.FAILED: 4500,
        O.POLICY_VIOLATION: 4403,
    },
}
SHARED_OUTCOMES = {O.GOING_AWAY: 1001, O.RESTARTING: 1012, O.OVERLOADED: 1013}


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_violation_codes(name: str) -> None:
    profile = PRESETS[name]
    for violation, code in EXPECTED_VIOLATIONS[name].items():
        close = profile.close_for_violation(violation)
        assert close.code == code, violation
        assert close.violation is violation
        assert close.reason


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_outcome_codes(name: str) -> None:
    policy = Policy(profile=PRESETS[name])
    for outcome, code in {**EXPECTED_OUTCOMES[name], **SHARED_OUTCOMES}.items():
        close = close_for(outcome, policy)
        assert close.code == code, outcome
        assert close.outcome is outcome


def test_actionable_reasons() -> None:
    profile = Profile.ACTIONABLE
    assert profile.close_for_violation(V.INVALID_JSON).reason == "Invalid JSON"
    assert profile.close_for_violation(V.MISSING_TYPE).reason == 'Missing required "type" field'
    assert profile.close_for_violation(V.TOO_BIG).reason == "Message too large"
    assert close_for(O.FAILED).reason == "Internal error"
    assert close_for(O.POLICY_VIOLATION).reason == "Authentication required"


def test_actionable_is_the_default_and_has_one_name() -> None:
    assert Policy().profile is Profile.ACTIONABLE
    assert not hasattr(Profile, "SEED")  # a name never released, removed
    with pytest.raises(ValueError, match="unknown profile 'seed'"):
        profile_named("seed")


def test_actionable_client_actions() -> None:
    action = Profile.ACTIONABLE.client_action
    assert action(1000) is ReconnectAction.STOP
    assert action(1002) is ReconnectAction.STOP
    assert action(1008) is ReconnectAction.REFRESH_CREDENTIALS
    assert action(1009) is ReconnectAction.REDUCE_PAYLOAD
    assert action(1012) is ReconnectAction.RETRY
    assert action(4999) is None


def test_detail_and_custom_reason() -> None:
    close = Profile.ACTIONABLE.close_for_violation(V.INVALID_JSON, detail="Expecting value")
    assert close == Close(1002, "Invalid JSON")
    assert close.detail == "Expecting value"
    custom = close_for(O.COMPLETED, reason="x" * 300)
    assert custom.code == 1000
    assert len(custom.reason) == 123
    assert Profile.ACTIONABLE.close_for_violation(V.TOO_BIG) is (
        Profile.ACTIONABLE.close_for_violation(V.TOO_BIG)
    )


def test_derive_overrides_some_entries() -> None:
    custom = Profile.ACTIONABLE.derive(
        "custom",
        violations={V.INVALID_JSON: 4400, V.POLICY: (4401, "Token expired")},
        outcomes={O.CANCELLED: Rule(4001, "Cancelled by user")},
        client_actions={4400: ReconnectAction.STOP},
    )
    assert custom.close_for_violation(V.INVALID_JSON) == Close(4400, "Invalid JSON")
    assert custom.close_for_violation(V.POLICY) == Close(4401, "Token expired")
    assert close_for(O.CANCELLED, Policy(profile=custom)) == Close(4001, "Cancelled by user")
    assert custom.client_action(4400) is ReconnectAction.STOP
    assert custom.client_action(1008) is ReconnectAction.REFRESH_CREDENTIALS
    # The original is untouched.
    assert Profile.ACTIONABLE.close_for_violation(V.INVALID_JSON).code == 1002
    assert repr(custom) == "<Profile custom>"


@pytest.mark.parametrize("bad", [1006, 1005, 999, 5000, 1015])
def test_derive_refuses_unsendable_codes(bad: int) -> None:
    with pytest.raises(ValueError, match=str(bad)):
        Profile.ACTIONABLE.derive("bad", violations={V.INVALID_JSON: bad})


def test_rule_cuts_a_long_reason_as_close_does() -> None:
    long = "é" * 100  # 200 UTF-8 bytes
    rule = Rule(4000, long)
    assert rule.reason == Close(4000, long).reason
    assert len(rule.reason.encode()) == 122  # the last whole character that fits
    with pytest.raises(TypeError, match="reason"):
        Rule(4000, b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="code"):
        Rule("4000", "x")  # type: ignore[arg-type]


def test_profile_must_cover_every_member() -> None:
    with pytest.raises(ValueError, match="violations: no rule for"):
        Profile("partial", {V.TOO_BIG: Rule(1009, "big")}, Profile.ACTIONABLE.outcomes, {})
    with pytest.raises(TypeError, match="must map to a Rule"):
        Profile(
            "bad",
            {**Profile.ACTIONABLE.violations, V.TOO_BIG: 1009},  # type: ignore[dict-item]
            Profile.ACTIONABLE.outcomes,
            {},
        )


def test_client_actions_validated() -> None:
    with pytest.raises(ValueError, match="70000"):
        Profile.ACTIONABLE.derive("bad", client_actions={70000: ReconnectAction.STOP})
    with pytest.raises(ValueError, match="stop_now"):
        Profile.ACTIONABLE.derive("bad", client_actions={4000: "stop_now"})  # type: ignore[dict-item]


def test_derive_refuses_unknown_keys() -> None:
    with pytest.raises(ValueError, match="unknown key"):
        Profile.ACTIONABLE.derive("bad", violations={"nope": 1000})  # type: ignore[dict-item]


def test_profile_named() -> None:
    assert profile_named("actionable") is Profile.ACTIONABLE
    assert profile_named("rfc-strict") is Profile.RFC_STRICT
    assert profile_named("GRAPHQL_WS") is Profile.GRAPHQL_WS
    with pytest.raises(ValueError, match="profile: unknown profile"):
        profile_named("other")


def test_violation_ids_are_stable() -> None:
    assert [v.value for v in Violation] == [
        "too_big",
        "binary_unsupported",
        "invalid_utf8",
        "invalid_json",
        "not_an_object",
        "missing_type",
        "unknown_type",
        "invalid_message",
        "policy",
        "outbound_too_big",
        "internal",
    ]
