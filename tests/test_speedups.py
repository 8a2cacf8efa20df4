"""The C accelerator gives the same actions as the pure-Python decisions, for any input.

Each property builds the same policy twice, with and without the C fast path, and compares
the two actions field by field (``Close`` equality ignores ``violation`` and ``detail``, so
those are compared explicitly). ``make test`` also runs the decision tests a second time with
``WS_CLOSE_POLICY_NO_SPEEDUPS=1``.
"""

from __future__ import annotations

import copy
import functools
import gc
import inspect
import json
import math
import os
import pickle
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from ws_close_policy import (
    DEFAULT,
    Accept,
    Close,
    InboundPolicy,
    OutboundPolicy,
    Policy,
    Profile,
    Send,
    _accel,
    decide_inbound,
    decide_outbound,
)
from ws_close_policy.inbound import inbound_decider
from ws_close_policy.outbound import outbound_decider

from .strategies import fuzz_text, json_values, messages

CODECS = ("json", "orjson", "msgspec")
NO_SPEEDUPS = bool(os.environ.get("WS_CLOSE_POLICY_NO_SPEEDUPS"))
needs_speedups = pytest.mark.skipif(
    not _accel.ENABLED, reason="the C accelerator is not in use (not built, or turned off)"
)


# --- it is there, and it can be turned off -----------------------------------------------


@pytest.mark.skipif(NO_SPEEDUPS, reason="this is the pure-Python pass of the suite")
def test_the_extension_is_in_use_unless_turned_off() -> None:
    # make test builds it with WS_CLOSE_POLICY_BUILD_EXTENSION=yes: it must be importable.
    # From an sdist without a compiler, set WS_CLOSE_POLICY_NO_SPEEDUPS=1 to run the tests.
    assert _accel.ENABLED
    assert type(Policy()._decide_inbound).__name__ == "InboundDecider"
    assert type(Policy()._decide_outbound).__name__ == "OutboundDecider"


