"""Worker processes: the process managers users run (uvicorn --workers, fastapi run
--workers, gunicorn with uvicorn's workers, hypercorn --workers), each started as a real
process (its own process group; or PID 1 of a PID namespace, as in a container) serving
tests/adapters/workers_app.py with two workers, signalled as process managers signal them.
Every client of every worker sees the policy's 1012 spread over the drain window and the
manager exits on its own; a worker killed is replaced (where the manager can) and its
replacement serves the policy; one scrape of /metrics counts what every worker saw
(prometheus_client's multiprocess mode). docs/deployment.md cites these tests and the
figures they print (`pytest -s`). Every process started is in the test's process group or
PID namespace, and is SIGKILLed at the end whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.adapters.stacks import Server, free_port, started
from tests.wire import run

APP = "tests.adapters.workers_app:app"
BIN = Path(sys.executable).parent  # the console scripts users run: uvicorn, fastapi ...
HOST = "127.0.0.1"
WINDOW = 1.5  # the app's drain window (WS_TEST_DRAIN_WINDOW), in seconds
GRACE = 3.0  # for the manager to exit once every connection is closed
RELAY = 0.5  # uvicorn's supervisor looks at its signals twice a second
CLIENTS = 12
EACH = 3  # at least this many clients on each of the two workers
Close = tuple[int, str] | None  # the close frame a client received: (code, reason), or none
Label = tuple[str, str, str, str]  # label, code_class, closed_by, violation
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]  # a scrape, by name and labels


def _argv(name: str, port: int, graceful: int = 5) -> list[str]:
    """How a user starts ``name`` with two worker processes (the console scripts); hypercorn
    with ``graceful`` seconds of graceful timeout (more than the drain window)."""
    bind = ["--host", HOST, "--port", str(port)]
    if name == "uvicorn":
        return [str(BIN / "uvicorn"), APP, *bind, "--workers", "2"]
    if name == "fastapi-run":
        return [str(BIN / "fastapi"), "run", "--entrypoint", APP, *bind, "--workers", "2"]
    if name == "gunicorn":
        return [str(BIN / "gunicorn"), "-k", "uvicorn_worker.UvicornWorker", "-w", "2",
                "-b", f"{HOST}:{port}", APP]  # fmt: skip
    if name == "hypercorn":
        return [str(BIN / "hypercorn"), APP, "--workers", "2", "--bind", f"{HOST}:{port}",
                "--graceful-timeout", str(graceful)]  # fmt: skip
    raise ValueError(name)


#: Where the tests send SIGTERM when not said: hypercorn's workers drain only if it reaches
#: them, so to its whole process group; the others' parents relay it.
TO_GROUP = {"hypercorn"}


@contextmanager
def _manager(
    name: str, tmp: Path, *extra: str, graceful: int = 5, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """Start ``name`` (its own process group; ``env``: more environment) until it accepts
    connections; SIGTERM, then SIGKILL to the whole group, afterwards (``started``)."""
    port = free_port()
    argv = [*_argv(name, port, graceful), *extra]
    environ = {"WS_TEST_DRAIN_WINDOW": str(WINDOW), **(env or {})}
    with started(name, argv, port, tmp, **environ) as server:
        yield server


def _uri(server: Server) -> str:
    return server.uri + "/ws"


def _signal(server: Server, sig: int, *, group: bool) -> float:
    """Send ``sig`` to the manager (``group``: to its whole process group); when."""
    sent = time.monotonic()
    if group:
        os.killpg(server.process.pid, sig)
    else:
        server.process.send_signal(sig)
    return sent


async def _hello(ws: ClientConnection) -> int:
    """The pid of the worker serving ``ws`` (the app's first message)."""
    message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["type"] == "hello", message
    return int(message["pid"])


async def _workers(uri: str, count: int = 2, wait: float = 20.0) -> Counter[int]:
    """Connect and disconnect until ``count`` workers have answered (they all serve): how
    many of these connections each served, by pid. A manager accepts before its workers
    are up (gunicorn binds in the parent)."""
    seen: Counter[int] = Counter()
    deadline = time.monotonic() + wait
    while len(seen) < count:
        assert time.monotonic() < deadline, f"only {len(seen)} worker(s) answered in {wait} s"
        try:
            async with connect(uri, open_timeout=5, close_timeout=2) as ws:
                seen[await _hello(ws)] += 1
        except (OSError, TimeoutError):
            pass
        await asyncio.sleep(0.02)
    return seen


async def _open(uri: str, stack: AsyncExitStack) -> tuple[ClientConnection, int]:
    """A connection held until ``stack`` closes, and the pid of its worker."""
    ws = await stack.enter_async_context(connect(uri, open_timeout=10, close_timeout=1))
    return ws, await _hello(ws)


async def _spread(
    uri: str, stack: AsyncExitStack, workers: Counter[int], host: dict[int, int] | None = None
) -> list[tuple[ClientConnection, int]]:
    """Open CLIENTS connections one after the other, which the kernel hands to either
    worker; then, for a worker that got fewer than EACH (a loaded machine skews it), open
    the missing ones with the other worker frozen (``host``: the pids the app reports, in
    its own PID namespace, to this machine's)."""
    clients = [await _open(uri, stack) for _ in range(CLIENTS)]
    for worker in workers:
        missing = EACH - sum(pid == worker for _, pid in clients)
        if missing > 0:
            (other,) = set(workers) - {worker}
            async with _stopped(other if host is None else host[other]):
                clients += [await _open(uri, stack) for _ in range(missing)]
    assert all(sum(pid == w for _, pid in clients) >= EACH for w in workers), clients
    return clients


async def _doomed_and_kept(
    uri: str, stack: AsyncExitStack, kept: int
) -> tuple[int, int, list[tuple[ClientConnection, int]], list[tuple[ClientConnection, int]]]:
    """The two workers (``victim``, ``survivor``), two clients on the victim and ``kept``
    on the survivor: each set opened while the other worker is frozen."""
    victim, survivor = sorted(await _workers(uri))
    async with _stopped(survivor):
        doomed = [await _open(uri, stack) for _ in range(2)]
    async with _stopped(victim):
        held = [await _open(uri, stack) for _ in range(kept)]
    return victim, survivor, doomed, held


@asynccontextmanager
async def _stopped(pid: int) -> AsyncIterator[None]:
    """Freeze worker ``pid`` (SIGSTOP), so that the other worker accepts every connection
    meanwhile; thaw it after. For well under uvicorn's 5 s health check."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def _close_of(ws: ClientConnection, wait: float) -> tuple[Close, float]:
    """Read until the server closes, for at most ``wait`` seconds: its close frame (or
    ``None``: none came, or none within ``wait``) and when the connection ended."""
    with contextlib.suppress(ConnectionClosed, TimeoutError):
        async with asyncio.timeout(wait):
            async for _ in ws:
                pass
    received = ws.protocol.close_rcvd
    return (None if received is None else (int(received.code), received.reason)), time.monotonic()


def _exit_within(server: Server, sent: float, limit: float) -> tuple[int, float]:
    """Wait for the manager to exit, at most until ``limit`` seconds after ``sent``: its exit
    status and when it exited (seconds after ``sent``)."""
    try:
        status = server.process.wait(timeout=max(sent + limit - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
        pytest.fail(f"{server.stack} still running {limit} s after the signal:\n{server.output()}")
    return status, time.monotonic() - sent


def _report(what: str, **figures: float) -> None:
    """A measured figure, for `pytest -s` (docs/deployment.md quotes them)."""
    print(what, " ".join(f"{k}={v:.2f}" for k, v in figures.items()), flush=True)


def _drain_checks(
    name: str, seen: list[tuple[Close, float]], sent: float
) -> tuple[float, float, float]:
    """Every client saw the policy's 1012, over the window, not in a burst: the first and
    last close and the spread, in seconds after the signal."""
    assert [close for close, _ in seen] == [(1012, "Service restarting")] * len(seen)
    offsets = sorted(at - sent for _, at in seen)
    assert offsets[-1] < WINDOW + RELAY + 1.0, offsets  # within the window (and round trips)
    assert offsets[-1] - offsets[0] > WINDOW / 4, offsets  # spread, not all at once
    print(f"{name} closes at", " ".join(f"{o:.2f}" for o in offsets), flush=True)
    return offsets[0], offsets[-1], offsets[-1] - offsets[0]


# --- SIGTERM: a deploy ---------------------------------------------------------------------


#: (manager, whether SIGTERM goes to the whole process group): to the parent alone as `kill
#: PID`, docker stop and Kubernetes do (PID 1), to every process as systemd's default
#: KillMode=control-group and `kill -TERM -PGID` do. hypercorn only with the group: its
#: workers hear nothing of a signal to the parent alone
#: (test_hypercorn_workers_get_nothing_from_a_sigterm_to_the_parent_alone).
DEPLOYS = [
    ("uvicorn", False),
    ("uvicorn", True),
    ("fastapi-run", False),
    ("gunicorn", False),
    ("gunicorn", True),
    ("hypercorn", True),
]


@pytest.mark.parametrize(
    ("name", "group"), DEPLOYS, ids=[f"{n}-to-{'group' if g else 'parent'}" for n, g in DEPLOYS]
)
def test_sigterm_drains_every_worker_over_the_window(
    name: str, group: bool, tmp_path: Path
) -> None:
    # SIGTERM as process managers send it, while clients are connected to both workers:
    # uvicorn's, fastapi run's and gunicorn's parent relays it to each worker (which, sent
    # the group's too, gets it twice: the repeated SIGTERM keeps the drain spread). Every
    # client sees 1012 spread over the window; the manager then exits 0. Each worker then
    # runs the app's lifespan shutdown (_shutdowns_expected says where hypercorn's do not).
    shut_down = tmp_path / "shutdown"
    shut_down.mkdir()
    with _manager(name, tmp_path, env={"WS_TEST_SHUTDOWN_DIR": str(shut_down)}) as server:

        async def scenario() -> tuple[list[int], list[tuple[Close, float]], float]:
            workers = await _workers(_uri(server))
            async with AsyncExitStack() as stack:
                clients = await _spread(_uri(server), stack, workers)
                await asyncio.sleep(0.2)  # every handler is in its guard block
                sent = _signal(server, signal.SIGTERM, group=group)
                wait = WINDOW + RELAY + GRACE
                seen = await asyncio.gather(*(_close_of(ws, wait) for ws, _ in clients))
                return [pid for _, pid in clients], seen, sent

        pids, seen, sent = run(scenario(), timeout=45)
        first, last, spread = _drain_checks(name, seen, sent)
        status, exited = _exit_within(server, sent, WINDOW + RELAY + GRACE)
        assert status == 0, server.output()
        assert "Traceback" not in server.output()
        assert _shutdowns(shut_down) == _shutdowns_expected(name, set(pids))
        _report(f"{name}: {dict(Counter(pids))}", first=first, last=last, spread=spread,
                exit=exited)  # fmt: skip


def _shutdowns(directory: Path) -> set[int]:
    """The workers whose lifespan shutdown ran (WS_TEST_SHUTDOWN_DIR)."""
    return {int(path.name) for path in directory.iterdir()}


def _shutdowns_expected(name: str, busy: set[int], idle: frozenset[int] = frozenset()) -> set[int]:
    """Which workers run the app's lifespan shutdown after a drain: those that held
    connections (``busy``) and the others (``idle``). A hypercorn worker has no SIGTERM
    handler of its own: after the drain the library's lifespan re-raises SIGTERM with the
    default action, which races hypercorn's own shutdown (told by the parent's event). On
    Python 3.11 the signal wins and no worker runs the app's shutdown code; on 3.12 and
    later a worker that held connections runs it first (then dies of the signal), an idle
    one never."""
    if name != "hypercorn":
        return busy | idle
    return busy if sys.version_info >= (3, 12) else set()


@pytest.mark.parametrize("name", ["uvicorn", "hypercorn"])
def test_sigterm_drains_when_one_worker_holds_every_client(name: str, tmp_path: Path) -> None:
    # Every client on one worker (the other frozen while they connect): the idle worker
    # has nothing to drain and exits while the busy one still drains. hypercorn's parent
    # then terminates the busy worker (a second SIGTERM, relayed) and the drain stays
    # spread; uvicorn's parent waits for it. Every client sees 1012 over the window.
    shut_down = tmp_path / "shutdown"
    shut_down.mkdir()
    with _manager(name, tmp_path, env={"WS_TEST_SHUTDOWN_DIR": str(shut_down)}) as server:

        async def scenario() -> tuple[list[tuple[Close, float]], float, float, int, int]:
            busy, idle = sorted(await _workers(_uri(server)))
            async with AsyncExitStack() as stack:
                async with _stopped(idle):
                    clients = [await _open(_uri(server), stack) for _ in range(CLIENTS)]
                assert {pid for _, pid in clients} == {busy}
                await asyncio.sleep(0.2)
                sent = _signal(server, signal.SIGTERM, group=name in TO_GROUP)
                wait = WINDOW + RELAY + GRACE
                closes = asyncio.gather(*(_close_of(ws, wait) for ws, _ in clients))
                while not _gone(idle):
                    assert time.monotonic() - sent < wait, f"worker {idle} still running"
                    await asyncio.sleep(0.02)
                idle_exited = time.monotonic() - sent
                return list(await closes), sent, idle_exited, busy, idle

        seen, sent, idle_exited, busy, idle = run(scenario(), timeout=45)
        first, last, spread = _drain_checks(name, seen, sent)
        assert idle_exited < last  # the idle worker did not wait for the busy one
        status, exited = _exit_within(server, sent, WINDOW + RELAY + GRACE)
        assert status == 0, server.output()
        assert _shutdowns(shut_down) == _shutdowns_expected(name, {busy}, frozenset({idle}))
        _report(f"{name}, one worker:", idle_exited=idle_exited, first=first, last=last,
                spread=spread, exit=exited)  # fmt: skip


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (a zombie not yet reaped by its parent counts)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in {"Z", "X"}


def test_hypercorn_workers_get_nothing_from_a_sigterm_to_the_parent_alone(
    tmp_path: Path,
) -> None:
    # `kill PID` (docker stop, Kubernetes: PID 1 alone) reaches only hypercorn's parent,
    # which tells its workers to stop through a multiprocessing Event: the app hears no
    # signal, so nothing drains. Python 3.11: at the end of the graceful timeout hypercorn
    # cancels the handlers and guard closes with 1001 "Going away", all at once. 3.12 and
    # later: the handlers are never cancelled; the connections stay open (then the test
    # leaves, and hypercorn exits).
    graceful = 2
    with _manager("hypercorn", tmp_path, graceful=graceful) as server:

        async def scenario() -> tuple[list[tuple[Close, float]], float]:
            workers = await _workers(_uri(server))
            async with AsyncExitStack() as stack:
                clients = await _spread(_uri(server), stack, workers)
                await asyncio.sleep(0.2)
                sent = _signal(server, signal.SIGTERM, group=False)
                wait = graceful + GRACE
                return list(await asyncio.gather(*(_close_of(ws, wait) for ws, _ in clients))), sent

        seen, sent = run(scenario(), timeout=45)
        offsets = sorted(at - sent for _, at in seen)
        if sys.version_info >= (3, 12):
            assert [close for close, _ in seen] == [None] * len(seen)  # still open
            assert offsets[0] >= graceful + GRACE - 0.5  # until the clients left
        else:
            assert [close for close, _ in seen] == [(1001, "Going away")] * len(seen)
            assert offsets[0] > graceful - 0.5  # at the end of the graceful timeout
            assert offsets[-1] - offsets[0] < 0.5  # all at once
        status, exited = _exit_within(server, sent, graceful + GRACE + 3.0)
        assert status == 0, server.output()
        _report("hypercorn, parent only:", first=offsets[0], last=offsets[-1], exit=exited)


# --- as PID 1 of a container ----------------------------------------------------------------


def _pid_1(server: Server, wait: float = 5.0) -> int:
    """The process ``unshare --pid --fork`` started: PID 1 of its new PID namespace."""
    deadline = time.monotonic() + wait
    pid = server.process.pid
    while not (children := Path(f"/proc/{pid}/task/{pid}/children").read_text().split()):
        assert time.monotonic() < deadline, "unshare started nothing"
        time.sleep(0.01)
    return int(children[0])


def _host_pids(root: int) -> dict[int, int]:
    """``root`` and its descendants: their pids in their PID namespace, to this machine's."""
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        with contextlib.suppress(FileNotFoundError):
            status = Path(f"/proc/{pid}/status").read_text()
            ids = next(line for line in status.splitlines() if line.startswith("NSpid:"))
            found[int(ids.split()[-1])] = pid
            todo += map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    return found


