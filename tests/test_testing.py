"""The message strategies of ws_close_policy.testing, checked against the decisions they
describe: a valid message is accepted, an invalid one closes with its violation, an outbound
message near a limit lands on the right side of it. Under every preset and codec."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ws_close_policy import (
    Accept,
    Close,
    InboundPolicy,
    OutboundPolicy,
    Policy,
    Send,
    decide_inbound,
    decide_outbound,
)
from ws_close_policy.profile import PRESETS
from ws_close_policy.testing import invalid_messages, outbound_messages, valid_messages

CODECS = ("json", "orjson", "msgspec")


def _policies() -> list[Policy]:
    return [
        Policy(InboundPolicy(codec=codec, **extra), profile=profile)
        for codec in CODECS
        for profile in PRESETS.values()
        for extra in (
            {},
            {"allowed_types": {"ping", "cancel"}, "accept_binary": True, "max_depth": 3},
            {"max_bytes": 40, "type_field": "op"},
            {"max_depth": 1},
            {"allowed_types": {"a"}, "max_bytes": 12},  # only '{"type":"a"}' fits
        )
    ]


POLICIES = _policies()


@pytest.mark.parametrize("policy", POLICIES, ids=repr)
@settings(max_examples=15)
@given(data=st.data())
def test_valid_messages_are_accepted(policy: Policy, data: st.DataObject) -> None:
    text = data.draw(valid_messages(policy))
    result = decide_inbound(text, policy)
    assert isinstance(result, Accept), result


def test_valid_messages_pass_validators() -> None:
    def small(message: Any) -> bool:  # refuses about half of what the strategy builds
        return len(message) <= 2

    policy = Policy(InboundPolicy(allowed_types={"n"}, validators={"n": small}))

    @given(valid_messages(policy))
    def check(text: str) -> None:
        assert isinstance(decide_inbound(text, policy), Accept)

    check()


@pytest.mark.parametrize("policy", POLICIES, ids=repr)
@settings(max_examples=25)
@given(data=st.data())
def test_invalid_messages_close_with_their_violation(policy: Policy, data: st.DataObject) -> None:
    message, violation = data.draw(invalid_messages(policy))
    result = decide_inbound(message, policy)
    assert isinstance(result, Close), (message, result)
    assert result.violation is violation, (message, result)
    assert result == policy.profile.close_for_violation(violation)


def test_strategies_refuse_policies_they_cannot_serve() -> None:
    with pytest.raises(ValueError, match="raw"):
        invalid_messages(Policy(InboundPolicy(codec="raw")))
    with pytest.raises(ValueError, match="raw"):
        valid_messages(Policy(InboundPolicy(codec="raw")))
    with pytest.raises(ValueError, match="allowed_types"):
        valid_messages(Policy(InboundPolicy(allowed_types=set())))


def test_valid_messages_with_fields_for_a_strict_validator() -> None:
    def counted(message: Any) -> bool:
        return isinstance(message.get("n"), int) and message["n"] >= 0

    policy = Policy(InboundPolicy(allowed_types={"count"}, validators={"count": counted}))
    fields = st.fixed_dictionaries({"n": st.integers(min_value=0)})

    @given(valid_messages(policy, fields=fields))
    def check(text: str) -> None:
        assert isinstance(decide_inbound(text, policy), Accept)

    check()


@pytest.mark.parametrize("codec", CODECS)
@given(data=st.data())
def test_outbound_messages_sit_on_the_limits(codec: str, data: st.DataObject) -> None:
    policy = Policy(outbound=OutboundPolicy(max_bytes=300, warn_bytes=120, codec=codec))
    message = data.draw(outbound_messages(policy))
    size = len(policy.outbound.encoder.encode(message))
    assert size in {119, 120, 121, 299, 300, 301}
    result = decide_outbound(message, policy)
    if size > 300:
        assert isinstance(result, Close)
    else:
        assert isinstance(result, Send)
        assert result.size == size
        assert result.large is (size > 120)
