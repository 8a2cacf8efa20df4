"""Fan-out beyond one process, through Redis pub/sub: a job's messages reach every watcher
on any worker process or machine, decided once, at the publisher.

Needs the ``redis`` extra (redis-py): ``pip install 'ws-close-policy[redis]'``.

* :class:`Publisher` (blocking, for a task-queue worker with no event loop) and
  :class:`AsyncPublisher` decide each message once under their policy (serialise once,
  size guard, degrade) and publish the decided ``Send`` or ``Close`` on the topic's Redis
  channel. ``finish`` and ``fail`` publish the job's end: 1000 completed, 1001 cancelled,
  1011 failed (the profile's codes). A failure raises :class:`PublishError`; nothing is
  dropped without the caller hearing of it.
* :class:`Subscriber`, one per server process, subscribes to a topic when its first
  watcher arrives and unsubscribes after the last leaves; what arrives is delivered by
  ``Connections.forward``, the path of ``Connections.broadcast``: in order per topic,
  never decoded, re-serialised or re-measured, slow readers closed with 1013.

Redis pub/sub keeps nothing: a message published while a process is not subscribed is not
delivered there. When a process loses its subscription (Redis restarted or unreachable, no
answer to a health-check PING), its watchers are closed with ``Outcome.OVERLOADED`` (1013,
"try again later"), whose advice is to reconnect with backoff: a watcher never waits on a
dead subscription, and never misses messages without being told. ``docs/fleet.md`` says
what is lost where and what a client does about it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Self, TypeVar

import redis as _redis
import redis.asyncio as _aredis
from redis.asyncio.retry import Retry as _AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry as _SyncRetry

from ._actions import Close, Send
from ._arguments import instance, positive_int, positive_number, text
from ._enums import Outcome
from ._fanout import channel, pack, unpack
from ._outbound import decide_outbound
from .adapters import Connections, PolicyConnection
from .adapters._tasks import Tasks
from .lifecycle import close_for
from .policy import DEFAULT, Policy

__all__ = [
    "DEFAULT_PREFIX",
    "AsyncPublisher",
    "PublishError",
    "Published",
    "Publisher",
    "Subscriber",
    "SubscriberStats",
]

logger = logging.getLogger("ws_close_policy.fanout")
T = TypeVar("T")

#: Put before every topic to name its Redis channel: ``"ws-close-policy:" + topic``.
DEFAULT_PREFIX = "ws-close-policy:"


class PublishError(Exception):
    """Publishing failed: Redis unreachable, slower than the timeout, or refusing the
    command (its redis-py exception is ``__cause__``). After a timeout the message may or
    may not have been delivered; otherwise it was not. Nothing is retried for you: a
    repeated publish could deliver a message twice."""


class Published(NamedTuple):
    """What a publish did: the ``action`` decided (a ``Send``, or the ``Close`` every watcher
    gets) and how many server processes were subscribed to the topic (Redis's count; 0:
    nobody watches it now, and pub/sub keeps nothing for later)."""

    action: Send | Close
    receivers: int


class _Publishing:
    """The decisions both publishers make, before any I/O."""

    def __init__(self, policy: Policy, prefix: str) -> None:
        self.policy = instance(policy, Policy, "policy")
        self.prefix = text(prefix, "prefix")
        self._closed = False

    def _channel(self, topic: str) -> str:
        if self._closed:
            raise RuntimeError("the publisher is closed")
        return channel(self.prefix, topic)

    def _message(self, topic: str, message: object) -> tuple[str, bytes, Send | Close]:
        name = self._channel(topic)
        action = decide_outbound(message, self.policy)
        return name, pack(action), action

    def _finish(
        self, topic: str, outcome: Outcome | int, reason: str | None
    ) -> tuple[str, bytes, Close]:
        name = self._channel(topic)
        action = close_for(outcome, self.policy, reason)
        return name, pack(action), action

    def _fail(self, topic: str, exc: BaseException) -> tuple[str, bytes, Close]:
        name = self._channel(topic)
        instance(exc, BaseException, "exc")
        detail = f"{type(exc).__name__}: {exc}"[:200]
        action = close_for(Outcome.FAILED, self.policy, detail=detail)
        return name, pack(action), action


def _from_url(kind: Any, url: str, settings: dict[str, Any]) -> Any:
    """A client of ``kind`` for ``url``; ``ValueError`` naming it for a URL redis-py
    cannot read (it connects later, on first use)."""
    try:
        return kind.from_url(url, **settings)
    except ValueError as exc:
        raise ValueError(f"not a Redis URL: {url!r} ({exc})") from None


def _client(redis: object, timeout: float, kind: type, retry: object) -> Any:
    """A publisher's client: made from a URL with ``_settings``, or the caller's own."""
    if isinstance(redis, str):
        return _from_url(kind, redis, _settings(timeout, retry))
    positive_number(timeout, "timeout")
    if not isinstance(redis, kind):
        expected = "redis.Redis" if kind is _redis.Redis else "redis.asyncio.Redis"
        given, module = type(redis).__qualname__, type(redis).__module__
        given = given if module == "builtins" else f"{module}.{given}"
        raise TypeError(f"redis must be a URL or a {expected}, not {given}")
    return redis


def _settings(timeout: float, retry: object) -> dict[str, Any]:
    """A client's settings from a URL: every command bounded, no retry (see PublishError)."""
    seconds = positive_number(timeout, "timeout")
    return {"socket_timeout": seconds, "socket_connect_timeout": seconds, "retry": retry}