#: What a container runs as PID 1: the manager itself (the exec form of CMD), a shell
#: running it (the shell form: `/bin/sh -c "..."`), or an init that signals the process
#: group (dumb-init; `tini -g` does the same).
CONTAINERS = {
    "exec-form-uvicorn": lambda port: _argv("uvicorn", port),
    "shell-form-uvicorn": lambda port: ["/bin/sh", "-c", shlex.join(_argv("uvicorn", port))],
    "dumb-init-hypercorn": lambda port: [str(BIN / "dumb-init"), *_argv("hypercorn", port)],
}


@contextmanager
def _container(case: str, tmp: Path) -> Iterator[tuple[Server, int]]:
    """Run ``case`` (CONTAINERS) as PID 1 of a new PID namespace, as a container runtime
    does (the kernel then delivers a signal to PID 1 only if PID 1 handles it, SIGKILL
    aside); the server and PID 1's pid. Afterwards SIGKILL to PID 1 ends all inside."""
    port = free_port()
    unshare = ["unshare", "--pid", "--fork", "--kill-child", *CONTAINERS[case](port)]
    with started(case, unshare, port, tmp, WS_TEST_DRAIN_WINDOW=str(WINDOW)) as server:
        pid_1 = _pid_1(server)
        try:
            yield server, pid_1
        finally:
            if server.process.poll() is None:  # unshare runs: PID 1 not yet reaped, its pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid_1, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.process.wait(timeout=10)


