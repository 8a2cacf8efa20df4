"""The reference server as a fleet: ``serve-demo --redis URL --workers N``.

One parent process listens, forks ``N`` server workers that share its socket, and one jobs
process, and relays SIGTERM / SIGINT to them (each worker drains with 1012; the jobs process
tells the watchers of the jobs it abandons to come back, 1012, and lets the next watcher
start them again). The wire contract and the page are the single process's:

* a worker subscribes to the job's topic (``ws_close_policy.fanout.Subscriber``) when its
  first watcher arrives, says ``job_started``, and queues the job in Redis unless it runs
  already; it answers ``ping`` and ``refresh_token`` itself, and passes ``cancel`` on to
  the job (the watcher that asked is closed with 1001 at once, the others when the job
  stops);
* the jobs process takes jobs from the queue, runs each in a thread and publishes every
  message with the blocking ``Publisher`` (as a Celery or RQ worker would): each decided
  once, under the watcher's policy (``summary=1`` watchers have their own topic), its
  progress, then its close: 1000, 1011, the policy's 1009, or 1001 when cancelled. A job
  that nobody watches any more (Redis counts no subscriber) stops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio

from .. import Close, Outcome
from ..adapters import PolicyConnection
from ..fanout import Publisher, PublishError, Subscriber
from .jobs import PROGRESS_STEPS, DemoSettings, answer, big_result_rows, envelope

logger = logging.getLogger("ws_close_policy.demo")

QUEUE = "ws-close-policy-demo:jobs"  # a Redis list of topics to run
LEASE = 3600  # seconds a job's "running" and "cancel" keys live at most
STOP_WAIT = 15.0  # seconds the parent waits for its children after relaying a signal


def topic_of(job_id: str, summary: bool) -> str:
    """A job's topic: ``summary=1`` watchers have their own, decided under their policy."""
    return f"demo:{job_id}" + (":summary" if summary else "")


def _running_key(topic: str) -> str:
    return f"ws-close-policy-demo:running:{topic}"


def _cancel_key(topic: str) -> str:
    return f"ws-close-policy-demo:cancel:{topic}"


# --- a server worker -------------------------------------------------------------------------


class Fleet:
    """A worker's side: its subscriber, and a Redis client to queue and cancel jobs."""

    def __init__(self, url: str, subscriber: Subscriber, settings: DemoSettings) -> None:
        self.subscriber = subscriber
        self.settings = settings
        self._redis = redis.asyncio.Redis.from_url(
            url, socket_timeout=2.0, socket_connect_timeout=2.0
        )

    async def watch(self, conn: PolicyConnection, job_id: str, summary: bool) -> None:
        """One watcher: the job's messages from whichever process runs it, while the
        client's own are answered here."""
        topic = topic_of(job_id, summary)
        async with self.subscriber.watching(conn, topic):
            if not conn.is_open:  # no subscription: closed with 1013 already
                return
            await conn.send(envelope("job_started", job_id))
            try:
                if await self._redis.set(_running_key(topic), os.getpid(), nx=True, ex=LEASE):
                    await self._redis.rpush(QUEUE, topic)
            except redis.RedisError as exc:
                logger.warning("cannot queue job %s: %s", topic, exc)
                await conn.close(Outcome.OVERLOADED)
                return
            async for message in conn:
                await answer(conn, job_id, message, self.settings, cancel=self._cancel(topic))

    def _cancel(self, topic: str) -> Callable[[], Any]:
        async def cancel() -> None:
            try:
                await self._redis.set(_cancel_key(topic), 1, ex=LEASE)
            except redis.RedisError as exc:
                logger.warning("cannot cancel job %s: %s", topic, exc)

        return cancel

    async def aclose(self) -> None:
        await self._redis.aclose()


# --- the jobs process ------------------------------------------------------------------------


