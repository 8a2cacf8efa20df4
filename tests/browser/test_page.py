"""The demo page in headless Chromium against a real ``ws-close-policy serve-demo`` process:
progress, the closes a browser can read, the advice, and the reconnects it leads to; the
page unchanged against ``serve-demo --redis`` (a fleet). Each state is saved as a
screenshot in build/screenshots/."""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.adapters.stacks import Server, free_port, started
from tests.browser.conftest import screenshot
from tests.fanout.redis_server import redis_server

pytestmark = pytest.mark.browser

RESTART = ("1.5", "2.5")  # the shortened restart window the page is told, in seconds


def _serve_demo(port: int, *options: str) -> list[str]:
    return [sys.executable, "-m", "ws_close_policy", "serve-demo", "--port", str(port),
            "--job-seconds", "1", "--restart-delay", *RESTART, *options]  # fmt: skip


@contextmanager
def demo(
    tmp_path: Path, *options: str, port: int | None = None, fleet: bool = False
) -> Iterator[Server]:
    """A serve-demo process, started as a user starts it; with ``fleet``, as a fleet (two
    workers and a jobs process, through a redis-server of its own)."""
    port = port or free_port()
    with contextlib.ExitStack() as stack:
        if fleet:
            redis = stack.enter_context(redis_server(tmp_path))
            options = (*options, "--redis", redis.url, "--workers", "2")
        yield stack.enter_context(
            started("serve-demo", _serve_demo(port, *options), port, tmp_path)
        )


def _url(server: Server, query: str = "") -> str:
    return "http" + server.uri.removeprefix("ws") + "/" + query


def _start(page: Any, kind: str) -> Any:
    """Click a start button; the new job's card."""
    before = page.locator("article.job").count()
    page.click(f"[data-start={kind}]")
    page.wait_for_function(f"document.querySelectorAll('article.job').length > {before}")
    job = page.locator("article.job").first.get_attribute("data-job")
    return page.locator(f'article[data-job="{job}"]')  # this card, wherever it moves