@pytest.mark.parametrize("case", list(CONTAINERS))
def test_sigterm_to_pid_1_of_a_container(case: str, tmp_path: Path) -> None:
    # docker stop and Kubernetes send SIGTERM to PID 1 of the container, then SIGKILL
    # after the grace period. uvicorn's parent as PID 1 (the exec form) relays it to its
    # workers: every client sees 1012 over the window. dumb-init as PID 1 signals the
    # whole process group, so hypercorn's workers drain too. A shell as PID 1 (the shell
    # form) installs no handler, so the kernel drops the signal: nothing happens until the
    # SIGKILL, and then every connection drops without a close frame.
    with _container(case, tmp_path) as (server, pid_1):

        async def scenario() -> tuple[list[tuple[Close, float]], float]:
            workers = await _workers(_uri(server))
            async with AsyncExitStack() as stack:
                clients = await _spread(_uri(server), stack, workers, _host_pids(pid_1))
                await asyncio.sleep(0.2)
                sent = time.monotonic()
                os.kill(pid_1, signal.SIGTERM)
                wait = WINDOW + RELAY + GRACE
                if case.startswith("shell-form"):
                    await asyncio.sleep(WINDOW + RELAY + 1.0)  # a drain would be over by now
                    assert all(ws.protocol.close_rcvd is None for ws, _ in clients)
                    assert server.process.poll() is None
                    sent = time.monotonic()
                    os.kill(pid_1, signal.SIGKILL)  # the runtime's SIGKILL, at the deadline
                seen = await asyncio.gather(*(_close_of(ws, wait) for ws, _ in clients))
                return list(seen), sent

        seen, sent = run(scenario(), timeout=45)
        if case.startswith("shell-form"):
            assert [close for close, _ in seen] == [None] * len(seen)  # dropped, not closed
            return
        first, last, spread = _drain_checks(case, seen, sent)
        status, exited = _exit_within(server, sent, WINDOW + RELAY + GRACE)
        assert status == 0, server.output()
        _report(f"{case}:", first=first, last=last, spread=spread, exit=exited)


