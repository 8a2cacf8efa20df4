"""The configuration of one endpoint: ``InboundPolicy``, ``OutboundPolicy`` and ``Policy``.

Every argument is checked when the policy is built (``TypeError`` for a wrong type,
``ValueError`` for a bad value, both naming the argument), so a decision never meets a bad
setting. Policies are immutable and hashable; build one per kind of endpoint and share it.
The decisions that use them live in :mod:`ws_close_policy._inbound` and
:mod:`ws_close_policy._outbound`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

from ._arguments import boolean, callable_or_none, instance, mapping, positive_int, text
from .codecs import Codec, resolve_codec
from .profile import Profile

__all__ = [
    "DEFAULT",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_OUTBOUND_BYTES",
    "DEFAULT_WARN_BYTES",
    "MAX_DEPTH_LIMIT",
    "Degrade",
    "Validator",
    "server_max_size",
]

#: The default inbound limit, 1 MiB: the same as the ``websockets`` library's ``max_size``.
DEFAULT_MAX_BYTES: Final = 1_048_576
#: Deepest ``max_depth`` allowed: every decoder refuses deeper input by itself (~1000).
MAX_DEPTH_LIMIT: Final = 256
#: 32 MiB: a common platform limit for one WebSocket message (Cloudflare's, for one).
DEFAULT_MAX_OUTBOUND_BYTES: Final = 33_554_432
#: 1 MB: above this a message is flagged ``large`` (slow on mobile networks).
DEFAULT_WARN_BYTES: Final = 1_000_000

#: A validator receives the decoded message and returns whether it is valid. An exception
#: counts as invalid.
Validator = Callable[[Any], bool]
#: Returns a smaller (summary-only) form of a message, or ``None`` when there is none.
Degrade = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class InboundPolicy:
    """How received messages are checked.

    :param max_bytes: largest accepted message in UTF-8 bytes (default 1 MiB, 1_048_576;
        at most ``sys.maxsize``, the largest size any Python object can have).
    :param accept_binary: accept binary frames (as UTF-8 JSON) instead of closing with the
        profile's ``BINARY_UNSUPPORTED`` code (default False).
    :param codec: ``"json"`` (stdlib, default), ``"orjson"``, ``"msgspec"``, ``"raw"`` (no
        decoding: ``Accept(message=data, type=None)``; binary data is passed through as is),
        or an object implementing :class:`~ws_close_policy.codecs.Codec`.
    :param type_field: the field naming the message type (default ``"type"``).
    :param allowed_types: the accepted types, or ``None`` for any non-empty string.
    :param validators: per type, a callable returning whether the message is valid; a false
        result or an exception is ``Violation.INVALID_MESSAGE``.
    :param max_depth: deepest accepted nesting of arrays and objects (default 64, at most 256).
    :param reject_duplicate_keys: treat an object with a repeated key as invalid JSON
        (default False: the last value wins, with every codec). Checked by a second, stdlib
        parse of the text, whatever the codec.

    ``decoder`` is the codec that decodes, resolved from ``codec`` (``None`` for ``"raw"``).
    """

    max_bytes: int = DEFAULT_MAX_BYTES
    accept_binary: bool = False
    codec: str | Codec = "json"
    type_field: str = "type"
    allowed_types: Collection[str] | None = None
    validators: Mapping[str, Validator] = field(default_factory=dict, hash=False)
    max_depth: int = 64
    reject_duplicate_keys: bool = False
    decoder: Codec | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        positive_int(self.max_bytes, "max_bytes", upper=sys.maxsize)
        positive_int(self.max_depth, "max_depth", upper=MAX_DEPTH_LIMIT)
        boolean(self.accept_binary, "accept_binary")
        boolean(self.reject_duplicate_keys, "reject_duplicate_keys")
        if not text(self.type_field, "type_field"):
            raise ValueError("type_field must not be empty")
        object.__setattr__(self, "allowed_types", _type_set(self.allowed_types))
        object.__setattr__(self, "validators", _validator_map(self.validators))
        decoder = None if self.codec == "raw" else resolve_codec(self.codec)
        object.__setattr__(self, "decoder", decoder)


def _type_set(types: Collection[str] | None) -> frozenset[str] | None:
    if types is None:
        return None
    if isinstance(types, str) or not isinstance(types, Collection):
        raise TypeError(f"allowed_types must be a collection of str, not {type(types).__name__}")
    result = frozenset(types)
    for kind in result:
        if not text(kind, "allowed_types"):
            raise ValueError("allowed_types must not hold an empty str")
    return result


def _validator_map(validators: Mapping[str, Validator]) -> Mapping[str, Validator]:
    mapping(validators, "validators")
    for name, check in validators.items():
        text(name, "validators")
        if not callable(check):
            raise TypeError(f"validators: {name!r} must map to a callable, not {check!r}")
    return MappingProxyType(dict(validators))


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """How messages are serialised and measured before sending.

    :param max_bytes: largest message sent, in UTF-8 bytes (default 33_554_432, 32 MiB);
        a message of exactly this size is sent.
    :param warn_bytes: above this size ``Send.large`` is true (default 1_000_000; left at
        its default it follows a smaller ``max_bytes``); at most ``max_bytes``.
    :param codec: ``"json"`` (stdlib, default), ``"orjson"``, ``"msgspec"`` or a
        :class:`~ws_close_policy.codecs.Codec`.
    :param degrade: called once with a message over ``max_bytes``; returns a smaller form to
        send instead (e.g. a summary-only payload) or ``None``.

    ``encoder`` is the codec that encodes, resolved from ``codec``.
    """

    max_bytes: int = DEFAULT_MAX_OUTBOUND_BYTES
    warn_bytes: int = DEFAULT_WARN_BYTES
    codec: str | Codec = "json"
    degrade: Degrade | None = None
    encoder: Codec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        positive_int(self.max_bytes, "max_bytes", upper=sys.maxsize)
        positive_int(self.warn_bytes, "warn_bytes", upper=sys.maxsize)
        if self.warn_bytes == DEFAULT_WARN_BYTES > self.max_bytes:  # the default follows
            object.__setattr__(self, "warn_bytes", self.max_bytes)
        if self.warn_bytes > self.max_bytes:
            raise ValueError(
                f"warn_bytes ({self.warn_bytes}) must not exceed max_bytes ({self.max_bytes})"
            )
        callable_or_none(self.degrade, "degrade")
        if self.codec == "raw":
            raise ValueError("codec 'raw' is inbound-only; send str or bytes directly instead")
        object.__setattr__(self, "encoder", resolve_codec(self.codec))


@dataclass(frozen=True, slots=True)
class Policy:
    """The whole policy of one endpoint: ``Policy()`` is the default.

    :param inbound: how received messages are checked (default ``InboundPolicy()``).
    :param outbound: how sent messages are measured (default ``OutboundPolicy()``).
    :param profile: which code each situation gets (default ``Profile.ACTIONABLE``).
    """

    inbound: InboundPolicy = field(default_factory=InboundPolicy)
    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    profile: Profile = Profile.ACTIONABLE

    def __post_init__(self) -> None:
        instance(self.inbound, InboundPolicy, "inbound")
        instance(self.outbound, OutboundPolicy, "outbound")
        instance(self.profile, Profile, "profile")


#: ``Policy()``: the default of every decision.
DEFAULT: Final = Policy()


def server_max_size(
    policy: Policy = DEFAULT,
    yours: int | None = None,
    *,
    what: str = "message",
    name: str = "max_size",
) -> int:
    """The message limit to give the server: twice ``InboundPolicy.max_bytes``, or ``yours``
    (your own setting for the server; ``None``: none) when that is stricter.

    A message over the policy's limit but within this one reaches the policy, which closes
    with its own code and reason (1009 "Message too large" under the default profile, no
    byte counts); a larger one is refused by the server itself, from its frame header,
    before it is buffered, with the server's own reason. A limit of yours below the policy's
    own is a ``ValueError`` naming ``name`` (your server's argument) and ``what`` (a message
    or a fragment limit): the server would refuse messages the policy accepts, in its own
    words.
    """
    limit = 2 * instance(policy, Policy, "policy").inbound.max_bytes
    if yours is None:
        return limit
    if positive_int(yours, name) < policy.inbound.max_bytes:
        raise ValueError(
            f"{name}: a {what} limit of {yours} bytes is below the policy's inbound limit "
            f"({policy.inbound.max_bytes} bytes): the server would refuse messages the policy "
            "accepts, with its own reason; lower InboundPolicy.max_bytes instead"
        )
    return min(yours, limit)
