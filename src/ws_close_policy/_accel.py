"""The optional C accelerator (``_speedups.c``): which decisions it takes over.

The C deciders finish only the common case, a well-formed message that is accepted (text
within the limit, a built-in codec, no per-message Python hooks) or a ``dict`` that is
serialised and sent, and hand everything else to the pure-Python decision they wrap. The
only refusals made in C are the three structure closes, and they are the very ``Close``
objects the Python decision prepared; the two paths give equal actions (property-tested in
``tests/test_speedups.py``).

The extension is built when the package is installed from source with a C compiler; without
it everything works the same, only slower. ``WS_CLOSE_POLICY_NO_SPEEDUPS=1`` in the
environment (read at import) turns it off.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

from .actions import Accept, Close, Send
from .codecs import Codec, JsonCodec, MsgspecCodec, OrjsonCodec

__all__ = ["ENABLED", "accelerate_inbound", "accelerate_outbound", "dispatch"]

F = TypeVar("F", bound=Callable[..., Any])


def _load() -> ModuleType | None:
    if os.environ.get("WS_CLOSE_POLICY_NO_SPEEDUPS"):
        return None
    try:
        from . import _speedups
    except ImportError:  # pragma: no cover - installed without a C compiler
        return None
    return _speedups


_speedups = _load()
#: Whether the C accelerator is in use.
ENABLED = _speedups is not None


def _inbound_decoder(codec: Codec | None) -> tuple[Callable[..., Any], bool] | None:
    """(decode, is_stdlib_scanner) for a built-in codec the C path can call, else None."""
    if isinstance(codec, JsonCodec):
        return (codec.fast_scan, True) if codec.fast_scan is not None else None
    if isinstance(codec, OrjsonCodec):
        return codec.fast_decode, False
    if isinstance(codec, MsgspecCodec) and codec.type is Any:
        return codec.fast_decode, False
    return None


def accelerate_inbound(
    decide: Callable[[str | bytes], Accept | Close],
    *,
    codec: Codec | None,
    hooks: bool,
    limit: int,
    max_depth: int,
    type_field: str,
    allowed: frozenset[str] | None,
    closes: tuple[Close, Close, Close],
) -> Callable[[str | bytes], Accept | Close]:
    """``decide`` with its common case in C, or ``decide`` itself when that cannot be.

    ``hooks``: the policy runs Python per message (validators, duplicate keys), which the C
    path does not; ``closes``: the profile's NOT_AN_OBJECT, MISSING_TYPE and UNKNOWN_TYPE.
    """
    decoder = _inbound_decoder(codec)
    if _speedups is None or hooks or decoder is None:
        return decide
    decode, scan = decoder
    fast: Callable[[str | bytes], Accept | Close] = _speedups.inbound_decider(
        decide,
        decode,
        scan,
        scan,  # the stdlib scanner needs the strict checks (inf, lone surrogates)
        limit,
        2 * max_depth + 1,
        max_depth,
        type_field,
        allowed,
        Accept,
        *closes,
    )
    return fast


def accelerate_outbound(
    decide: Callable[[Any], Send | Close],
    *,
    codec: Codec,
    limit: int,
    warn: int,
    over_limit: Callable[[Any, int], Send | Close],
    on_error: Callable[[Exception], Close],
) -> Callable[[Any], Send | Close]:
    """``decide`` with its common case (a ``dict``) in C, or ``decide`` itself."""
    encode: Callable[..., Any]
    if _speedups is None:
        return decide
    if isinstance(codec, JsonCodec) and codec.fast_encode_chunks is not None:
        encode, chunks = codec.fast_encode_chunks, True  # returns chunks of str to join
    elif isinstance(codec, OrjsonCodec | MsgspecCodec):
        encode, chunks = codec.fast_encode, False
    else:
        return decide
    fast: Callable[[Any], Send | Close] = _speedups.outbound_decider(
        decide, encode, chunks, limit, warn, over_limit, on_error, Send
    )
    return fast


def dispatch(policy_type: type, slot: str) -> Callable[[F], F]:
    """Decorate ``decide_*(data, policy=DEFAULT)``: call ``policy.<slot>(data)`` from C.

    The function keeps its name, docstring and signature (``__wrapped__``); any call the C
    dispatcher does not take (keywords, a ``Policy`` subclass) runs the function itself.
    """

    def decorate(function: F) -> F:
        if _speedups is None:
            return function
        (default,) = function.__defaults__ or (None,)
        dispatcher = _speedups.dispatcher(function, policy_type, slot, default)
        functools.update_wrapper(dispatcher, function)
        return dispatcher  # type: ignore[no-any-return]

    return decorate