# --- a worker killed -------------------------------------------------------------------------


def _metrics_env(tmp: Path) -> dict[str, str]:
    """prometheus_client's multiprocess mode, in a fresh directory (as its docs require)."""
    directory = tmp / "prometheus"
    directory.mkdir()
    return {"PROMETHEUS_MULTIPROC_DIR": str(directory)}


def _scrape(server: Server) -> Samples:
    """One scrape of /metrics: every sample, by name and labels."""
    url = server.uri.replace("ws://", "http://") + "/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def _scraped(server: Server) -> Samples:
    return await asyncio.to_thread(_scrape, server)


def _open_gauge(samples: Samples) -> float:
    return samples[("websocket_open_connections", ())]


async def _invalid_json(uri: str, stack: AsyncExitStack) -> tuple[int, Close]:
    """What a client sending invalid JSON gets, and from which worker."""
    ws, pid = await _open(uri, stack)
    await ws.send("{not json")
    close, _ = await _close_of(ws, 10)
    return pid, close


#: What users add so that a dead worker's live gauges are dropped: nothing (its open
#: connections stay in the gauge; uvicorn has no hook for it); a worker that starts forgets
#: the dead (WS_TEST_FORGET_DEAD_WORKERS, workers_app.forget_dead_workers); gunicorn's
#: child_exit hook calling mark_process_dead (prometheus_client's recipe for gunicorn).
KILLED = {
    "uvicorn": ((), {}),
    "gunicorn": ((), {}),
    "uvicorn-forgets-the-dead": ((), {"WS_TEST_FORGET_DEAD_WORKERS": "1"}),
    "gunicorn-child_exit": (("-c", "python:tests.adapters.workers_app"), {}),
}


