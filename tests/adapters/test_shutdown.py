"""A deploy: real server processes, started as users start them, sent SIGTERM while clients
are connected. Every client sees the policy's 1012 with its reason, the closes spread over
the drain window, and the server then exits on its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.adapters.stacks import Server, server_process
from tests.wire import run
from ws_close_policy.adapters import CLOSE_TIMEOUT

WINDOW = 1.5  # the test app's drain window (WS_TEST_DRAIN_WINDOW), in seconds
GRACE = 3.0  # for the server to stop once every connection is closed
CLIENTS = 8
#: The exit status each server gives after SIGTERM, with or without this library: uvicorn
#: re-raises the signal once it has shut down gracefully (so 143, killed by SIGTERM, from a
#: shell); hypercorn, aiohttp's web.run_app and the websockets runner exit 0.
EXIT_STATUS: dict[str, dict[signal.Signals, int]] = {
    "websockets": {},
    "uvicorn-websockets-sansio": {signal.SIGTERM: -signal.SIGTERM},
    "uvicorn-wsproto": {signal.SIGTERM: -signal.SIGTERM},
    "hypercorn": {},
    "aiohttp": {},
}
#: The one line each server needs (docs/adapters.md): hypercorn must run the app in its own
#: process to see the signal, and wait longer than the drain window for connections.
OPTIONS = {"hypercorn": ("--workers", "0", "--graceful-timeout", "5")}
#: Servers that stop accepting connections as soon as they get the signal.
STOP_ACCEPTING = {"hypercorn", "aiohttp"}


@pytest.fixture(params=list(EXIT_STATUS))
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    env = {"WS_TEST_DRAIN_WINDOW": str(WINDOW)}
    options = OPTIONS.get(request.param, ())
    with server_process(request.param, tmp_path, *options, **env) as running:
        yield running


async def _held(
    uri: str, opened: asyncio.Event, count: list[int], wait: float = 30.0
) -> tuple[Any, float]:
    """Connect and wait (at most ``wait`` seconds) for the server's close: (code, reason),
    or ``None`` without one, and when it came."""
    async with connect(uri, close_timeout=1) as ws:
        count.append(1)
        if len(count) == CLIENTS:
            opened.set()
        with contextlib.suppress(ConnectionClosed, TimeoutError):
            await asyncio.wait_for(ws.recv(), wait)
        received = ws.protocol.close_rcvd
        seen = None if received is None else (int(received.code), received.reason)
        return seen, time.monotonic()


async def _signalled(
    server: Server,
    *signals: signal.Signals,
    between: float = 0.3,
    wait: float = 30.0,
    group: bool = False,
) -> tuple[list[tuple[Any, float]], float]:
    """Hold CLIENTS connections, then send ``signals``, ``between`` seconds apart: what each
    client saw (within ``wait`` seconds) and when, and when the last signal went."""
    uri = server.uri + "/jobs?token=demo-token"
    opened = asyncio.Event()
    count: list[int] = []
    clients = [asyncio.create_task(_held(uri, opened, count, wait)) for _ in range(CLIENTS)]
    await asyncio.wait_for(opened.wait(), 20)
    await asyncio.sleep(0.2)  # every handler is in its guard block
    sent = 0.0
    for i, sig in enumerate(signals):
        if i:
            await asyncio.sleep(between)
        sent = time.monotonic()
        if group:  # every process of the server, as systemd's default KillMode does
            os.killpg(server.process.pid, sig)
        else:
            server.process.send_signal(sig)
    return list(await asyncio.gather(*clients)), sent


async def _late(uri: str) -> str:
    """What a client connecting during the drain gets."""
    try:
        async with connect(uri, open_timeout=5) as ws:
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
            received = ws.protocol.close_rcvd
            return "no close frame" if received is None else str(int(received.code))
    except InvalidStatus as exc:
        return f"HTTP {exc.response.status_code}"
    except OSError:
        return "connection refused"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_drains_every_client_with_1012_over_the_window(
    server: Server, sig: signal.Signals
) -> None:
    uri = server.uri + "/jobs?token=demo-token"

    async def scenario() -> tuple[list[tuple[Any, float]], float, str]:
        opened = asyncio.Event()
        count: list[int] = []
        clients = [asyncio.create_task(_held(uri, opened, count)) for _ in range(CLIENTS)]
        await asyncio.wait_for(opened.wait(), 20)
        await asyncio.sleep(0.2)  # every handler is in its guard block
        sent = time.monotonic()
        server.process.send_signal(sig)
        await asyncio.sleep(0.2)
        late = await _late(uri)
        return await asyncio.gather(*clients), sent, late

    results, sent, late = run(scenario(), timeout=60)
    closes = [seen for seen, _ in results]
    assert closes == [(1012, "Service restarting")] * CLIENTS, server.output()
    offsets = sorted(at - sent for _, at in results)
    assert offsets[-1] < WINDOW + 1.0  # within the window (plus the round trips)
    assert offsets[-1] - offsets[0] > WINDOW / 4  # spread, not all at once
    status = server.process.wait(timeout=GRACE + WINDOW)
    assert status == EXIT_STATUS[server.stack].get(sig, 0), server.output()
    # A client arriving during the drain: guard closes it with 1012 where the server still
    # accepts; hypercorn and aiohttp stop accepting at once.
    assert late == ("connection refused" if server.stack in STOP_ACCEPTING else "1012")
    assert "Traceback" not in server.output()


def test_hypercorn_worker_processes_give_the_app_no_notice(tmp_path: Path) -> None:
    # `hypercorn app:app` runs the app in a worker process; a signal to the parent alone
    # never reaches it: the parent tells it to stop through an internal event, and the app
    # learns nothing.
    with server_process("hypercorn", tmp_path, WS_TEST_DRAIN_WINDOW=str(WINDOW)) as running:
        if sys.version_info >= (3, 12):
            # On Python 3.12 and later hypercorn's worker never cancels the handlers: the
            # connections stay open until the clients leave, a bare app's too.
            results, _ = run(_signalled(running, signal.SIGTERM, wait=6.0), timeout=60)
            assert [seen for seen, _ in results] == [None] * CLIENTS  # no close at all
            return
        # On 3.11 it cancels them at the end of its graceful timeout (3 s by default), and
        # guard closes with 1001 "Going away" then, not later.
        results, sent = run(_signalled(running, signal.SIGTERM), timeout=60)
        assert [seen for seen, _ in results] == [(1001, "Going away")] * CLIENTS
        assert max(at for _, at in results) - sent < 3.0 + 1.0
        assert running.process.wait(timeout=20) == 0


def test_hypercorn_workers_drain_when_the_signal_reaches_them(tmp_path: Path) -> None:
    # systemd's default (KillMode=control-group) signals every process of the service, and
    # so does `kill -TERM -PGID`: hypercorn's worker process then gets SIGTERM too, and the
    # app's lifespan drains there. Within hypercorn's graceful timeout (3 s by default).
    with server_process("hypercorn", tmp_path, WS_TEST_DRAIN_WINDOW=str(WINDOW)) as running:
        results, sent = run(_signalled(running, signal.SIGTERM, group=True), timeout=60)
        assert [seen for seen, _ in results] == [(1012, "Service restarting")] * CLIENTS
        offsets = sorted(at - sent for _, at in results)
        assert offsets[-1] < WINDOW + 1.0  # within the window (plus the round trips)
        assert offsets[-1] - offsets[0] > WINDOW / 4  # spread, not all at once
        assert running.process.wait(timeout=GRACE + WINDOW) == 0, running.output()


@pytest.mark.parametrize("stack", ["granian", "daphne"])
def test_servers_that_drop_every_websocket_at_once(stack: str, tmp_path: Path) -> None:
    # granian closes every socket itself as soon as it gets SIGTERM, and daphne has no
    # lifespan and no shutdown hook: no app can drain there (docs/adapters.md). Clients see
    # the connection drop without a close frame, and the server still exits on its own.
    with server_process(stack, tmp_path, WS_TEST_DRAIN_WINDOW=str(WINDOW)) as running:
        results, sent = run(_signalled(running, signal.SIGTERM), timeout=60)
        assert [seen for seen, _ in results] == [None] * CLIENTS
        assert max(at for _, at in results) - sent < WINDOW / 2  # at once, not drained
        assert running.process.wait(timeout=CLOSE_TIMEOUT + GRACE) == 0, running.output()


@pytest.mark.parametrize("stack", ["websockets", "uvicorn-websockets-sansio"])
def test_a_second_sigint_closes_the_rest_at_once(stack: str, tmp_path: Path) -> None:
    window = 20.0  # far longer than the test: only the second signal can end it in time
    with server_process(stack, tmp_path, WS_TEST_DRAIN_WINDOW=str(window)) as running:
        results, sent = run(_signalled(running, signal.SIGTERM, signal.SIGINT), timeout=60)
        assert [seen for seen, _ in results] == [(1012, "Service restarting")] * CLIENTS
        assert max(at for _, at in results) - sent < 2.0
        assert running.process.wait(timeout=GRACE) == EXIT_STATUS[stack].get(signal.SIGTERM, 0)


@pytest.mark.parametrize("stack", ["websockets", "uvicorn-websockets-sansio"])
def test_a_repeated_sigterm_keeps_the_drain_spread(stack: str, tmp_path: Path) -> None:
    # A process manager relays SIGTERM to a process already draining (hypercorn's parent
    # terminates its workers when one exits): the drain stays spread over its window.
    window = 3.0
    with server_process(stack, tmp_path, WS_TEST_DRAIN_WINDOW=str(window)) as running:
        results, sent = run(
            _signalled(running, signal.SIGTERM, signal.SIGTERM, between=0.2), timeout=60
        )
        assert [seen for seen, _ in results] == [(1012, "Service restarting")] * CLIENTS
        offsets = sorted(at - sent for _, at in results)  # from the second signal
        assert offsets[-1] - offsets[0] > window / 4, offsets  # spread, not a burst
        assert offsets[-1] < window + 1.0
        assert running.process.wait(timeout=GRACE) == EXIT_STATUS[stack].get(signal.SIGTERM, 0)


def test_a_drain_closes_every_connection_on_daphne(tmp_path: Path) -> None:
    # daphne has no lifespan: the app drains by itself (here through /drain). It refuses
    # 1012, so each guard block raises the refusal and daphne closes with 1011, dropping the
    # reason (docs/adapters.md), each within the window, with no handler left waiting.
    with server_process("daphne", tmp_path, WS_TEST_DRAIN_WINDOW=str(WINDOW)) as running:
        uri = running.uri + "/jobs?token=demo-token"

        async def scenario() -> tuple[list[tuple[Any, float]], float, Any]:
            opened = asyncio.Event()
            count: list[int] = []
            clients = [asyncio.create_task(_held(uri, opened, count, 20)) for _ in range(CLIENTS)]
            await asyncio.wait_for(opened.wait(), 20)
            await asyncio.sleep(0.2)  # every handler is in its guard block, reading
            sent = time.monotonic()
            async with connect(running.uri + "/drain", open_timeout=10) as ws:
                drained = json.loads(await asyncio.wait_for(ws.recv(), 20))
            return list(await asyncio.gather(*clients)), sent, drained

        results, sent, drained = run(scenario(), timeout=60)
    assert [seen for seen, _ in results] == [(1011, "")] * CLIENTS, running.output()
    assert drained == {"drained": CLIENTS}
    offsets = sorted(at - sent for _, at in results)
    assert offsets[-1] < WINDOW + 1.0
    assert offsets[-1] - offsets[0] > WINDOW / 4  # spread, not all at once


def test_aiohttp_a_second_signal_is_aiohttps_own(tmp_path: Path) -> None:
    # web.run_app takes a second SIGTERM as a second GracefulExit (a SystemExit with status
    # 1): it cancels every handler, and guard closes what is still open with 1001 "Going
    # away", without waiting for the drain window (docs/adapters.md).
    window = 20.0
    with server_process("aiohttp", tmp_path, WS_TEST_DRAIN_WINDOW=str(window)) as running:
        results, sent = run(_signalled(running, signal.SIGTERM, signal.SIGTERM), timeout=60)
        closes = {seen for seen, _ in results}
        assert closes <= {(1012, "Service restarting"), (1001, "Going away")}, closes
        assert (1001, "Going away") in closes
        assert max(at for _, at in results) - sent < CLOSE_TIMEOUT + 2.0
        assert running.process.wait(timeout=GRACE) == 1, running.output()
