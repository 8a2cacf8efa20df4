"""The examples, run as users run them (`python examples/websockets_server.py`,
`uvicorn examples.fastapi_app:app`, `python examples/aiohttp_app.py`), behave as their
comments say; the README shows the first two exactly as they are in examples/."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.typing import Origin

from tests.adapters.stacks import Server, free_port, started
from tests.wire import Seen, close_received, exchange, run

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ("websockets_server.py", "fastapi_app.py", "aiohttp_app.py")
IN_README = EXAMPLES[:2]
#: After SIGTERM uvicorn re-raises the signal once it has shut down (with or without this
#: library), so its exit status is "killed by SIGTERM"; the other examples exit 0.
EXIT_STATUS = {"websockets_server.py": 0, "fastapi_app.py": -signal.SIGTERM, "aiohttp_app.py": 0}
DRAIN_WINDOW = 5.0  # Connections' default
#: What uvicorn's default WebSocket stack logs after every HTTP refusal (401, 403, 503), with
#: or without this library (uvicorn pull request 3138); docs/adapters.md says so.
UVICORN_DENIAL_LINE = "ERROR:    ASGI callable returned without completing handshake."


def _argv(name: str, port: int) -> list[str]:
    if name != "fastapi_app.py":
        return [sys.executable, f"examples/{name}", str(port)]
    app = "examples.fastapi_app:app"
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]


@pytest.fixture(params=EXAMPLES)
def example(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    port = free_port()
    with started(request.param, _argv(request.param, port), port, tmp_path) as server:
        yield server


@pytest.mark.parametrize("name", IN_README)
def test_readme_shows_the_examples_as_they_are(name: str) -> None:
    source = (ROOT / "examples" / name).read_text()
    assert f"```python\n{source}```" in (ROOT / "README.md").read_text()


def test_the_example_does_what_its_comments_say(example: Server) -> None:
    job = example.uri + "/jobs/42"

    async def scenario() -> dict[str, Seen]:
        return {
            "pong, cancel": await exchange(
                job + "?token=demo-token", '{"type": "ping"}', '{"type": "cancel"}'
            ),
            "bad JSON": await exchange(job + "?token=demo-token", "{not json"),
            "unknown job": await exchange(example.uri + "/jobs/7?token=demo-token"),
            "wrong token": await exchange(job + "?token=wrong"),
            "longer token": await exchange(job + "?token=demo-token-and-more"),
            "token elsewhere": await exchange(job + "?x=token=demo-token"),
            "other origin": await exchange(
                job + "?token=demo-token", origin=Origin("https://evil.example")
            ),
            "app origin": await exchange(
                job + "?token=demo-token",
                '{"type": "ping"}',
                '{"type": "cancel"}',
                origin=Origin("https://app.example.com"),
            ),
        }

    seen = run(scenario())
    for name in ("pong, cancel", "app origin"):
        received = [json.loads(m) for m in seen[name].received]
        answers = [m for m in received if m["type"] != "progress"]  # the job pushes meanwhile
        assert answers == [{"type": "pong", "job": "42"}]
        assert (seen[name].code, seen[name].reason) == (1001, "Cancelled")
    assert (seen["bad JSON"].code, seen["bad JSON"].reason) == (1002, "Invalid JSON")
    assert (seen["unknown job"].code, seen["unknown job"].reason) == (4004, "Job not found")
    for name in ("wrong token", "longer token", "token elsewhere"):
        assert seen[name].status == 401, name
        assert seen[name].headers["www-authenticate"].startswith("Bearer"), name
    assert seen["other origin"].status == 403
    assert "Traceback" not in example.output()
    errors = [line for line in example.output().splitlines() if "ERROR" in line]
    assert set(errors) <= {UVICORN_DENIAL_LINE}, errors


async def _held(uri: str) -> tuple[tuple[int, str] | None, float]:
    """A client of a job: it reads the progress until the server closes."""
    async with connect(uri, close_timeout=30) as ws:
        seen = await close_received(ws, 30)
        return seen, time.monotonic()


def test_sigterm_drains_the_example(example: Server) -> None:
    uri = example.uri + "/jobs/42?token=demo-token"

    async def scenario() -> tuple[list[tuple[tuple[int, str] | None, float]], float]:
        clients = [asyncio.create_task(_held(uri)) for _ in range(6)]
        await asyncio.sleep(1.0)  # every client is connected and in its guard block
        sent = time.monotonic()
        example.process.send_signal(signal.SIGTERM)
        return list(await asyncio.gather(*clients)), sent

    results, sent = run(scenario(), timeout=30)
    assert [seen for seen, _ in results] == [(1012, "Service restarting")] * 6, example.output()
    offsets = sorted(at - sent for _, at in results)
    assert offsets[-1] < DRAIN_WINDOW + 1.0
    assert offsets[-1] - offsets[0] > DRAIN_WINDOW / 10  # spread, not all at once
    assert example.process.wait(timeout=DRAIN_WINDOW + 3) == EXIT_STATUS[example.stack]
    assert "Traceback" not in example.output()