@pytest.mark.parametrize("case", list(KILLED))
def test_a_killed_worker_is_replaced_and_its_replacement_serves_the_policy(
    case: str, tmp_path: Path
) -> None:
    # SIGKILL (as the kernel's OOM killer sends it) to a worker holding two clients: they
    # see the connection drop (nothing can send a close frame), the other worker's client
    # is left alone, the manager starts a replacement, and the replacement answers invalid
    # JSON with the policy's 1002. The open-connections gauge (livesum) goes on counting the
    # dead worker's two unless its files are dropped (mark_process_dead).
    extra, env = KILLED[case]
    name = case.partition("-")[0]
    with _manager(name, tmp_path, *extra, env={**_metrics_env(tmp_path), **env}) as server:

        async def scenario() -> tuple[list[Close], float, Close, float, float]:
            uri = _uri(server)
            async with AsyncExitStack() as stack:
                victim, survivor, doomed, [(kept, _)] = await _doomed_and_kept(uri, stack, 1)
                assert {pid for _, pid in doomed} == {victim}
                before = _open_gauge(await _scraped(server))
                killed = _signal_worker(victim, signal.SIGKILL)
                dropped = await asyncio.gather(*(_close_of(ws, 10) for ws, _ in doomed))
                replacement = await _replacement(uri, {victim, survivor}, killed, wait=20)
                replaced = time.monotonic() - killed
                for _ in range(40):  # until the replacement serves one
                    pid, close = await _invalid_json(uri, stack)
                    if pid == replacement:
                        break
                else:
                    pytest.fail("the replacement served none of 40 connections")
                expected = 3 if case in {"uvicorn", "gunicorn"} else 1
                after = await _settled_gauge(server, expected)
                await kept.send(json.dumps({"type": "ping"}))  # the survivor's client: served
                assert json.loads(await asyncio.wait_for(kept.recv(), 10))["pid"] == survivor
                return [c for c, _ in dropped], replaced, close, before, after

        dropped, replaced, close, before, after = run(scenario(), timeout=45)
        assert dropped == [None, None]  # killed: no close frame
        assert close == (1002, "Invalid JSON")
        assert before == 3
        # Unless something calls mark_process_dead, the dead worker's two stay in the gauge.
        assert after == (3 if case in {"uvicorn", "gunicorn"} else 1)
        assert replaced < 10.0  # 0.4-0.9 s idle, up to 5.5 s with the machine loaded
        _report(f"{case}: replaced", after=replaced)


