"""One process's Subscriber against a real redis-server (``make test-redis``), its watchers
in memory: the subscription follows the watchers, a payload that is not a publisher's is
skipped and counted, a Redis gone silent is noticed by the health check, watchers too far
behind are closed, and a slow Redis is an error for the publisher."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.adapters.fake import FakeTransport, guarded
from tests.fanout.redis_server import RedisServer, redis_server
from tests.wire import run
from ws_close_policy import Send
from ws_close_policy.adapters import Connections, PolicyConnection
from ws_close_policy.fanout import AsyncPublisher, Publisher, PublishError, Subscriber

pytestmark = [pytest.mark.redis, pytest.mark.timeout(60)]
CHANNEL = "ws-close-policy:job:1"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path) as started:
        yield started


def subscribed(server: RedisServer) -> int:
    with redis.Redis.from_url(server.url) as client:
        counts = client.pubsub_numsub(CHANNEL)
    return int(counts[0][1])


async def watch(subscriber: Subscriber, conn: PolicyConnection, topic: str = "job:1") -> None:
    async with subscriber.watching(conn, topic):
        async for _ in conn:
            pass


def test_subscribed_on_the_first_watcher_unsubscribed_after_the_last(server: RedisServer) -> None:
    async def scenario() -> list[int]:
        seen = []
        async with Subscriber(server.url, Connections()) as subscriber:
            first, second = FakeTransport(), FakeTransport()
            async with guarded(first) as one, guarded(second) as two:
                tasks = [asyncio.create_task(watch(subscriber, c)) for c in (one, two)]
                await asyncio.sleep(0.3)
                seen.append(await asyncio.to_thread(subscribed, server))
                first.leave()
                await asyncio.sleep(0.3)
                seen.append(await asyncio.to_thread(subscribed, server))
                second.leave()
                await asyncio.gather(*tasks)
                await asyncio.sleep(0.3)
                seen.append(await asyncio.to_thread(subscribed, server))
                seen.append(subscriber.stats().topics)
        return seen

    assert run(scenario()) == [1, 1, 0, 0]


def test_a_payload_that_is_not_a_publishers_is_skipped_and_counted(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> tuple[list[tuple[str | bytes, bool]], int, int]:
        connections = Connections()
        async with Subscriber(server.url, connections) as subscriber:
            transport = FakeTransport()
            async with guarded(transport, connections=connections) as conn:
                task = asyncio.create_task(watch(subscriber, conn))
                await asyncio.sleep(0.3)
                async with AsyncPublisher(server.url) as publisher:
                    raw = redis.asyncio.Redis.from_url(server.url)
                    await raw.publish(CHANNEL, b"hello from someone else")
                    await raw.aclose()
                    await publisher.publish("job:1", {"type": "progress"})
                    await publisher.finish("job:1")
                await task
            stats = subscriber.stats()
        return transport.sent, stats.invalid, stats.messages

    sent, invalid, delivered = run(scenario())
    assert sent == [(b'{"type":"progress"}', True)]  # the bytes published, as they came
    assert (invalid, delivered) == (1, 2)
    assert "skipped a payload on ws-close-policy:job:1" in caplog.text


def test_a_redis_gone_silent_is_noticed_by_the_health_check(server: RedisServer) -> None:
    async def scenario() -> tuple[list[tuple[int, str]], int]:
        connections = Connections()
        async with Subscriber(server.url, connections, health_interval=0.3) as subscriber:
            transport = FakeTransport()
            async with guarded(transport, connections=connections) as conn:
                task = asyncio.create_task(watch(subscriber, conn))
                await asyncio.sleep(0.3)
                assert server.process is not None
                server.process.send_signal(signal.SIGSTOP)  # the TCP connection stays up
                try:
                    await asyncio.wait_for(task, 5)
                finally:
                    server.process.send_signal(signal.SIGCONT)
            return transport.closes, subscriber.stats().lost

    closes, lost = run(scenario())
    assert closes == [(1013, "Try again later")]
    assert lost == 1


def test_watchers_too_far_behind_are_closed_1013(server: RedisServer) -> None:
    async def scenario() -> tuple[list[tuple[int, str]], int]:
        connections = Connections(slow_after=5.0)
        async with Subscriber(server.url, connections, max_pending=3) as subscriber:
            transport = FakeTransport()
            transport.stalled = True  # its first send never completes
            async with guarded(transport, connections=connections) as conn:
                task = asyncio.create_task(watch(subscriber, conn))
                await asyncio.sleep(0.3)
                with Publisher(server.url) as publisher:
                    for step in range(10):
                        await asyncio.to_thread(publisher.publish, "job:1", {"step": step})
                transport.stalled = False
                await asyncio.wait_for(task, 10)
            return transport.closes, subscriber.stats().lagging

    closes, lagging = run(scenario())
    assert closes[0][0] == 1013
    assert lagging == 1


def test_a_slow_redis_is_an_error_for_the_publisher_not_a_wait(server: RedisServer) -> None:
    with Publisher(server.url, timeout=0.5) as job:
        job.publish("job:1", {"step": 0})
        assert server.process is not None
        server.process.send_signal(signal.SIGSTOP)  # it answers nothing until SIGCONT
        try:
            started = time.monotonic()
            with pytest.raises(PublishError, match="Timeout"):
                job.publish("job:1", {"step": 1})  # may or may not be delivered: said so
            assert time.monotonic() - started < 2
        finally:
            server.process.send_signal(signal.SIGCONT)


def test_an_async_publisher_and_a_redis_client_of_yours(server: RedisServer) -> None:
    async def scenario() -> list[tuple[str | bytes, bool]]:
        connections = Connections()
        client = redis.asyncio.Redis.from_url(server.url)
        async with Subscriber(server.url, connections) as subscriber:
            transport = FakeTransport()
            async with guarded(transport, connections=connections) as conn:
                task = asyncio.create_task(watch(subscriber, conn))
                await asyncio.sleep(0.3)
                async with AsyncPublisher(client) as publisher:
                    published = await publisher.publish("job:1", "plain text")
                    assert published == (Send("plain text", 10), 1)
                    await publisher.finish("job:1", 4004, "Job not found")
                await task
        assert await client.ping()  # the publisher did not close a client it was given
        await client.aclose()
        return [*transport.sent, *((str(code), False) for code, _ in transport.closes)]

    assert run(scenario()) == [(b"plain text", True), ("4004", False)]


def test_watchers_left_open_when_the_subscriber_closes_get_1012(server: RedisServer) -> None:
    async def scenario() -> list[tuple[int, str]]:
        subscriber = Subscriber(server.url, Connections())
        transport = FakeTransport()
        async with guarded(transport) as conn:
            task = asyncio.create_task(watch(subscriber, conn))
            await asyncio.sleep(0.3)
            await subscriber.aclose()  # before the app's drain: the wrong order
            await asyncio.wait_for(task, 5)
        return transport.closes

    assert run(scenario()) == [(1012, "Service restarting")]


def test_a_topic_watched_again_as_its_last_watcher_leaves_keeps_its_subscription(
    server: RedisServer,
) -> None:
    async def scenario() -> tuple[list[tuple[str | bytes, bool]], int]:
        connections = Connections()
        async with Subscriber(server.url, connections) as subscriber:
            first, second = FakeTransport(), FakeTransport()
            async with guarded(first, connections=connections) as one:
                leaving = asyncio.create_task(watch(subscriber, one))
                await asyncio.sleep(0.3)
                first.leave()
                await leaving  # the last watcher left: an UNSUBSCRIBE goes out ...
            async with guarded(second, connections=connections) as two:
                staying = asyncio.create_task(watch(subscriber, two))  # ... and a SUBSCRIBE
                await asyncio.sleep(0.3)
                subscribed_now = await asyncio.to_thread(subscribed, server)
                async with AsyncPublisher(server.url) as publisher:
                    await publisher.publish("job:1", "still here")
                    await publisher.finish("job:1")
                await asyncio.wait_for(staying, 5)
        return second.sent, subscribed_now

    sent, subscribed_now = run(scenario())
    assert sent == [(b"still here", True)]
    assert subscribed_now == 1
