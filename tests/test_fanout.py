"""Fan-out without a Redis server: the payload a publisher puts on the bus and what every
subscriber makes of it (for any action, and for any bytes at all), the arguments, and what
publishers and subscribers do when Redis cannot be reached. The rest, with a real
redis-server and real server processes, is in tests/fanout (``make test-redis``)."""

from __future__ import annotations

import logging
import time

import pytest
import redis
import redis.asyncio
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.adapters.fake import FakeTransport, guarded
from tests.adapters.stacks import free_port
from tests.strategies import messages
from tests.wire import run
from ws_close_policy import Close, Outcome, Send, Violation, decide_outbound
from ws_close_policy._fanout import MAX_TOPIC, channel, pack, unpack
from ws_close_policy.adapters import Connections
from ws_close_policy.cli import main
from ws_close_policy.fanout import AsyncPublisher, Publisher, PublishError, Subscriber
from ws_close_policy.testing import reasons, sendable_codes

sends = st.one_of(
    st.builds(lambda m: decide_outbound(m), messages),
    st.builds(lambda b: Send(b, len(b), False), st.binary(max_size=64)),
    st.builds(
        lambda t, large, degraded: Send(t, len(t.encode()), True, large, degraded),
        st.text(max_size=40).filter(lambda t: not any(0xD800 <= ord(c) < 0xE000 for c in t)),
        st.booleans(),
        st.booleans(),
    ),
)
closes = st.builds(
    Close,
    sendable_codes(),
    reasons(),
    violation=st.none() | st.sampled_from(Violation),
    outcome=st.none() | st.sampled_from(Outcome),
    detail=st.none() | st.text(max_size=40),
)


@settings(max_examples=200)
@given(sends | closes)
def test_every_action_comes_back_as_it_was_published(action: Send | Close) -> None:
    back = unpack(pack(action))
    if isinstance(action, Send):
        assert isinstance(back, Send)
        data = action.data if isinstance(action.data, bytes) else action.data.encode()
        # The bytes that go on the wire, their size, frame and flags: nothing re-measured.
        assert back == (data, action.size, action.text, action.large, action.degraded)
    else:
        assert isinstance(back, Close)
        assert (back.code, back.reason) == (action.code, action.reason)
        assert (back.violation, back.outcome, back.detail) == (
            action.violation,
            action.outcome,
            action.detail,
        )


@settings(max_examples=300)
@given(
    st.binary(max_size=80)
    | st.builds(lambda head, rest: head + rest, st.sampled_from([b"1T", b"1B", b"1C"]), st.binary())
)
def test_any_bytes_on_the_channel_are_an_action_or_a_value_error(payload: bytes) -> None:
    try:
        action = unpack(payload)
    except ValueError:
        return
    assert isinstance(action, Send | Close)
    if isinstance(action, Close):
        assert len(action.reason.encode()) <= 123


def test_a_text_payload_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(ValueError, match="UTF-8"):
        unpack(b"1T0\xff\xfe")
    assert unpack(b"1B0\xff\xfe") == Send(b"\xff\xfe", 2, False)


def test_a_topic_is_a_short_non_empty_str() -> None:
    assert channel("p:", "job:1") == "p:job:1"
    with pytest.raises(TypeError, match="topic must be a str"):
        channel("p:", b"job")  # type: ignore[arg-type]
    for bad in ("", "x" * (MAX_TOPIC + 1)):
        with pytest.raises(ValueError, match="topic must be 1 to 1024 characters"):
            channel("p:", bad)