def test_environment_variable_turns_it_off() -> None:
    check = (
        "from ws_close_policy import _accel, decide_inbound, Policy\n"
        "assert not _accel.ENABLED\n"
        "assert type(Policy()._decide_inbound).__name__ == 'function'\n"
        'print(decide_inbound(\'{"type": "a"}\').type)\n'
    )
    env = {**os.environ, "WS_CLOSE_POLICY_NO_SPEEDUPS": "1"}
    result = subprocess.run(
        [sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "a"


# --- same actions, any input ---------------------------------------------------------------


def _fields(action: object) -> tuple[object, ...]:
    if isinstance(action, Accept):
        return ("accept", action.message, action.type)
    if isinstance(action, Send):
        return ("send", action.data, action.size, action.text, action.large, action.degraded)
    assert isinstance(action, Close), action
    return ("close", action.code, action.reason, action.violation, action.outcome, action.detail)


INBOUND_VARIANTS = {
    "default": {},
    "allowed types": {"allowed_types": {"a", "job_progress", "x"}},
    "small limits": {"max_bytes": 48, "max_depth": 2},
    "type field": {"type_field": "kind"},
    "binary accepted": {"accept_binary": True},
}


Decide = Callable[[Any], Any]


def _both_paths(
    build: Callable[..., Decide], rules: object, profile: Profile
) -> tuple[Decide, Decide]:
    """The pure-Python decision and the accelerated one, for the same rules."""
    return build(rules, profile, accelerate=False), build(rules, profile)


@functools.cache
def _inbound_pair(codec: str, variant: str) -> tuple[Decide, Decide]:
    inbound = InboundPolicy(codec=codec, **INBOUND_VARIANTS[variant])  # type: ignore[arg-type]
    return _both_paths(inbound_decider, inbound, Profile.RFC_STRICT)


TRICKY = [
    "1e400",
    '{"type":"a","n":-1e400}',
    '{"type":"a","s":"\\ud800"}',
    '{"type":"a","\\udfff":1}',
    '{"type":"a","s":"\\ud83d\\ude00"}',
    ' {"type":"a"}',
    '{"type":"a"} ',
    '{"type":"a"}{}',
    '{"type":"a","n":NaN}',
    '{"type":"a","type":"b"}',
    '{"type":"caf\u00e9","name":"\u00e9t\u00e9 \U0001f600"}',  # non-ASCII text
    '{"type":"a","s":"\ud800"}',  # a lone surrogate character (not an escape)
]
tricky_json = st.one_of(
    st.sampled_from(TRICKY),
    st.builds(lambda n: '{"type":"a","s":"' + "\u00e9" * n + '"}', st.integers(10, 40)),
    st.builds(lambda n: '{"type":"\u00e9","v":' + "[" * n + "]" * n + "}", st.integers(0, 70)),
    st.builds(lambda n: '{"type":"a","v":' + "[" * n + "]" * n + "}", st.integers(0, 70)),
    st.builds(lambda n: '{"kind":"a","v":' + "[" * n + "]" * n + "}", st.integers(0, 4)),
)
inbound_data = (
    fuzz_text
    | tricky_json
    | st.builds(json.dumps, messages)
    | st.builds(lambda m: json.dumps(m, ensure_ascii=False), messages)
    | st.builds(lambda m: json.dumps(m).encode(), messages)
    | st.binary(max_size=40)
)


@pytest.mark.parametrize("variant", INBOUND_VARIANTS)
@pytest.mark.parametrize("codec", CODECS)
@given(data=inbound_data)
def test_inbound_paths_agree(codec: str, variant: str, data: str | bytes) -> None:
    slow, fast = _inbound_pair(codec, variant)
    expected, actual = _fields(slow(data)), _fields(fast(data))
    note(f"python: {expected}\nC:      {actual}")
    assert actual == expected


@pytest.mark.parametrize("variant", INBOUND_VARIANTS)
@pytest.mark.parametrize("codec", CODECS)
def test_tricky_inputs_agree(codec: str, variant: str) -> None:
    slow, fast = _inbound_pair(codec, variant)
    for data in TRICKY:
        assert _fields(fast(data)) == _fields(slow(data)), data


def _depth_message(depth: int) -> str:
    return '{"type":"a","v":' + "[" * (depth - 1) + "0" + "]" * (depth - 1) + "}"


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("max_depth", [1, 2, 64, 256])
def test_depth_limit_is_exact_on_both_paths(codec: str, max_depth: int) -> None:
    inbound = InboundPolicy(codec=codec, max_depth=max_depth)
    for accelerate in (False, True):
        decide = inbound_decider(inbound, Profile.SEED, accelerate=accelerate)
        assert isinstance(decide(_depth_message(max_depth)), Accept)
        refused = decide(_depth_message(max_depth + 1))
        assert isinstance(refused, Close), (accelerate, refused)
        assert refused.reason == "Invalid JSON"


OUTBOUND_VARIANTS = {
    "default": {},
    "small limits": {"max_bytes": 60, "warn_bytes": 30},
    "degrade": {"max_bytes": 60, "warn_bytes": 30, "degrade": lambda m: {"summary": True}},
}


@functools.cache
def _outbound_pair(codec: str, variant: str) -> tuple[Decide, Decide]:
    outbound = OutboundPolicy(codec=codec, **OUTBOUND_VARIANTS[variant])  # type: ignore[arg-type]
    return _both_paths(outbound_decider, outbound, Profile.SEED)


class Opaque:
    """Not serialisable by any codec."""


outbound_messages = (
    messages
    | json_values
    | st.dictionaries(st.text(max_size=5), st.sampled_from([math.nan, math.inf, Opaque(), {1, 2}]))
    | st.builds(lambda n: {"type": "blob", "data": "x" * n}, st.integers(0, 200))
)


@pytest.mark.parametrize("variant", OUTBOUND_VARIANTS)
@pytest.mark.parametrize("codec", CODECS)
@given(message=outbound_messages)
def test_outbound_paths_agree(codec: str, variant: str, message: Any) -> None:
    slow, fast = _outbound_pair(codec, variant)
    expected, actual = _fields(slow(message)), _fields(fast(message))
    note(f"python: {expected}\nC:      {actual}")
    assert actual == expected


# --- a decider refills its last small action only when nobody else holds it --------------


@pytest.mark.parametrize("codec", CODECS)
@given(
    batch=st.lists(
        st.tuples(st.sampled_from(["inbound", "outbound"]), st.booleans(), st.data()),
        max_size=12,
    )
)
def test_an_action_the_caller_holds_never_changes(
    codec: str, batch: list[tuple[str, bool, st.DataObject]]
) -> None:
    # Drop some results (their action may be refilled) and keep others, then check that
    # every kept one still says what the pure-Python decision says for its input.
    pairs = {
        "inbound": _inbound_pair(codec, "default"),
        "outbound": _outbound_pair(codec, "default"),
    }
    inputs = {"inbound": inbound_data, "outbound": outbound_messages}
    held = []
    for direction, keep, data in batch:
        value = data.draw(inputs[direction])
        slow, fast = pairs[direction]
        if keep:
            held.append((slow, value, fast(value)))
        else:
            fast(value)
    for slow, value, action in held:
        assert _fields(action) == _fields(slow(value))


def _kept(decider: object) -> list[object]:
    """The action a C decider keeps to refill, seen through the garbage collector."""
    return [obj for obj in gc.get_referents(decider) if type(obj) in (Accept, Send)]


def _orjson_deciders(accelerate: bool = True) -> dict[str, Decide]:
    return {
        "inbound": inbound_decider(
            InboundPolicy(codec="orjson"), Profile.SEED, accelerate=accelerate
        ),
        "outbound": outbound_decider(
            OutboundPolicy(codec="orjson"), Profile.SEED, accelerate=accelerate
        ),
    }


def _input(direction: str, kind: str, padding: int = 0) -> object:
    message = {"type": kind, "pad": "x" * padding}
    return json.dumps(message) if direction == "inbound" else message


@needs_speedups
@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_a_dropped_action_is_refilled_in_place(direction: str) -> None:
    decide, python = _orjson_deciders()[direction], _orjson_deciders(False)[direction]
    first = decide(_input(direction, "a"))
    second = decide(_input(direction, "b"))  # `first` is held: a new action
    assert second is not first
    (kept,) = _kept(decide)
    assert kept is second
    kept_id = id(kept)
    del second, kept  # now only the decider holds it
    third = decide(_input(direction, "c"))
    assert id(third) == kept_id  # the very object (still alive, so no other can have its id)
    assert _fields(third) == _fields(python(_input(direction, "c")))
    assert _fields(first) == _fields(python(_input(direction, "a")))


@needs_speedups
@pytest.mark.parametrize("direction", ["inbound", "outbound"])
def test_a_large_action_is_never_kept(direction: str) -> None:
    # The kept action holds its message until the next call: only small ones are kept.
    decide = _orjson_deciders()[direction]
    small = decide(_input(direction, "a"))
    large = decide(_input(direction, "b", padding=70_000))
    assert [kept is small for kept in _kept(decide)] == [True]
    assert _fields(large)[0] in ("accept", "send")
    del small, large
    assert all(len(str(_fields(kept))) < 65_536 for kept in _kept(decide))


class CallsBackOnDelete:
    """Put into an accepted message: when freed, it calls the decider that accepted it."""

    def __init__(self, decide: Decide, results: list[object]) -> None:
        self.decide, self.results = decide, results

    def __del__(self) -> None:
        self.results.append(self.decide('{"type":"from-del"}'))


@needs_speedups
def test_a_finalizer_that_calls_the_decider_gets_its_own_accept() -> None:
    # The application may put anything into an accepted message. Freeing the kept Accept's
    # old message runs its finalizers, which may call the same decider: whatever they get
    # must stay theirs.
    decide = _orjson_deciders()["inbound"]
    from_del: list[object] = []
    first = decide('{"type":"a"}')
    assert isinstance(first, Accept)
    first.message["callback"] = CallsBackOnDelete(decide, from_del)
    del first  # only the decider holds it, and its message with the callback
    outer = decide('{"type":"b"}')
    (inner,) = from_del
    assert inner is not outer
    assert _fields(inner) == ("accept", {"type": "from-del"}, "from-del")
    assert _fields(outer) == ("accept", {"type": "b"}, "b")


# --- the dispatcher behaves as the function it stands for ---------------------------------


@pytest.mark.parametrize("decide", [decide_inbound, decide_outbound])
def test_dispatcher_keeps_the_functions_face(decide: Any) -> None:
    function = inspect.unwrap(decide)
    assert decide.__name__ == function.__name__
    assert decide.__doc__ == function.__doc__
    assert decide.__module__ == "ws_close_policy.policy"
    assert list(inspect.signature(decide).parameters) == list(
        inspect.signature(function).parameters
    )
    assert repr(decide) == repr(function)
    assert pickle.loads(pickle.dumps(decide)) is decide  # by reference, like a function
    assert copy.deepcopy(decide) is decide


class SubPolicy(Policy):
    """A subclass: the dispatcher hands it to the Python function."""


def test_dispatcher_takes_every_call_shape() -> None:
    text = '{"type":"a"}'
    strict = Policy(profile=Profile.RFC_STRICT)
    assert decide_inbound(text) == decide_inbound(text, DEFAULT) == Accept({"type": "a"}, "a")
    assert decide_inbound(data=text, policy=strict) == Accept({"type": "a"}, "a")
    assert _fields(decide_inbound("null", policy=strict))[:2] == ("close", 1008)
    assert _fields(decide_inbound("null", SubPolicy(profile=Profile.RFC_STRICT)))[:2] == (
        "close",
        1008,
    )
    assert _fields(decide_outbound({"a": 1}, SubPolicy()))[:3] == ("send", '{"a":1}', 7)
    assert _fields(decide_outbound(message={"a": 1}))[:3] == ("send", '{"a":1}', 7)
    with pytest.raises(TypeError):
        decide_inbound()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        decide_inbound(text, DEFAULT, None)  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        decide_inbound(text, "not a policy")  # type: ignore[arg-type]


# --- the C code itself: errors, interrupts, leaks -----------------------------------------


def _raw_inbound(decode: Callable[[Any], Any], slow: Callable[[Any], Any]) -> Any:
    speedups: Any = _accel._speedups
    closes = [Close(1008, name) for name in ("object", "type", "unknown")]
    return speedups.inbound_decider(
        slow, decode, False, False, 100, 9, 4, "type", None, Accept, *closes
    )


@needs_speedups
def test_a_decoder_error_goes_to_the_python_decision() -> None:
    def refuse(data: Any) -> Any:
        raise ValueError("no")

    decide = _raw_inbound(refuse, lambda data: ("slow", data))
    assert decide('{"type":"a"}') == ("slow", '{"type":"a"}')


@needs_speedups
def test_non_ascii_text_is_measured_in_utf8_bytes_in_c() -> None:
    decide = _raw_inbound(json.loads, lambda data: ("slow", data))
    accepted = decide('{"type":"\u00e9t\u00e9"}')  # decided in C: the slow path is not called
    assert isinstance(accepted, Accept)
    assert accepted.type == "\u00e9t\u00e9"
    over = '{"type":"a","s":"' + "\u00e9" * 45 + '"}'  # 64 characters, 109 bytes
    assert len(over) <= 100 < len(over.encode())
    assert decide(over) == ("slow", over)  # over the limit in bytes: Python decides


@needs_speedups
def test_an_interrupt_is_never_swallowed() -> None:
    def interrupted(data: Any) -> Any:
        raise KeyboardInterrupt

    decide = _raw_inbound(interrupted, lambda data: pytest.fail("the slow path ran"))
    with pytest.raises(KeyboardInterrupt):
        decide('{"type":"a"}')


@needs_speedups
def test_constructors_refuse_bad_arguments() -> None:
    speedups: Any = _accel._speedups
    closes = [Close(1008)] * 3
    with pytest.raises(TypeError, match="callable"):
        speedups.inbound_decider(
            None, json.loads, False, False, 1, 1, 1, "t", None, Accept, *closes
        )
    with pytest.raises(TypeError, match="frozenset"):
        speedups.inbound_decider(len, len, False, False, 1, 1, 1, "t", {"a"}, Accept, *closes)
    with pytest.raises(ValueError, match="max_depth"):
        speedups.inbound_decider(len, len, False, False, 1, 1, 0, "t", None, Accept, *closes)
    with pytest.raises(TypeError, match="slot"):
        speedups.inbound_decider(len, len, False, False, 1, 1, 1, "t", None, Close, *closes)
    with pytest.raises(TypeError, match="slot"):
        speedups.outbound_decider(len, len, False, 1, 1, len, len, Accept)
    with pytest.raises(TypeError, match="slot"):
        speedups.dispatcher(len, Policy, "inbound_", DEFAULT)


def _growth(call: Callable[[], object], rounds: int = 3_000) -> int:
    for _ in range(200):
        call()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(rounds):
            call()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


@needs_speedups
@pytest.mark.parametrize("codec", CODECS)
def test_no_reference_leaks(codec: str) -> None:
    # A leaked reference per call keeps 3,000 objects (at least 28 bytes each) alive.
    policy = Policy(InboundPolicy(codec=codec, max_bytes=4096), OutboundPolicy(codec=codec))
    big = {"type": "a", "v": [[{"k": i}] for i in range(40)]}
    calls: list[Callable[[], object]] = [
        lambda: decide_inbound('{"type":"a","p":{"n":1.5,"s":"x"}}', policy),
        lambda: decide_inbound(json.dumps(big), policy),
        lambda: decide_inbound('{"type":1}', policy),
        lambda: decide_inbound('{"type":"caf\u00e9","s":"\u00e9t\u00e9 \U0001f600"}', policy),
        lambda: decide_inbound('{"type":"a"', policy),
        lambda: decide_outbound(big, policy),
        lambda: decide_outbound({"bad": {1, 2}}, policy),
    ]
    for call in calls:
        assert _growth(call) < 32 * 1024, call
