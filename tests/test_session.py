"""Session: closes at most once, sends nothing after a close, counts, emits one CloseEvent;
and the one classifier of how a connection ended (Disconnect)."""

from __future__ import annotations

import tracemalloc
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from ws_close_policy import (
    Accept,
    Close,
    CloseEvent,
    InboundPolicy,
    OutboundPolicy,
    Outcome,
    Policy,
    Send,
    Session,
    Violation,
)
from ws_close_policy.codes import CODE_CLASSES, LABELS, CloseCode, close_label, is_sendable
from ws_close_policy.metrics import CloseCounter, close_labels
from ws_close_policy.session import Disconnect, State


def peer(code: int | None, reason: str = "") -> Disconnect:
    """The peer's close frame (``None``: one without a code), as websockets reports it."""
    return Disconnect.from_frames((1005 if code is None else code, reason), None)


def server(code: int, reason: str = "") -> Disconnect:
    """This side's server closed first, by itself."""
    return Disconnect.from_frames(None, (code, reason))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _session(**kwargs: Any) -> tuple[Session, list[CloseEvent], FakeClock]:
    events: list[CloseEvent] = []
    clock = FakeClock()
    return Session(clock=clock, observer=events.append, **kwargs), events, clock


def test_refresh_token_with_bad_token_closes_1008() -> None:
    session, events, clock = _session()
    accepted = session.receive('{"type": "refresh_token", "token": "bad"}')
    assert isinstance(accepted, Accept)
    # The application checks the token and finds it refused: a post-upgrade policy violation.
    close = session.finish(Outcome.POLICY_VIOLATION)
    assert close is not None
    assert close.code == 1008
    assert close.reason == "Authentication required"
    clock.now += 2.5
    session.ended(peer(1008, "Authentication required"))
    assert len(events) == 1
    event = events[0]
    assert event.code == 1008
    assert event.label == "policy_violation"
    assert event.closed_by == "local"
    assert event.outcome is Outcome.POLICY_VIOLATION
    assert event.duration == 2.5
    assert event.messages_in == 1


def test_invalid_message_closes_and_then_ignores_everything() -> None:
    session, events, _ = _session()
    close = session.receive("{not json")
    assert isinstance(close, Close)
    assert close.code == 1002
    assert session.state is State.CLOSING
    assert session.receive('{"type": "ping"}') is None
    assert session.send({"type": "pong"}) is None
    assert session.finish(Outcome.COMPLETED) is None
    assert session.fail(RuntimeError("x")) is None
    assert session.ended() is session.ended()  # made once
    assert len(events) == 1
    assert events[0].violation is Violation.INVALID_JSON
    assert events[0].closed_by == "local"


def test_fail_never_leaks_exception_text() -> None:
    session, events, _ = _session()
    close = session.fail(RuntimeError("db password=hunter2"))
    assert close is not None
    assert close.code == 1011
    assert "hunter2" not in close.reason
    assert close.detail is not None
    assert "hunter2" in close.detail
    session.ended()
    assert events[0].outcome is Outcome.FAILED


def test_peer_closes_first() -> None:
    session, events, _ = _session()
    session.send({"type": "job_started"})
    session.ended(peer(4001, "bye"))
    assert session.state is State.CLOSED
    assert session.send({"type": "x"}) is None
    assert events[0].code == 4001
    assert events[0].label == "private"
    assert events[0].closed_by == "peer"
    assert events[0].reason == "bye"
    assert events[0].messages_out == 1


def test_peer_close_without_code_is_1005_and_drop_is_1006() -> None:
    session, events, _ = _session()
    session.ended(peer(None))
    assert events[0].code == 1005
    session2, events2, _ = _session()
    session2.ended()
    assert events2[0].code == 1006
    assert events2[0].closed_by == "transport"
    assert events2[0].label == "abnormal_closure"


def test_counts_bytes_each_way() -> None:
    session, _, _ = _session()
    session.receive('{"type": "é"}')
    sent = session.send({"type": "pong"})
    assert isinstance(sent, Send)
    assert session.bytes_in == len('{"type": "é"}'.encode())
    assert session.bytes_out == sent.size
    assert (session.messages_in, session.messages_out) == (1, 1)


def test_a_huge_non_ascii_message_is_refused_without_being_copied() -> None:
    # 32 Mi characters of two bytes each: encoding it once would allocate 64 MiB. The
    # length alone decides, so the refusal allocates nothing of its size (the time it
    # takes is measured in benchmarks/inbound.py, not here).
    huge = "é" * (32 * 1024 * 1024)
    session, _, _ = _session()
    tracemalloc.start()
    try:
        refused = session.receive(huge)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(refused, Close)
    assert refused.code == 1009
    assert peak < 64 * 1024, peak
    assert session.bytes_in == len(huge)  # characters: a lower bound, never encoded to count


def test_outbound_too_big_closes_via_session() -> None:
    session, _, _ = _session(policy=Policy(outbound=OutboundPolicy(max_bytes=10, warn_bytes=5)))
    close = session.send({"type": "much too long"})
    assert isinstance(close, Close)
    assert close.code == 1009
    assert session.messages_out == 0