class Publisher(_Publishing):
    """Publish a job's messages from any process, without an event loop (a Celery, RQ or
    plain thread worker). Thread-safe: redis-py's client is.

    :param redis: a Redis URL (``"redis://localhost:6379/0"``; the publisher makes its own
        client, closed by ``close``), or a ``redis.Redis`` of yours (its own timeouts and
        retries apply, and it stays open).
    :param policy: the outbound policy every message is decided under (default
        ``Policy()``); the watchers' connections do not decide again.
    :param prefix: put before each topic to name its channel (default ``"ws-close-policy:"``);
        the subscribers must use the same.
    :param timeout: seconds for connecting and for each command, with a URL (default 2.0).
    """

    def __init__(
        self,
        redis: str | _redis.Redis,
        policy: Policy = DEFAULT,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 2.0,
    ) -> None:
        super().__init__(policy, prefix)
        self._owned = isinstance(redis, str)
        self._client = _client(redis, timeout, _redis.Redis, _SyncRetry(NoBackoff(), 0))

    def publish(self, topic: str, message: object) -> Published:
        """Decide ``message`` once and publish the result to ``topic``'s watchers: a
        ``Send``, or the ``Close`` they all get (1009 for a message too large that cannot
        be degraded, 1011 for one the codec cannot serialise): after a ``Close`` the topic's
        watchers are gone, so stop the job. ``PublishError`` if Redis did not take it."""
        return self._publish(*self._message(topic, message))

    def finish(
        self, topic: str, outcome: Outcome | int = Outcome.COMPLETED, reason: str | None = None
    ) -> Published:
        """Close every watcher of ``topic`` for ``outcome`` (completed, 1000, by default;
        ``Outcome.CANCELLED`` 1001; or an application code 3000-4999 with its ``reason``):
        the ``close_for`` of the publisher's policy."""
        return self._publish(*self._finish(topic, outcome, reason))

    def fail(self, topic: str, exc: BaseException) -> Published:
        """Close every watcher of ``topic`` because the job failed: the profile's ``FAILED``
        code (1011), its generic reason; ``exc`` only reaches the close's ``detail``."""
        return self._publish(*self._fail(topic, exc))

    def close(self) -> None:
        """Close the client the publisher made from a URL (not one passed in); publishing
        afterwards raises ``RuntimeError``."""
        self._closed = True
        if self._owned:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _publish(self, name: str, payload: bytes, action: Send | Close) -> Published:
        try:
            receivers = self._client.publish(name, payload)
        except _redis.RedisError as exc:
            raise _publish_error(name, exc) from exc
        return Published(action, int(receivers))