async def _settled_gauge(server: Server, expected: float, wait: float = 3.0) -> float:
    """The open-connections gauge, scraped until it shows ``expected`` (a close that the
    client has seen may reach the worker's metrics a moment later), at most ``wait``
    seconds: the last value seen."""
    deadline = time.monotonic() + wait
    while (value := _open_gauge(await _scraped(server))) != expected:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    return value


def _signal_worker(pid: int, sig: int) -> float:
    os.kill(pid, sig)
    return time.monotonic()


async def _replacement(uri: str, old: set[int], since: float, wait: float = 15.0) -> int:
    """Connect until a worker that is not one of ``old`` answers: its pid."""
    while time.monotonic() - since < wait:
        with contextlib.suppress(OSError, TimeoutError):
            async with connect(uri, open_timeout=2, close_timeout=1) as ws:
                if (pid := await _hello(ws)) not in old:
                    return pid
        await asyncio.sleep(0.02)
    pytest.fail(f"no replacement worker within {wait} s")


def test_hypercorn_stops_every_worker_when_one_is_killed(tmp_path: Path) -> None:
    # hypercorn replaces no worker: when one dies it terminates the others (SIGTERM, so the
    # app drains them with 1012 over the window) and exits, with status 0 (a crash reads as
    # a clean stop: systemd's Restart=on-failure does not restart it).
    with _manager("hypercorn", tmp_path) as server:

        async def scenario() -> tuple[list[Close], list[tuple[Close, float]], float]:
            uri = _uri(server)
            async with AsyncExitStack() as stack:
                victim, _, doomed, kept = await _doomed_and_kept(uri, stack, 10)
                killed = _signal_worker(victim, signal.SIGKILL)
                dropped = await asyncio.gather(*(_close_of(ws, 10) for ws, _ in doomed))
                wait = WINDOW + GRACE
                drained = await asyncio.gather(*(_close_of(ws, wait) for ws, _ in kept))
                return [c for c, _ in dropped], list(drained), killed

        dropped, drained, killed = run(scenario(), timeout=45)
        assert dropped == [None, None]
        _drain_checks("hypercorn", drained, killed)
        status, exited = _exit_within(server, killed, WINDOW + GRACE)
        assert status == 0, server.output()
        _report("hypercorn, a worker killed:", exit=exited)