def test_observer_error_is_kept_not_raised() -> None:
    def broken(event: CloseEvent) -> None:
        raise RuntimeError("metrics down")

    session = Session(observer=broken)
    session.ended()
    assert isinstance(session.observer_error, RuntimeError)
    assert session.event is not None


def test_session_validates_arguments() -> None:
    with pytest.raises(TypeError, match="policy"):
        Session(policy="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock"):
        Session(clock=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="observer"):
        Session(observer=3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="outcome"):
        Session().finish("done")  # type: ignore[arg-type]


def test_session_reads_no_clock_of_its_own() -> None:
    events: list[CloseEvent] = []
    session = Session(observer=events.append)
    session.ended()
    assert events[0].duration is None


def test_close_counter() -> None:
    counter = CloseCounter()
    for code in (1000, 1000, 4001, 4999, 3001, 1, 70000):
        session = Session(observer=counter)
        session.ended(peer(code))
    assert counter.counts["normal_closure"] == 2
    assert counter.counts["private"] == 2
    assert counter.counts["registered"] == 1
    assert counter.counts["invalid"] == 2
    assert counter.total == 7
    assert counter.by_closer["private", "peer"] == 2
    snapshot = counter.snapshot()
    assert set(snapshot) == LABELS
    assert snapshot["policy_violation"] == 0


def test_close_labels_come_from_bounded_sets() -> None:
    session, events, _ = _session()
    session.receive("not json")
    session.ended(peer(70000, "anything a peer chose"))
    assert close_labels(events[0]) == {
        "label": "protocol_error",
        "code_class": "client_error",
        "closed_by": "local",
        "violation": str(events[0].violation),
    }
    other, others, _ = _session()
    other.ended(peer(70000, "anything a peer chose"))
    labels = close_labels(others[0])
    assert (labels["label"], labels["violation"]) == ("invalid", "none")
    assert labels["label"] in LABELS
    assert labels["code_class"] in CODE_CLASSES


@pytest.mark.parametrize("code", [0, 999, 1016, 2999, 5000, 65535, -1])
def test_labels_bounded(code: int) -> None:
    assert close_label(code) == "invalid"


inbound_data = st.sampled_from(
    ['{"type": "ping"}', "{bad", "null", b"\x00", '{"type": "x", "pad": "' + "y" * 80 + '"}']
)
outbound_messages = st.sampled_from(
    [{"type": "pong"}, {"type": "big", "pad": "z" * 300}, {"type": "bad", "v": object()}, "text"]
)


class SessionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[CloseEvent] = []
        self.clock = FakeClock()
        policy = Policy(
            InboundPolicy(max_bytes=64),
            OutboundPolicy(max_bytes=200, warn_bytes=100),
        )
        self.session = Session(policy, clock=self.clock, observer=self.events.append)
        self.closes: list[Close] = []
        self.sent: list[Send] = []
        self.accepted = 0
        self.ended = False

    def _record(self, result: Accept | Send | Close | None) -> None:
        if isinstance(result, Close):
            assert is_sendable(result.code)
            assert len(result.reason.encode()) <= 123
            self.closes.append(result)
        elif isinstance(result, Send):
            self.sent.append(result)
        elif isinstance(result, Accept):
            self.accepted += 1

    @rule(data=inbound_data)
    def receive(self, data: str | bytes) -> None:
        was_open = self.session.is_open
        result = self.session.receive(data)
        if not was_open:
            assert result is None
        self._record(result)

    @rule(message=outbound_messages)
    def send(self, message: Any) -> None:
        was_open = self.session.is_open
        result = self.session.send(message)
        if not was_open:
            assert result is None
        self._record(result)

    @rule(outcome=st.sampled_from(list(Outcome)))
    def finish(self, outcome: Outcome) -> None:
        self._record(self.session.finish(outcome))

    @rule()
    def fail(self) -> None:
        self._record(self.session.fail(ValueError("boom")))

    @rule(code=st.one_of(st.none(), st.integers(0, 70000)), seconds=st.floats(0, 10))
    def peer_closed(self, code: int | None, seconds: float) -> None:
        self.clock.now += seconds
        self.session.ended(peer(code, "peer"))
        self.ended = True

    @rule(code=st.integers(1000, 4999))
    def server_closed(self, code: int) -> None:
        self.session.ended(server(code, "server"))
        self.ended = True

    @rule(code=st.none() | st.integers(-1, 70000), reason=st.text(max_size=5))
    def server_reported(self, code: int | None, reason: str) -> None:
        self.session.ended(Disconnect.from_code(code, reason))
        self.ended = True

    @precondition(lambda self: not self.ended)
    @rule()
    def transport_closed(self) -> None:
        self.session.ended()
        self.ended = True

    @invariant()
    def never_two_closes(self) -> None:
        assert len(self.closes) <= 1

    @invariant()
    def counts_consistent(self) -> None:
        s = self.session
        assert s.messages_out == len(self.sent)
        assert s.bytes_out == sum(send.size for send in self.sent)
        assert s.messages_in >= self.accepted

    @invariant()
    def one_event_with_bounded_label(self) -> None:
        assert len(self.events) == (1 if self.ended else 0)
        for event in self.events:
            assert event.label in LABELS
            assert event.duration is not None
            assert event.duration >= 0
            if self.closes and event.closed_by == "local":
                assert event.code == self.closes[0].code


