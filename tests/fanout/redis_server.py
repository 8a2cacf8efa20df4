"""A real ``redis-server`` (Debian's, installed by ``make test-redis``) on a free
127.0.0.1 port, without persistence, stopped whatever happens; it can be killed and
started again on the same port, as a restart mid-job does."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.adapters.stacks import free_port

BINARY = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """One redis-server process on ``port``; ``kill`` and ``start`` again at will."""

    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [BINARY, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--logfile", str(self.log)]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no goodbye to the clients, as a crash or an OOM kill."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None


@contextmanager
def redis_server(tmp: Path, *, start: bool = True) -> Iterator[RedisServer]:
    """A redis-server on a free port (started unless ``start`` is false), killed at the end."""
    if not Path(BINARY).exists():
        pytest.fail("redis-server is not installed: run `make test-redis`, which installs it")
    server = RedisServer(free_port(), tmp / "redis.log")
    try:
        if start:
            server.start()
        yield server
    finally:
        server.kill()
