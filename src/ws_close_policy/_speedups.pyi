# Types of the optional C accelerator (_speedups.c); see _accel.py for how it is used.
from collections.abc import Callable
from typing import Any

from .actions import Accept, Close, Send

def inbound_decider(
    slow: Callable[[str | bytes], Accept | Close],
    decode: Callable[..., Any],
    scan: bool,
    strict: bool,
    limit: int,
    depth_floor: int,
    max_depth: int,
    type_field: str,
    allowed: frozenset[str] | None,
    accept_type: type[Accept],
    not_an_object: Close,
    missing_type: Close,
    unknown_type: Close,
    /,
) -> Callable[[str | bytes], Accept | Close]: ...
def outbound_decider(
    slow: Callable[[Any], Send | Close],
    encode: Callable[..., Any],
    chunks: bool,
    limit: int,
    warn: int,
    over_limit: Callable[[Any, int], Send | Close],
    on_error: Callable[[Exception], Close],
    send_type: type[Send],
    /,
) -> Callable[[Any], Send | Close]: ...
def dispatcher(
    function: Callable[..., Any], policy_type: type, slot: str, default_policy: object, /
) -> Callable[..., Any]: ...