# --- metrics across workers ----------------------------------------------------------------


async def _scenario(uri: str, stack: AsyncExitStack, kind: str) -> tuple[int, Close]:
    """One connection playing ``kind``: the worker that served it and the close it saw."""
    ws, pid = await _open(uri, stack)
    if kind == "invalid_json":
        await ws.send("{not json")
    elif kind == "client_4001":
        await ws.close(4001, "bye")
        return pid, None
    else:
        await ws.send(json.dumps({"type": kind}))
    close, _ = await _close_of(ws, 10)
    return pid, close


#: Per scenario: the close the client sees, how it is counted, messages in and out.
SCENARIOS: dict[str, tuple[Close, Label, int, int]] = {
    "invalid_json": ((1002, "Invalid JSON"), ("protocol_error", "client_error", "local",
                                              "invalid_json"), 1, 1),
    "complete": ((1000, "Completed"), ("normal_closure", "normal", "local", "none"), 1, 2),
    "cancel": ((1001, "Cancelled"), ("going_away", "normal", "local", "none"), 1, 1),
    "app_close": ((4004, "Job not found"), ("private", "application", "local", "none"), 1, 1),
    "client_4001": (None, ("private", "application", "peer", "none"), 0, 1),
}  # fmt: skip
#: What each worker plays (so that a scrape served by either must merge both), and how
#: many connections each holds open.
PLAYS = {
    0: (["invalid_json", "invalid_json", "complete", "client_4001"], 2),
    1: (["app_close", "cancel", "complete", "complete"], 3),
}