class AsyncPublisher(_Publishing):
    """:class:`Publisher` for asyncio code: the same arguments, with a
    ``redis.asyncio.Redis`` of yours instead of a URL if you like; ``aclose`` closes the
    client made from a URL."""

    def __init__(
        self,
        redis: str | _aredis.Redis,
        policy: Policy = DEFAULT,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 2.0,
    ) -> None:
        super().__init__(policy, prefix)
        self._owned = isinstance(redis, str)
        self._client = _client(redis, timeout, _aredis.Redis, _AsyncRetry(NoBackoff(), 0))

    async def publish(self, topic: str, message: object) -> Published:
        """As ``Publisher.publish``, awaited."""
        return await self._publish(*self._message(topic, message))

    async def finish(
        self, topic: str, outcome: Outcome | int = Outcome.COMPLETED, reason: str | None = None
    ) -> Published:
        """As ``Publisher.finish``, awaited."""
        return await self._publish(*self._finish(topic, outcome, reason))

    async def fail(self, topic: str, exc: BaseException) -> Published:
        """As ``Publisher.fail``, awaited."""
        return await self._publish(*self._fail(topic, exc))

    async def aclose(self) -> None:
        """Close the client the publisher made from a URL (not one passed in); publishing
        afterwards raises ``RuntimeError``."""
        self._closed = True
        if self._owned:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _publish(self, name: str, payload: bytes, action: Send | Close) -> Published:
        try:
            receivers = await self._client.publish(name, payload)
        except _redis.RedisError as exc:
            raise _publish_error(name, exc) from exc
        return Published(action, int(receivers))


def _publish_error(name: str, exc: Exception) -> PublishError:
    logger.warning("publishing on %s failed: %s: %s", name, type(exc).__name__, exc)
    return PublishError(f"publishing on {name!r} failed: {type(exc).__name__}: {exc}")


# --- the server side ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    """A :class:`Subscriber`'s figures, for logs and metrics.

    ``topics`` and ``watchers``: watched now. ``unconfirmed``: watchers closed with 1013
    because Redis had not confirmed their subscription within ``timeout`` (a busy Redis or
    process; the subscription itself goes on). ``messages``: payloads received and delivered
    (once each, whatever the number of watchers). ``invalid``: payloads on a watched channel
    that were not a publisher's (logged, skipped). ``lost``: times the subscription was lost
    or could not be made (Redis unreachable, restarted, or silent past the health check),
    each closing every watcher with 1013. ``lagging``: topics whose watchers were closed
    with 1013 because more than ``max_pending`` messages waited for them.
    """

    topics: int
    watchers: int
    unconfirmed: int
    messages: int
    invalid: int
    lost: int
    lagging: int


_LOST = None  # in a topic's queue: the subscription is lost, close its watchers with 1013


class _Topic:
    """One watched channel: its watchers, the subscription's confirmation, and what is
    waiting to be delivered to them, in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.watchers: set[PolicyConnection] = set()
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # None: the subscription was lost after what is before it (see Subscriber._lose).
        self.pending: collections.deque[Send | Close | None] = collections.deque()
        self.delivering: asyncio.Task[None] | None = None


