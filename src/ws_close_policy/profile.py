"""Profiles: one contract for both ends of a connection.

A :class:`Profile` says which close code and short generic reason each :class:`Violation`
(bad input from the peer, an oversized outbound message, a crash) and each :class:`Outcome`
(completed, cancelled, restarting ...) gets, and what a client should do after receiving
each code. Server and client share one profile, so they agree on the meaning of every code.

Three presets ship:

* ``Profile.ACTIONABLE`` (the default):
  every code the server sends tells the client one thing to do. Any invalid client message
  is 1002 (a client bug: stop), an oversized result is 1009 (reconnect asking for a
  summary), a user's cancellation is 1001, an auth failure after the upgrade is 1008
  (refresh credentials);
* ``Profile.RFC_STRICT``: the letter of RFC 6455 (1002 only for framing errors, 1009 only
  for received messages): invalid client messages are 1008, an oversized result 1011;
* ``Profile.GRAPHQL_WS``: the private codes of the ``graphql-transport-ws`` subprotocol.

Derive your own with :meth:`Profile.derive`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import ClassVar, TypeVar

from ._actions import Close, sendable_code
from ._arguments import instance, integer, mapping, text
from ._enums import Outcome, ReconnectAction, Violation
from .codes import CloseCode, truncate_reason

__all__ = ["PRESETS", "Rule", "profile_named"]


@dataclass(frozen=True, slots=True)
class Rule:
    """A close code and the short generic reason sent with it.

    ``code`` must be sendable (as for :class:`~ws_close_policy.Close`); ``reason`` is cut to
    123 UTF-8 bytes on a character boundary, exactly as ``Close`` cuts it.
    """

    code: int
    reason: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "code", sendable_code(self.code))
        object.__setattr__(self, "reason", truncate_reason(text(self.reason, "reason")))


_RuleLike = Rule | tuple[int, str] | int
_K = TypeVar("_K")
_E = TypeVar("_E", bound=enum.Enum)


@dataclass(frozen=True, eq=False)
class Profile:
    """Which code each violation and outcome gets, and what a client does after each code.

    ``violations`` and ``outcomes`` must cover every member of their enum. ``client_actions``
    maps received codes to a :class:`ReconnectAction`; codes it does not list are handled by
    the reconnect policy (invalid codes as an abnormal closure, private codes by band).
    Profiles compare and hash by identity.
    """

    name: str
    violations: Mapping[Violation, Rule]
    outcomes: Mapping[Outcome, Rule]
    client_actions: Mapping[int, ReconnectAction]
    _violation_closes: Mapping[Violation, Close] = field(init=False, repr=False)

    ACTIONABLE: ClassVar[Profile]
    RFC_STRICT: ClassVar[Profile]
    GRAPHQL_WS: ClassVar[Profile]

    def __post_init__(self) -> None:
        text(self.name, "name")
        violations = _complete(Violation, self.violations, "violations")
        outcomes = _complete(Outcome, self.outcomes, "outcomes")
        actions = {}
        for code, action in dict(mapping(self.client_actions, "client_actions")).items():
            if not 0 <= integer(code, "client_actions") <= 65535:
                raise ValueError(f"client_actions: code {code!r} is not in 0-65535")
            try:
                actions[code] = ReconnectAction(action)
            except ValueError:
                raise ValueError(f"client_actions: {action!r} is not a ReconnectAction") from None
        object.__setattr__(self, "violations", MappingProxyType(violations))
        object.__setattr__(self, "outcomes", MappingProxyType(outcomes))
        object.__setattr__(self, "client_actions", MappingProxyType(actions))
        # Closes are immutable: build each once and hand out the same object every time.
        closes = {v: Close(r.code, r.reason, violation=v) for v, r in violations.items()}
        object.__setattr__(self, "_violation_closes", MappingProxyType(closes))

    def __repr__(self) -> str:
        return f"<Profile {self.name}>"

    def close_for_violation(self, violation: Violation, detail: str | None = None) -> Close:
        """The close for ``violation``; ``detail`` is kept for logs, never sent."""
        close = self._violation_closes[instance(violation, Violation, "violation")]
        return close if detail is None else replace(close, detail=detail)

    def client_action(self, code: int) -> ReconnectAction | None:
        """The action the profile names for ``code``, or ``None`` when it names none."""
        return self.client_actions.get(code)

    def derive(
        self,
        name: str,
        *,
        violations: Mapping[Violation, _RuleLike] | None = None,
        outcomes: Mapping[Outcome, _RuleLike] | None = None,
        client_actions: Mapping[int, ReconnectAction] | None = None,
    ) -> Profile:
        """A new profile: this one with some entries overridden.

        An override is a :class:`Rule`, a ``(code, reason)`` pair, or a bare code (which
        keeps this profile's reason)::

            CUSTOM = Profile.ACTIONABLE.derive(
                "custom",
                violations={Violation.INVALID_JSON: 4400},
                client_actions={4400: ReconnectAction.STOP},
            )
        """
        return Profile(
            name,
            _override(self.violations, violations or {}, "violations"),
            _override(self.outcomes, outcomes or {}, "outcomes"),
            {**self.client_actions, **(client_actions or {})},
        )


def _to_rule(value: _RuleLike, current: Rule) -> Rule:
    if isinstance(value, Rule):
        return value
    if isinstance(value, tuple):
        return Rule(*value)
    return Rule(integer(value, "code"), current.reason)


def _override(
    base: Mapping[_K, Rule], changes: Mapping[_K, _RuleLike], name: str
) -> dict[_K, Rule]:
    merged = dict(base)
    for key, value in mapping(changes, name).items():
        if key not in merged:
            raise ValueError(f"{name}: unknown key {key!r}")
        merged[key] = _to_rule(value, merged[key])
    return merged


def _complete(kind: type[_E], rules: Mapping[_E, Rule], name: str) -> dict[_E, Rule]:
    missing = [member.name for member in kind if member not in mapping(rules, name)]
    if missing:
        raise ValueError(f"{name}: no rule for {', '.join(missing)}")
    result: dict[_E, Rule] = {}
    for key, rule in rules.items():
        if not isinstance(rule, Rule):
            raise TypeError(f"{name}: {key!r} must map to a Rule, not {rule!r}")
        result[kind(key)] = rule
    return result


# --- presets -------------------------------------------------------------------------------

_C = CloseCode
_A = ReconnectAction

_REASONS: dict[Violation | Outcome, str] = {
    Violation.TOO_BIG: "Message too large",
    Violation.BINARY_UNSUPPORTED: "Binary messages not supported",
    Violation.INVALID_UTF8: "Invalid UTF-8",
    Violation.INVALID_JSON: "Invalid JSON",
    Violation.NOT_AN_OBJECT: "Message must be object",
    Violation.MISSING_TYPE: 'Missing required "type" field',
    Violation.UNKNOWN_TYPE: "Unknown message type",
    Violation.INVALID_MESSAGE: "Invalid message",
    Violation.POLICY: "Policy violation",
    Violation.OUTBOUND_TOO_BIG: "Message too large",
    Violation.INTERNAL: "Internal error",
    Outcome.COMPLETED: "Completed",
    Outcome.CANCELLED: "Cancelled",
    Outcome.FAILED: "Internal error",
    Outcome.GOING_AWAY: "Going away",
    Outcome.RESTARTING: "Service restarting",
    Outcome.OVERLOADED: "Try again later",
    Outcome.POLICY_VIOLATION: "Authentication required",
}


_VO = TypeVar("_VO", Violation, Outcome)


def _rules(codes: Mapping[_VO, int]) -> dict[_VO, Rule]:
    return {key: Rule(code, _REASONS[key]) for key, code in codes.items()}


_BAD_MESSAGE = (
    Violation.INVALID_JSON,
    Violation.NOT_AN_OBJECT,
    Violation.MISSING_TYPE,
    Violation.UNKNOWN_TYPE,
    Violation.INVALID_MESSAGE,
)

_ACTIONABLE_CLIENT: dict[int, ReconnectAction] = {
    _C.NORMAL_CLOSURE: _A.STOP,
    _C.GOING_AWAY: _A.STOP,  # ACTIONABLE uses 1001 for a user's cancellation
    _C.PROTOCOL_ERROR: _A.STOP,  # the client sent something wrong: a bug, not transient
    _C.UNSUPPORTED_DATA: _A.STOP,
    _C.NO_STATUS_RCVD: _A.RETRY,
    _C.ABNORMAL_CLOSURE: _A.RETRY,
    _C.INVALID_DATA: _A.STOP,
    _C.POLICY_VIOLATION: _A.REFRESH_CREDENTIALS,
    _C.MESSAGE_TOO_BIG: _A.REDUCE_PAYLOAD,
    _C.MANDATORY_EXTENSION: _A.STOP,
    _C.INTERNAL_ERROR: _A.RETRY,
    _C.SERVICE_RESTART: _A.RETRY,
    _C.TRY_AGAIN_LATER: _A.RETRY,
    _C.BAD_GATEWAY: _A.RETRY,
    _C.TLS_HANDSHAKE: _A.STOP,
}

Profile.ACTIONABLE = Profile(
    "ACTIONABLE",
    _rules(
        {
            Violation.TOO_BIG: _C.MESSAGE_TOO_BIG,
            Violation.BINARY_UNSUPPORTED: _C.UNSUPPORTED_DATA,
            Violation.INVALID_UTF8: _C.INVALID_DATA,
            **dict.fromkeys(_BAD_MESSAGE, _C.PROTOCOL_ERROR),
            Violation.POLICY: _C.POLICY_VIOLATION,
            Violation.OUTBOUND_TOO_BIG: _C.MESSAGE_TOO_BIG,
            Violation.INTERNAL: _C.INTERNAL_ERROR,
        }
    ),
    _rules(
        {
            Outcome.COMPLETED: _C.NORMAL_CLOSURE,
            Outcome.CANCELLED: _C.GOING_AWAY,
            Outcome.FAILED: _C.INTERNAL_ERROR,
            Outcome.GOING_AWAY: _C.GOING_AWAY,
            Outcome.RESTARTING: _C.SERVICE_RESTART,
            Outcome.OVERLOADED: _C.TRY_AGAIN_LATER,
            Outcome.POLICY_VIOLATION: _C.POLICY_VIOLATION,
        }
    ),
    _ACTIONABLE_CLIENT,
)

Profile.RFC_STRICT = Profile.ACTIONABLE.derive(
    "RFC_STRICT",
    # RFC 6455 keeps 1002 for framing errors and 1009 for *received* messages.
    violations={
        **dict.fromkeys(_BAD_MESSAGE, _C.POLICY_VIOLATION),
        Violation.OUTBOUND_TOO_BIG: _C.INTERNAL_ERROR,
    },
    outcomes={Outcome.CANCELLED: _C.NORMAL_CLOSURE},
    # 1001 only means a server going away here, so it is worth coming back.
    client_actions={_C.GOING_AWAY: _A.RETRY},
)

# graphql-ws (the graphql-transport-ws subprotocol): 4400 bad request, 4401 unauthorised,
# 4403 forbidden, 4406 bad subprotocol, 4408 init timeout, 4409 duplicate subscriber,
# 4429 too many init requests, 4500 internal error.
Profile.GRAPHQL_WS = Profile.ACTIONABLE.derive(
    "GRAPHQL_WS",
    violations={
        Violation.BINARY_UNSUPPORTED: 4400,
        **dict.fromkeys(_BAD_MESSAGE, 4400),
        Violation.POLICY: (4403, "Forbidden"),
        Violation.OUTBOUND_TOO_BIG: 4500,
        Violation.INTERNAL: 4500,
    },
    outcomes={
        Outcome.CANCELLED: _C.NORMAL_CLOSURE,
        Outcome.FAILED: 4500,
        Outcome.POLICY_VIOLATION: (4403, "Forbidden"),
    },
    client_actions={
        4400: _A.STOP,
        4401: _A.REFRESH_CREDENTIALS,
        4403: _A.REFRESH_CREDENTIALS,
        4406: _A.STOP,
        4408: _A.RETRY,
        4409: _A.STOP,
        4429: _A.RETRY,
        4500: _A.RETRY,
    },
)

#: The presets by name.
PRESETS: Mapping[str, Profile] = MappingProxyType(
    {p.name: p for p in (Profile.ACTIONABLE, Profile.RFC_STRICT, Profile.GRAPHQL_WS)}
)


def profile_named(name: str) -> Profile:
    """A preset by name, case-insensitive: ``"actionable"``, ``"rfc_strict"`` or
    ``"graphql_ws"``; ``-`` may stand for ``_``."""
    key = text(name, "name").upper().replace("-", "_")
    try:
        return PRESETS[key]
    except KeyError:
        raise ValueError(
            f"profile: unknown profile {name!r}; choose from {', '.join(PRESETS)}"
        ) from None