def test_one_scrape_counts_what_every_worker_saw(tmp_path: Path) -> None:
    # uvicorn --workers 2 in prometheus_client's multiprocess mode: each worker plays its
    # own scenarios (the other frozen meanwhile), then one scrape, whichever worker serves
    # it, equals the sum: closes by label, messages, the open-connections gauge (livesum).
    # During the drain a scrape shows websocket_draining 1 (livemax) and both drains.
    window = 3.0  # long enough for a scrape to fall inside the drain
    env = {**_metrics_env(tmp_path), "WS_TEST_DRAIN_WINDOW": str(window)}
    with _manager("uvicorn", tmp_path, env=env) as server:

        async def scenario() -> tuple[Counter[int], dict[int, list[int]], list[Samples], float]:
            uri = _uri(server)
            probes = await _workers(uri)
            workers = sorted(probes)
            served: dict[int, list[int]] = {w: [] for w in workers}
            async with AsyncExitStack() as stack:
                held: list[ClientConnection] = []
                for index, other in enumerate(reversed(workers)):
                    plays, holding = PLAYS[index]
                    async with _stopped(other):
                        for kind in plays:
                            pid, close = await _scenario(uri, stack, kind)
                            assert close == SCENARIOS[kind][0], (kind, close)
                            served[pid].append(index)
                        for _ in range(holding):
                            ws, pid = await _open(uri, stack)
                            served[pid].append(index)
                            held.append(ws)
                scrapes = [await _scraped(server)]
                sent = _signal(server, signal.SIGTERM, group=False)
                deadline = time.monotonic() + 5
                while scrapes[-1].get(("websocket_drains_started_total", ()), 0) < 2:
                    assert time.monotonic() < deadline, scrapes[-1]
                    await asyncio.sleep(0.1)
                    scrapes.append(await _scraped(server))
                seen = await asyncio.gather(*(_close_of(ws, window + 3) for ws in held))
                assert [c for c, _ in seen] == [(1012, "Service restarting")] * len(held)
                return probes, served, scrapes, sent

        probes, served, scrapes, sent = run(scenario(), timeout=45)
        for index, worker in enumerate(sorted(served)):  # each served its own plays
            plays, holding = PLAYS[index]
            assert served[worker] == [index] * (len(plays) + holding)
        # What happened, summed over both workers: the scenarios, and the probes that found
        # the workers (each closed 1000 by the client after one message out, the hello).
        expected: Counter[Label] = Counter()
        expected[("normal_closure", "normal", "peer", "none")] = probes.total()
        messages = Counter({"in": 0, "out": probes.total()})
        for plays, _ in PLAYS.values():
            for kind in plays:
                _, label, received, sent_out = SCENARIOS[kind]
                expected[label] += 1
                messages.update({"in": received, "out": sent_out})
        samples = scrapes[0]  # one scrape, before the signal
        closes = {
            tuple(dict(labels)[k] for k in LABEL_NAMES): value
            for (name, labels), value in samples.items()
            if name == "websocket_closes_total"
        }
        assert closes == dict(expected)
        assert _open_gauge(samples) == sum(holding for _, holding in PLAYS.values())
        for direction in ("in", "out"):
            key = ("websocket_messages_total", (("direction", direction),))
            assert samples[key] == messages[direction]
        # During the drain: both workers' drains have started, and a drain runs.
        during = scrapes[-1]
        assert during[("websocket_drains_started_total", ())] == 2
        assert during[("websocket_draining", ())] == 1
        status, exited = _exit_within(server, sent, window + RELAY + GRACE)
        assert status == 0, server.output()
        _report("metrics: scrapes until both drains showed", scrapes=len(scrapes), exit=exited)


LABEL_NAMES = ("label", "code_class", "closed_by", "violation")