class Subscriber:
    """One server process's Redis subscription, delivering what publishers decided to the
    connections that watch each topic. Create one per process (per app: in its lifespan,
    or around ``serve``), and close it with ``aclose`` (or ``async with``).

    :param url: the Redis URL (``"redis://localhost:6379/0"``). The subscriber makes its
        own client, with redis-py's retries off: a subscription lost is noticed and said,
        never silently re-made with the messages in between missing.
    :param connections: the app's :class:`~ws_close_policy.adapters.Connections`; every
        delivery goes through its ``forward`` (its ``max_buffer`` and ``slow_after`` decide
        which reader is too slow and closed with 1013).
    :param prefix: before each topic in its channel name; the publishers' (default
        ``"ws-close-policy:"``).
    :param timeout: seconds to connect and to have a subscription confirmed (default 2.0);
        past it the watcher is closed with 1013 (that one alone, unless connecting failed).
        For as long after a failed attempt to connect, new watchers are closed at once
        instead of each trying again.
    :param health_interval: after this many seconds without a word from Redis a PING is
        sent; without an answer after as many again, the subscription counts as lost
        (default 5.0).
    :param max_pending: when more messages than this wait for one topic's watchers (they
        read slower than the job publishes), they are closed with 1013 (default 1000).
    """

    def __init__(
        self,
        url: str,
        connections: Connections,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = 2.0,
        health_interval: float = 5.0,
        max_pending: int = 1000,
    ) -> None:
        self.url = text(url, "url")
        self.connections = instance(connections, Connections, "connections")
        self.prefix = text(prefix, "prefix")
        self._settings = _settings(timeout, _AsyncRetry(NoBackoff(), 0))
        self._settings["socket_timeout"] = None  # the reader waits; the health check bounds it
        self.timeout = self._settings["socket_connect_timeout"]
        self.health_interval = positive_number(health_interval, "health_interval")
        self.max_pending = positive_int(max_pending, "max_pending")
        self._topics: dict[str, _Topic] = {}
        self._client: Any = _from_url(_aredis.Redis, self.url, self._settings)
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._linking = asyncio.Lock()
        self._tasks = Tasks(logger, "fan-out task")
        self._counts = collections.Counter[str]()
        self._closed = False
        self._failed_at = -math.inf  # when connecting last failed (time.monotonic)

    @contextlib.asynccontextmanager
    async def watching(self, connection: PolicyConnection, topic: str) -> AsyncIterator[None]:
        """While the block runs, ``connection`` receives what is published to ``topic``;
        the topic is subscribed when its first watcher in this process arrives (the block
        starts once Redis confirmed it) and unsubscribed after the last leaves.

        If the subscription cannot be made within ``timeout`` or is lost later, the
        connection is closed with ``Outcome.OVERLOADED`` (1013) and the block goes on with
        a closed connection: iterating it ends at once. A ``Close`` published to the topic
        closes it the same way::

            async with subscriber.watching(conn, f"job:{job_id}"):
                async for message in conn:  # the client's messages, until it closes
                    ...
        """
        instance(connection, PolicyConnection, "connection")
        name = channel(self.prefix, topic)
        if self._closed:
            raise RuntimeError("the subscriber is closed")
        joined = self._topics.get(name)
        if joined is None:
            joined = self._topics[name] = _Topic(name)
            joined.watchers.add(connection)
            self._tasks.spawn(self._subscribe(joined))
        else:
            joined.watchers.add(connection)
        try:
            try:
                async with asyncio.timeout(self.timeout):
                    await asyncio.shield(joined.ready)
            except Exception:  # the link failed (and every watcher is told), or too slow
                if not joined.ready.done():  # Redis, or this process, is busy: this one only
                    self._counts["unconfirmed"] += 1
                    logger.warning(
                        "websocket %s: no subscription to %s within %.1f s, closing",
                        connection.id,
                        name,
                        self.timeout,
                    )
                await connection.close(Outcome.OVERLOADED)
            yield
        finally:
            self._leave(connection, joined)

    def stats(self) -> SubscriberStats:
        """The figures so far: see :class:`SubscriberStats`."""
        return SubscriberStats(
            topics=len(self._topics),
            watchers=sum(len(t.watchers) for t in self._topics.values()),
            unconfirmed=self._counts["unconfirmed"],
            messages=self._counts["messages"],
            invalid=self._counts["invalid"],
            lost=self._counts["lost"],
            lagging=self._counts["lagging"],
        )

    async def aclose(self) -> None:
        """Stop: close the Redis connection. Close it after the app's drain (its lifespan
        or ``serve`` inside ``async with subscriber``): a watcher still open then would get
        nothing more, so it is closed with ``Outcome.RESTARTING`` (1012)."""
        if self._closed:
            return
        self._closed = True
        watchers = [c for topic in self._topics.values() for c in topic.watchers]
        self._topics.clear()
        await asyncio.gather(
            *(c.close(Outcome.RESTARTING) for c in watchers), return_exceptions=True
        )
        await self._unlink()
        await self._tasks.cancel()
        await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the Redis link -------------------------------------------------------------------

    async def _subscribe(self, topic: _Topic) -> None:
        if self._topics.get(topic.name) is not topic:  # its watchers left, or it was lost
            return
        try:
            pubsub = await self._linked()
            await pubsub.subscribe(topic.name)
            if self._topics.get(topic.name) is not topic:  # it left before this was sent
                await self._unsubscribe(pubsub, topic.name)
        except Exception as exc:  # Redis refused, unreachable, or anything unforeseen
            self._lose(f"cannot subscribe: {type(exc).__name__}: {exc}")

    async def _linked(self) -> Any:
        """The pub/sub connection, made on first need; one reader task reads it."""
        async with self._linking:
            if self._pubsub is None:
                since = time.monotonic() - self._failed_at
                if since < self.timeout:  # no new attempt per watcher while Redis is down
                    raise _redis.ConnectionError(f"no connection {since:.1f} s ago")
                pubsub = self._client.pubsub()
                try:
                    await pubsub.connect()
                except BaseException:
                    self._failed_at = time.monotonic()
                    raise
                self._pubsub = pubsub
                self._reader = self._tasks.spawn(self._read(pubsub))
            return self._pubsub

    async def _read(self, pubsub: Any) -> None:
        """Read the link until it fails: messages to their topic, confirmations to the
        watchers waiting; a PING when Redis has been silent for ``health_interval``."""
        pinged = False
        try:
            while True:
                message = await pubsub.get_message(timeout=self.health_interval)
                if message is None:
                    if pinged:
                        raise TimeoutError(f"no answer to PING within {self.health_interval} s")
                    await pubsub.ping()
                    pinged = True
                    continue
                pinged = False
                kind, name = message["type"], message["channel"]
                if kind == "message":
                    self._received(name.decode(), message["data"])
                    await asyncio.sleep(0)  # a burst read at once: let deliveries keep up
                elif kind == "subscribe":
                    topic = self._topics.get(name.decode())
                    if topic is not None and not topic.ready.done():
                        topic.ready.set_result(None)
        except (_redis.RedisError, OSError, TimeoutError) as exc:
            if pubsub is self._pubsub:
                self._lose(f"{type(exc).__name__}: {exc}")

    def _received(self, name: str, payload: bytes) -> None:
        topic = self._topics.get(name)
        if topic is None:  # its last watcher left a moment ago
            return
        try:
            action = unpack(payload)
        except ValueError as exc:
            self._counts["invalid"] += 1
            logger.error("skipped a payload on %s: %s", name, exc)
            return
        self._counts["messages"] += 1
        if len(topic.pending) >= self.max_pending:
            self._counts["lagging"] += 1
            logger.warning(
                "%s: %d messages waiting for its watchers, more than %d: closing %d with 1013",
                name,
                len(topic.pending) + 1,
                self.max_pending,
                len(topic.watchers),
            )
            topic.pending.clear()
            self._close_all(topic.watchers)
            return
        self._queue(topic, action)

    def _queue(self, topic: _Topic, action: Send | Close | None) -> None:
        topic.pending.append(action)
        if topic.delivering is None:
            topic.delivering = self._tasks.spawn(self._deliver(topic))

    async def _deliver(self, topic: _Topic) -> None:
        """One topic's messages, one after the other: each connection gets them in order,
        and the close of a lost subscription after them."""
        try:
            while topic.pending:
                action = topic.pending.popleft()
                if action is _LOST:
                    self._close_all(topic.watchers)
                else:
                    await self.connections.forward(action, to=topic.watchers)
        finally:
            topic.delivering = None

    def _leave(self, connection: PolicyConnection, topic: _Topic) -> None:
        topic.watchers.discard(connection)
        if topic.watchers or self._topics.get(topic.name) is not topic:
            return
        del self._topics[topic.name]
        if self._pubsub is not None:
            self._tasks.spawn(self._unsubscribe(self._pubsub, topic.name))

    async def _unsubscribe(self, pubsub: Any, name: str) -> None:
        if name in self._topics:  # watched again meanwhile
            return
        try:
            await pubsub.unsubscribe(name)
        except (_redis.RedisError, OSError) as exc:
            if pubsub is self._pubsub:
                self._lose(f"cannot unsubscribe: {type(exc).__name__}: {exc}")

    def _lose(self, why: str) -> None:
        """The subscription is gone, and with it any guarantee that nothing is missed: every
        watcher gets what was received before, then a close with 1013 (reconnect later);
        the next watcher makes a new link."""
        topics = list(self._topics.values())
        self._topics.clear()
        self._counts["lost"] += 1
        logger.error(
            "Redis subscription lost (%s): closing %d watcher(s) of %d topic(s) with 1013",
            why,
            sum(len(topic.watchers) for topic in topics),
            len(topics),
        )
        for topic in topics:
            if not topic.ready.done():
                topic.ready.set_exception(ConnectionError(why))
                topic.ready.exception()  # retrieved: a watcher may have given up already
            self._queue(topic, _LOST)
        self._tasks.spawn(self._unlink())

    async def _unlink(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        if pubsub is not None:
            with contextlib.suppress(_redis.RedisError, OSError):
                await pubsub.aclose()

    def _close_all(self, watchers: Any) -> None:
        for connection in list(watchers):
            self._tasks.spawn(connection.close(Outcome.OVERLOADED))