def run_jobs(url: str, settings: DemoSettings, stop: threading.Event) -> None:
    """Take jobs from the queue until ``stop`` is set; then tell the watchers of the jobs
    still running to come back (1012), and let the next watcher start them again."""
    client = redis.Redis.from_url(url, socket_timeout=3.0, socket_connect_timeout=2.0)
    publishers = {summary: Publisher(client, settings.policy(summary)) for summary in (False, True)}
    running: set[str] = set()
    lock = threading.Lock()

    def job(topic: str) -> None:
        try:
            _run_job(topic, settings, publishers[topic.endswith(":summary")], client, stop)
        except (PublishError, redis.RedisError) as exc:  # the watchers' subscriber says it
            logger.warning("job %s abandoned: %s", topic, exc)
        if not stop.is_set():  # else it stopped for the process: left to the loop below
            with lock:
                running.discard(topic)

    logger.info("jobs process %d taking jobs from %s", os.getpid(), QUEUE)
    while not stop.is_set():
        try:
            item = client.blpop([QUEUE], timeout=1)
        except redis.RedisError as exc:
            logger.warning("cannot take jobs: %s", exc)
            stop.wait(1.0)
            continue
        if item is not None:
            name = item[1]
            topic = name.decode() if isinstance(name, bytes) else name
            with lock:
                running.add(topic)
            threading.Thread(target=job, args=(topic,), daemon=True).start()
    with lock:
        abandoned = list(running)
    for topic in abandoned:
        try:
            client.delete(_running_key(topic))
            publishers[topic.endswith(":summary")].finish(topic, Outcome.RESTARTING)
        except (PublishError, redis.RedisError) as exc:
            logger.warning("job %s: cannot tell its watchers: %s", topic, exc)
    client.close()


def _run_job(
    topic: str, settings: DemoSettings, publisher: Publisher, client: Any, stop: threading.Event
) -> None:
    """The reference job (``jobs.run_job``), published: progress, then the outcome."""
    job_id = topic.removeprefix("demo:").removesuffix(":summary")
    kind = job_id.split("-", 1)[0]

    def step(message: dict[str, Any]) -> bool:
        """Wait a step, then publish; whether the job goes on."""
        if stop.wait(settings.step_seconds):
            return False  # the process stops: run_jobs tells the watchers
        if client.get(_cancel_key(topic)) is not None:
            publisher.finish(topic, Outcome.CANCELLED)
            return False
        return publisher.publish(topic, message).receivers > 0  # 0: nobody watches

    try:
        if kind == "slow":
            while step(envelope("job_progress", job_id, {"progress": None})):
                pass
            return
        for number in range(1, PROGRESS_STEPS + 1):
            progress = {"progress": number / PROGRESS_STEPS, "processed": number}
            if not step(envelope("job_progress", job_id, {**progress, "total": PROGRESS_STEPS})):
                return
        if kind == "fail":
            publisher.publish(topic, envelope("error", job_id, {"error": "Job failed"}))
            publisher.finish(topic, Outcome.FAILED)
            return
        limit = publisher.policy.outbound.max_bytes
        rows = big_result_rows(limit) if kind == "big" else ["row 1", "row 2"]
        result = publisher.publish(topic, envelope("job_complete", job_id, {"rows": rows}))
        if not isinstance(result.action, Close):  # a 1009 has closed every watcher already
            publisher.finish(topic, Outcome.COMPLETED)
    finally:
        if not stop.is_set():
            client.delete(_running_key(topic), _cancel_key(topic))


# --- the parent ------------------------------------------------------------------------------


def serve_fleet(
    start_worker: Callable[[socket.socket], None],
    url: str,
    settings: DemoSettings,
    sock: socket.socket,
    workers: int,
) -> int:
    """Fork ``workers`` server workers on ``sock`` and one jobs process; relay SIGTERM and
    SIGINT to them and wait. Exits 0 once they all did after a signal, 1 if one ended
    before (the others are stopped then)."""
    children = [_fork(lambda: start_worker(sock)) for _ in range(workers)]
    children.append(_fork(lambda: _jobs_main(url, settings)))
    sock.close()  # the workers have it
    stopping = threading.Event()
    alive = set(children)

    def relay(*_: object) -> None:
        if not stopping.is_set():
            _kill_after(alive, STOP_WAIT)  # what has not stopped by then
        stopping.set()
        for pid in alive:
            _signal(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, relay)
    signal.signal(signal.SIGINT, relay)
    failed = False
    while alive:
        pid, status = os.wait()
        alive.discard(pid)
        if not stopping.is_set():
            code = os.waitstatus_to_exitcode(status)  # negative: the signal that ended it
            logger.error("process %d ended (exit code %d): stopping the fleet", pid, code)
            failed = True
            relay()
    return 1 if failed else 0


def _fork(main: Callable[[], None]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)  # a forked child never returns into the parent's code


def _jobs_main(url: str, settings: DemoSettings) -> None:
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    run_jobs(url, settings, stop)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it has ended already
        os.kill(pid, signum)


def _kill_after(pids: set[int], seconds: float) -> None:
    """A watchdog: SIGKILL whatever of ``pids`` still runs after ``seconds``."""

    def watchdog() -> None:
        time.sleep(seconds)
        for pid in list(pids):
            logger.error("process %d did not stop within %.0f s: SIGKILL", pid, seconds)
            _signal(pid, signal.SIGKILL)

    threading.Thread(target=watchdog, daemon=True).start()
