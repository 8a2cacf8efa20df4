"""The reference server, the demo's scripted run, probe, explain, and serve-demo's drain."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Origin

from tests.adapters.stacks import free_port, started
from tests.wire import exchange, run
from ws_close_policy import Profile, ReconnectPolicy
from ws_close_policy._demo.client import observe
from ws_close_policy._demo.jobs import DemoSettings
from ws_close_policy._demo.page import STABLE_AFTER
from ws_close_policy._demo.probe import run_probe
from ws_close_policy._demo.servers import running
from ws_close_policy.cli import main
from ws_close_policy.reconnect import advice_table


@pytest.mark.parametrize("adapter", ["websockets", "starlette"])
def test_demo_scripted_run(adapter: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--adapter", adapter]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert "16 passed, 0 failed" in out
    assert "closed:" not in captured.err  # the close lines are behind --logs
    assert "ERROR" not in captured.err  # and so is uvicorn's own line after a 401
    assert "the page:" not in out  # no URL whose server is gone when the table prints
    assert "MISMATCH" not in out
    assert re.search(r"result over 32 MiB .*1009 'Message too large'.*summary=1 -> 1000", out)


def test_demo_under_rfc_strict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--profile", "rfc_strict"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"malformed JSON .*1008 'Invalid JSON'\s+1008 'Invalid JSON'", out)


def test_probe_against_the_reference_server() -> None:
    async def scenario() -> list[Any]:
        async with running("websockets", DemoSettings()) as served:
            return await run_probe(f"{served.uri}/jobs/slow-1?token=demo-token", Profile.ACTIONABLE)

    results = run(scenario(), timeout=60)
    assert len(results) == 7
    assert all(r.ok for r in results), [(r.name, r.diagnosis) for r in results]


@contextmanager
def naive_server() -> Iterator[str]:
    """The reviewed server's bug: bad messages are logged and ignored, never closed."""
    ready: list[str] = []
    stop: list[asyncio.Event] = []

    async def handler(ws: ServerConnection) -> None:
        async for _ in ws:
            pass  # "console.warn(...); return" - the connection stays open

    async def serve_forever() -> None:
        stop.append(asyncio.Event())
        async with serve(handler, "127.0.0.1", 0) as server:
            ready.append(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}")
            await stop[0].wait()

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(serve_forever(),))
    thread.start()
    try:
        while not ready:
            threading.Event().wait(0.01)
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        loop.close()


def test_probe_reports_a_naive_server(capsys: pytest.CaptureFixture[str]) -> None:
    with naive_server() as uri:
        status = main(["probe", uri, "--timeout", "0.3", "--max-bytes", "1000"])
    out = capsys.readouterr().out
    assert status == 1
    assert "ignored it: no answer and no close (waited 0.3 s)" in out
    assert "0 passed, 7 failed" in out


def test_probe_bad_arguments() -> None:
    with pytest.raises(SystemExit, match="not a WebSocket URL"):
        main(["probe", "http://example.invalid/"])
    with pytest.raises(SystemExit, match="cannot connect"):
        main(["probe", "ws://127.0.0.1:9/", "--timeout", "1"])


def test_explain(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", "1008"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1008 (policy violation)")
    assert "refresh_credentials" in out
    assert "outcome:policy_violation" in out
    assert main(["explain", "1006"]) == 0
    assert "never sent in a close frame" in capsys.readouterr().out
    assert main(["explain", "4400", "--profile", "graphql_ws"]) == 0
    assert "violation:invalid_json" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["explain", "abc"])
    assert "not a close code: 'abc'" in capsys.readouterr().err


def test_serve_demo_drains_with_1012_on_sigterm() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "ws_close_policy", "serve-demo", "--port", "0"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            match = re.search(r"serving (ws://[\d.:]+)/jobs", line)
            assert match, line
            uri = match.group(1)

            async def client() -> Any:
                task = asyncio.create_task(
                    observe(f"{uri}/jobs/slow-1?token=demo-token", wait_first=True)
                )
                await asyncio.sleep(0.5)
                proc.send_signal(signal.SIGTERM)
                return await task

            seen = run(client(), timeout=20)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert (seen.code, seen.reason) == (1012, "Service restarting")
    assert seen.messages[0]["type"] == "job_started"
    assert seen.messages[0]["version"] == "1.0.0"


def _get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.headers["Content-Type"], response.read()