def _until(card: Any, check: Callable[[dict[str, str]], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check(card.evaluate("(el) => ({...el.dataset})")):
            return
        time.sleep(0.05)
    raise AssertionError(f"card never got there: {card.evaluate('(el) => ({...el.dataset})')}")


def _open(page: Any, server: Server, query: str = "") -> None:
    page.goto(_url(server, query))
    page.wait_for_selector("body[data-ready=true]")


@pytest.mark.parametrize("fleet", [False, True], ids=["one-process", "fleet"])
def test_progress_then_the_policys_closes(page: Any, tmp_path: Path, fleet: bool) -> None:
    with demo(tmp_path, fleet=fleet) as server:
        _open(page, server)
        ok = _start(page, "ok")
        _until(ok, lambda d: float(ok.locator("progress").get_attribute("value") or 0) > 0)
        screenshot(page, "progress")
        _until(ok, lambda d: d.get("code") == "1000")
        assert ok.locator(".close").inner_text() == "1000 'Completed'"
        assert ok.locator(".advice").inner_text().startswith("no reconnect")
        assert ok.locator("progress").get_attribute("value") == "1"
        assert ok.get_attribute("data-state") == "done"

        slow = _start(page, "slow")
        _until(slow, lambda d: int(d.get("messages", "0")) >= 2)
        slow.locator(".cancel").click()
        _until(slow, lambda d: d.get("code") == "1001")
        assert slow.locator(".close").inner_text() == "1001 'Cancelled'"
        assert slow.get_attribute("data-action") == "stop"

        fail = _start(page, "fail")
        _until(fail, lambda d: d.get("code") == "1011")
        assert fail.locator(".close").inner_text() == "1011 'Internal error'"
        assert fail.get_attribute("data-action") == "retry"
        assert "retry in" in fail.locator(".advice").inner_text()

        big = _start(page, "big")
        _until(big, lambda d: d.get("code") == "1009")
        assert big.locator(".close").inner_text() == "1009 'Message too large'"
        assert "ask for a summary" in big.locator(".advice").inner_text()
        screenshot(page, "closes")
        # The advice: reconnect with summary=1, which completes with a summary.
        _until(big, lambda d: d.get("code") == "1000" and d.get("reconnects") == "1")
        assert big.get_attribute("data-state") == "done"
        screenshot(page, "summary")


def test_a_refused_token_with_the_browser_visible_fallback(page: Any, tmp_path: Path) -> None:
    # --refusal close: the server accepts, then closes 1008, which the page can read; the
    # advice (refresh the credentials) gets a new token from /token and reconnects.
    with demo(tmp_path, "--refusal", "close") as server:
        _open(page, server, "?token=expired-token")
        card = _start(page, "ok")
        _until(card, lambda d: d.get("action") == "refresh_credentials")
        assert card.locator(".close").inner_text() == "1008 'Authentication required'"
        screenshot(page, "refused-token-1008")
        _until(card, lambda d: d.get("code") == "1000" and d.get("reconnects") == "1")
        assert page.locator("#token").input_value() == "demo-token"


def test_a_refused_token_with_an_http_status_is_1006_to_a_browser(
    page: Any, tmp_path: Path
) -> None:
    # --refusal http (the default): HTTP 401 before the upgrade, which no browser can read.
    with demo(tmp_path) as server:
        _open(page, server, "?token=expired-token")
        card = _start(page, "ok")
        _until(card, lambda d: d.get("code") == "1006")
        assert card.locator(".close").inner_text() == "1006 (no reason)"
        assert "cannot read the HTTP status" in card.locator(".explain").inner_text()
        screenshot(page, "refused-token-1006")


def test_a_1008_on_an_open_connection_refreshes_then_reconnects(page: Any, tmp_path: Path) -> None:
    with demo(tmp_path) as server:
        _open(page, server)
        card = _start(page, "slow")
        _until(card, lambda d: int(d.get("messages", "0")) >= 1)
        card.locator(".expire").click()
        _until(card, lambda d: d.get("code") == "1008")
        assert card.locator(".close").inner_text() == "1008 'Authentication required'"
        _until(card, lambda d: d.get("reconnects") == "1" and d.get("state") == "open")
        screenshot(page, "refreshed")


def test_a_1013_backs_off(page: Any, tmp_path: Path) -> None:
    with demo(tmp_path, "--max-connections", "1") as server:
        _open(page, server)
        first = _start(page, "slow")
        _until(first, lambda d: d.get("state") == "open" and int(d.get("messages", "0")) >= 1)
        second = _start(page, "slow")
        delays = []
        for attempt in ("1", "2"):

            def reached(d: dict[str, str], attempt: str = attempt) -> bool:
                return d.get("attempt") == attempt

            _until(second, reached)
            assert second.locator(".close").inner_text() == "1013 'Try again later'"
            delays.append(float(second.get_attribute("data-delay") or "nan"))
        screenshot(page, "backoff-1013")
        # Full jitter under a growing ceiling: 0-1 s, then 0-2 s (base 1, factor 2).
        assert 0 <= delays[0] <= 1.0
        assert 0 <= delays[1] <= 2.0
        first.locator(".cancel").click()
        _until(second, lambda d: d.get("state") == "open", timeout=20)


@pytest.mark.parametrize("fleet", [False, True], ids=["one-process", "fleet"])
def test_a_restart_shows_1012_then_reconnects_inside_the_window(
    page: Any, tmp_path: Path, fleet: bool
) -> None:
    port = free_port()
    with demo(tmp_path, port=port, fleet=fleet) as server:
        _open(page, server)
        card = _start(page, "slow")
        _until(card, lambda d: int(d.get("messages", "0")) >= 1)
        closed_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        _until(card, lambda d: d.get("code") == "1012")
        assert card.locator(".close").inner_text() == "1012 'Service restarting'"
        delay = float(card.get_attribute("data-delay") or "nan")
        assert float(RESTART[0]) <= delay <= float(RESTART[1])
        screenshot(page, "restart-1012")
        assert server.process.wait(timeout=10) == 0
    (tmp_path / "again").mkdir()
    with demo(tmp_path / "again", port=port, fleet=fleet):  # the new release, same port
        _until(card, lambda d: d.get("reconnects") == "1" and d.get("state") == "open")
        assert time.monotonic() - closed_at >= float(RESTART[0])
        screenshot(page, "restart-reconnected")