TestSessionMachine = SessionMachine.TestCase


@pytest.mark.parametrize(
    ("code", "violation", "outcome"),
    [
        (1009, Violation.TOO_BIG, None),
        (1007, Violation.INVALID_UTF8, None),
        (1012, None, Outcome.RESTARTING),
        (1001, None, Outcome.GOING_AWAY),
        (1002, None, None),
    ],
)
def test_a_close_by_the_server_itself_says_so(
    code: int, violation: Violation | None, outcome: Outcome | None
) -> None:
    session, events, _ = _session()
    session.ended(server(code, "its own words"))
    session.ended(peer(code))  # the peer's answer changes nothing
    (event,) = events
    assert (event.code, event.reason, event.closed_by) == (code, "its own words", "server")
    assert (event.violation, event.outcome) == (violation, outcome)


def test_a_server_close_after_ours_is_ours() -> None:
    session, events, _ = _session()
    session.finish(Outcome.COMPLETED)
    session.ended(server(1009, "late"))
    (event,) = events
    assert (event.code, event.closed_by, event.outcome) == (1000, "local", Outcome.COMPLETED)


def test_finish_with_an_application_code() -> None:
    session, events, _ = _session()
    close = session.finish(4004, "Job not found")
    assert close is not None
    assert (close.code, close.reason) == (4004, "Job not found")
    session.ended(peer(4004))
    assert (events[0].code, events[0].label, events[0].closed_by) == (4004, "private", "local")
    with pytest.raises(ValueError, match="application code"):
        _session()[0].finish(1000)


def test_forward_counts_a_message_decided_elsewhere() -> None:
    session, _, _ = _session()
    sent = Send('{"type":"x"}', 12)
    assert session.forward(sent) is sent
    assert (session.messages_out, session.bytes_out) == (1, 12)
    session.finish(Outcome.COMPLETED)
    assert session.forward(sent) is None
    assert session.messages_out == 1


# --- how it ended: the one classifier -----------------------------------------------------------

frames = st.none() | st.tuples(st.integers(0, 70000), st.text(max_size=10))


@given(frames, frames, st.none() | st.booleans())
def test_from_frames_the_first_frame_decides(
    received: tuple[int, str] | None, sent: tuple[int, str] | None, received_first: bool | None
) -> None:
    ended = Disconnect.from_frames(received, sent, received_first)
    assert ended.inferred is False  # the frames themselves say it
    if sent is not None and (received is None or received_first is False):
        assert (ended.closed_by, ended.code, ended.reason) == ("server", *sent)
    elif received is not None:
        assert (ended.closed_by, ended.code, ended.reason) == ("peer", *received)
    else:
        assert (ended.closed_by, ended.code, ended.reason) == ("transport", 1006, "")


@given(st.none() | st.integers(-(2**20), 2**20), st.text(max_size=10))
def test_from_code_is_always_inferred_and_in_the_vocabulary(code: int | None, reason: str) -> None:
    ended = Disconnect.from_code(code, reason)
    assert ended.inferred is True
    assert ended.closed_by in ("peer", "server", "transport")
    if code is None or code == 1006:
        assert (ended.closed_by, ended.code) == ("transport", 1006)
    elif code in (1011, 1012, 1013, 1014):  # codes only servers send
        assert (ended.closed_by, ended.code, ended.reason) == ("server", code, reason)
    else:
        assert ended.closed_by == "peer"
        assert ended.code == code
    session, events, _ = _session()
    session.ended(ended)
    assert events[0].inferred is True
    assert events[0].label in LABELS


@given(st.sampled_from(list(Outcome)), st.none() | st.integers(0, 70000))
def test_what_the_transport_says_after_our_close_changes_nothing(
    outcome: Outcome, code: int | None
) -> None:
    session, events, _ = _session()
    close = session.finish(outcome)
    assert close is not None
    session.ended(Disconnect.from_code(code, "peer's words"))
    (event,) = events
    assert (event.code, event.reason, event.closed_by) == (close.code, close.reason, "local")
    assert event.inferred is False


@pytest.mark.parametrize("code", [CloseCode.MESSAGE_TOO_BIG, CloseCode.TRY_AGAIN_LATER])
def test_from_code_gives_a_plain_int_whatever_the_server_passed(code: CloseCode) -> None:
    # uvicorn reports its own 1009 as an IntEnum member; every event carries a plain int.
    ended = Disconnect.from_code(code, "")
    assert type(ended.code) is int
    session, events, _ = _session()
    session.ended(ended)
    assert type(events[0].code) is int
