"""Real server processes for the wire matrix: every stack serves tests/adapters/apps.py on
an ephemeral 127.0.0.1 port, started the way users start it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.adapters.apps import SERVER_MAX_SIZE

ROOT = Path(__file__).resolve().parents[2]
APP = "tests.adapters.apps:app"
#: Every server the adapters are tested on: the websockets library, and ASGI servers.
STACKS = (
    "websockets",
    "uvicorn-websockets-sansio",
    "uvicorn-wsproto",
    "hypercorn",
    "granian",
    "daphne",
    "aiohttp",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def command(stack: str, port: int, extra: Sequence[str] = ()) -> list[str]:
    """How a user starts ``stack`` on ``port`` with the test app (and ``extra`` options)."""
    return [*_command(stack, port), *extra]


def _command(stack: str, port: int) -> list[str]:
    python = sys.executable
    host = "127.0.0.1"
    if stack == "websockets":
        return [python, "-m", "tests.adapters.apps", str(port)]
    if stack.startswith("uvicorn-"):
        ws = stack.removeprefix("uvicorn-")
        return [python, "-m", "uvicorn", APP, "--host", host, "--port", str(port), "--ws", ws,
                "--ws-max-size", str(SERVER_MAX_SIZE)]  # fmt: skip
    if stack == "hypercorn":
        return [python, "-m", "hypercorn", APP, "--bind", f"{host}:{port}"]
    if stack == "granian":
        return [python, "-m", "granian", "--interface", "asgi", "--host", host,
                "--port", str(port), APP]  # fmt: skip
    if stack == "aiohttp":
        return [python, "-m", "aiohttp.web", "-H", host, "-P", str(port),
                "tests.adapters.apps:aiohttp_app"]  # fmt: skip
    if stack == "daphne":
        return [python, "-m", "daphne", "-b", host, "-p", str(port),
                "--websocket-max-message-size", str(SERVER_MAX_SIZE),
                "--websocket-max-frame-size", str(SERVER_MAX_SIZE), APP]  # fmt: skip
    raise ValueError(f"unknown stack {stack!r}")


@dataclass
class Server:
    """A running server process: its base URI and where its output goes."""

    stack: str
    uri: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait for the process to exit; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        """SIGKILL the server and every process it started (its worker processes)."""
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


def _wait_until_accepting(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start:\n{log.read_text()}")


@contextmanager
def server_process(stack: str, tmp: Path, *extra: str, **env: str) -> Iterator[Server]:
    """Start ``stack`` serving the test app (``extra``: more command-line options); stop it
    (SIGTERM, then SIGKILL) afterwards."""
    port = free_port()
    with started(stack, command(stack, port, extra), port, tmp, **env) as server:
        yield server


@contextmanager
def started(name: str, argv: Sequence[str], port: int, tmp: Path, **env: str) -> Iterator[Server]:
    """Run ``argv`` (a server that will listen on ``port``) from the repository's root until
    it accepts connections; stop it (SIGTERM, then SIGKILL) afterwards."""
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
            start_new_session=True,  # its own process group: workers are stopped with it
        )
    server = Server(name, f"ws://127.0.0.1:{port}", process, log)
    try:
        _wait_until_accepting(port, process, log)
        yield server
    finally:
        if process.poll() is None:
            with suppress(subprocess.TimeoutExpired):
                server.stop()
        with suppress(ProcessLookupError):  # a worker process left behind by the server
            os.killpg(process.pid, signal.SIGKILL)