@pytest.mark.parametrize("adapter", ["websockets", "starlette"])
def test_serve_demo_serves_the_page(adapter: str, tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "ws_close_policy", "serve-demo", "--port", str(port),
            "--adapter", adapter, "--restart-delay", "1", "2"]  # fmt: skip
    with started("serve-demo", argv, port, tmp_path) as server:
        base = f"http://127.0.0.1:{port}"
        status, kind, body = _get(base + "/")
        assert (status, kind) == (200, "text/html; charset=utf-8")
        assert b'<script type="module" src="/demo.js"></script>' in body
        assert _get(base + "/demo.js")[1].startswith("text/javascript")
        table = json.loads(_get(base + "/advice.json")[2])
        expected = advice_table(ReconnectPolicy(restart_delay=(1.0, 2.0)))
        assert table == {**expected, "stable_after": STABLE_AFTER}
        assert json.loads(_get(base + "/token")[2]) == {"token": "demo-token"}
        with pytest.raises(urllib.error.HTTPError) as missing:
            _get(base + "/nothing-here")
        assert missing.value.code == 404
        missing.value.close()
        deadline = time.monotonic() + 10  # printed once it serves: maybe after the requests
        while f"the page: {base}/" not in server.output():
            assert time.monotonic() < deadline, server.output()
            time.sleep(0.05)


def test_demo_serve_keeps_the_page_up_after_the_script(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "ws_close_policy", "demo", "--serve", "--port", str(port)]
    with started("demo", argv, port, tmp_path) as server:
        deadline = time.monotonic() + 60
        while "serving the page at" not in server.output():
            assert time.monotonic() < deadline, server.output()
            assert server.process.poll() is None, server.output()
            time.sleep(0.1)
        assert _get(f"http://127.0.0.1:{port}/")[0] == 200
        job = run(observe(f"ws://127.0.0.1:{port}/jobs/ok-1?token=demo-token", timeout=10))
        assert (job.code, job.reason) == (1000, "Completed")  # not the script's drain
        assert "16 passed, 0 failed" in server.output()
        assert f"serving the page at http://127.0.0.1:{port}/" in server.output()
        assert server.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("adapter", ["websockets", "starlette"])
def test_serve_demo_exits_0_on_a_sigterm_as_soon_as_it_listens(
    adapter: str, tmp_path: Path
) -> None:
    # Its signal handlers are in place before its socket listens: a deploy that signals it
    # the moment it accepts gets a clean exit, not a process killed by SIGTERM (-15).
    for attempt in range(3):
        port = free_port()
        argv = [sys.executable, "-m", "ws_close_policy", "serve-demo", "--adapter", adapter,
                "--port", str(port)]  # fmt: skip
        with started(f"serve-demo-{attempt}", argv, port, tmp_path) as server:
            assert server.stop(signal.SIGTERM) == 0, server.output()


@pytest.mark.parametrize("adapter", ["websockets", "starlette"])
@pytest.mark.parametrize(
    ("refusal", "refused"), [("http", 403), ("close", (1008, "Origin not allowed"))]
)
def test_serve_demo_takes_an_origin_allow_list(
    adapter: str, refusal: str, refused: object, tmp_path: Path
) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "ws_close_policy", "serve-demo", "--adapter", adapter,
            "--port", str(port), "--refusal", refusal, "--origin", "https://app.example",
            "--origin", "none"]  # fmt: skip
    job = f"ws://127.0.0.1:{port}/jobs/ok-1?token=demo-token"
    with started("serve-demo", argv, port, tmp_path) as server:
        other = run(exchange(job, origin=Origin("https://evil.example"), wait=10))
        allowed = run(exchange(job, origin=Origin("https://app.example"), wait=10))
        without = run(exchange(job, wait=10))
        assert server.stop(signal.SIGTERM) == 0
    assert (other.status if refusal == "http" else (other.code, other.reason)) == refused
    assert (allowed.code, allowed.reason) == (1000, "Completed")
    assert (without.code, without.reason) == (1000, "Completed")


def test_demo_logs_shows_the_close_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="ws_close_policy")
    assert main(["demo", "--logs"]) == 0
    closes = [r for r in caplog.records if r.getMessage().startswith("websocket ")]
    assert len(closes) >= 16
    assert logging.getLogger("ws_close_policy").propagate  # the process's logging as it was