def test_arguments_are_checked_when_built() -> None:
    url = "redis://127.0.0.1:1/0"
    with pytest.raises(TypeError, match="policy must be a Policy"):
        Publisher(url, "strict")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="prefix must be a str"):
        AsyncPublisher(url, prefix=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timeout"):
        Publisher(url, timeout=0)
    with pytest.raises(TypeError, match=r"redis must be a URL or a redis\.Redis, not int"):
        Publisher(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="connections must be a Connections"):
        Subscriber(url, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="health_interval"):
        Subscriber(url, Connections(), health_interval=-1)
    with pytest.raises(ValueError, match="max_pending"):
        Subscriber(url, Connections(), max_pending=0)
    with pytest.raises(TypeError, match="url must be a str"):
        Subscriber(b"redis://", Connections())  # type: ignore[arg-type]


def test_a_url_redis_cannot_read_or_a_client_of_the_other_kind_is_refused_when_built() -> None:
    for build in (Publisher, AsyncPublisher, lambda url: Subscriber(url, Connections())):
        with pytest.raises(ValueError, match="not a Redis URL: 'localhost:6379'"):
            build("localhost:6379")
    with pytest.raises(TypeError, match=r"a redis\.Redis, not redis\.asyncio\.client\.Redis"):
        Publisher(redis.asyncio.Redis())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"a redis\.asyncio\.Redis, not redis\.client\.Redis"):
        AsyncPublisher(redis.Redis())  # type: ignore[arg-type]


def test_a_closed_publisher_publishes_nothing() -> None:
    job = Publisher("redis://127.0.0.1:1/0")
    job.close()
    with pytest.raises(RuntimeError, match="the publisher is closed"):
        job.publish("job:1", {})
    with pytest.raises(RuntimeError, match="the publisher is closed"):
        job.fail("job:1", ValueError())


def test_serve_demo_refuses_a_bad_redis_url_and_workers_without_redis() -> None:
    with pytest.raises(SystemExit, match="--redis: Redis URL must specify"):
        main(["serve-demo", "--redis", "notaurl"])
    with pytest.raises(SystemExit, match="--workers needs --redis"):
        main(["serve-demo", "--workers", "2"])


def test_connections_forward_takes_only_an_action() -> None:
    with pytest.raises(TypeError, match="action must be a Send or a Close, not dict"):
        run(Connections().forward({"type": "x"}))  # type: ignore[arg-type]


def test_a_publisher_that_cannot_reach_redis_raises_publish_error_in_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    started = time.monotonic()
    with Publisher(url, timeout=1.0) as job:
        with pytest.raises(PublishError, match="job:1") as caught:
            job.publish("job:1", {"type": "progress"})
        assert caught.value.__cause__ is not None  # redis-py's ConnectionError
        with pytest.raises(PublishError, match="job:1"):
            job.finish("job:1")

    async def scenario() -> None:
        async with AsyncPublisher(url, timeout=1.0) as publisher:
            with pytest.raises(PublishError):
                await publisher.fail("job:1", RuntimeError("boom"))

    run(scenario())
    assert time.monotonic() - started < 5
    assert "publishing on ws-close-policy:job:1 failed" in caplog.text


def test_a_watcher_of_a_subscriber_that_cannot_reach_redis_is_closed_1013_in_time() -> None:
    async def scenario() -> tuple[list[tuple[int, str]], float, int, int]:
        url = f"redis://127.0.0.1:{free_port()}/0"
        connections = Connections()
        async with Subscriber(url, connections, timeout=1.0) as subscriber:
            transport = FakeTransport()
            started = time.monotonic()
            async with (
                guarded(transport, connections=connections) as conn,
                subscriber.watching(conn, "job:1"),
            ):
                async for _ in conn:
                    pass
            took = time.monotonic() - started
            stats = subscriber.stats()
            return transport.closes, took, stats.lost, stats.topics

    closes, took, lost, topics = run(scenario())
    assert closes == [(1013, "Try again later")]
    assert took < 3
    assert (lost, topics) == (1, 0)


def test_a_closed_subscriber_takes_no_watcher(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        subscriber = Subscriber("redis://127.0.0.1:1/0", Connections())
        await subscriber.aclose()
        async with guarded(FakeTransport()) as conn:
            with pytest.raises(RuntimeError, match="closed"):
                async with subscriber.watching(conn, "job:1"):
                    pass

    with caplog.at_level(logging.ERROR):
        run(scenario())
