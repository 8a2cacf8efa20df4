"""The aiohttp adapter's own surface, over a real aiohttp server on 127.0.0.1 and a real
client: the refusals before the upgrade, ``websocket()``'s message limit, argument errors.
What every adapter shares (codes, drain, fan-out, jobs) is in the wire matrix."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from websockets.typing import Origin

from tests.aiohttp_server import aiohttp_server
from tests.wire import Seen, exchange, run
from ws_close_policy import InboundPolicy, Policy, Reject
from ws_close_policy.adapters import Connections
from ws_close_policy.adapters.aiohttp import admit, authenticate, check_origin, guard, websocket

POLICY = Policy(inbound=InboundPolicy(max_bytes=1000, codec="raw"))
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _app(
    *decorators: Callable[[Handler], Handler], **options: Any
) -> Callable[[], web.Application]:
    """Echo one message through the adapter, then close (1000 at the block's exit), behind
    ``decorators``; ``options`` for ``websocket()``.
    A factory: an aiohttp app belongs to the event loop that first ran it."""

    async def echo(request: web.Request) -> web.StreamResponse:
        ws = websocket(POLICY, **options)
        async with guard(ws, request, POLICY) as conn:
            async for message in conn:
                await conn.send(message)
                break
        return ws

    handler: Handler = echo
    for decorate in reversed(decorators):
        handler = decorate(handler)

    def app() -> web.Application:
        application = web.Application()
        application.router.add_get("/", handler)
        return application

    return app


def _try(app: Callable[[], web.Application], *send: str, path: str = "/", **kwargs: Any) -> Seen:
    async def scenario() -> Seen:
        async with aiohttp_server(app()) as uri:
            return await exchange(uri + path, *send, wait=5, **kwargs)

    return run(scenario())


def _token(request: web.Request) -> bool:
    return request.query.get("token") == "t"


async def _async_token(request: web.Request) -> bool:
    return _token(request)


@pytest.mark.parametrize("check", [_token, _async_token])
def test_authenticate_lets_a_good_token_through_and_answers_401(
    check: Callable[[web.Request], Any],
) -> None:
    app = _app(authenticate(check, realm="jobs"))
    refused = _try(app)
    assert refused.status == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="jobs"'
    passed = _try(app, "hi", path="/?token=t")
    assert (passed.status, passed.received, passed.code) == (None, ["hi"], 1000)


def test_a_check_may_answer_with_its_own_reject_and_a_failing_check_is_401(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert _try(_app(authenticate(lambda _: Reject.forbidden()))).status == 403

    def broken(_: web.Request) -> bool:
        raise RuntimeError("the token store is down")

    with caplog.at_level(logging.ERROR, logger="ws_close_policy"):
        assert _try(_app(authenticate(broken))).status == 401
    assert "pre-upgrade check failed" in caplog.text  # logged, never sent


def test_check_origin_answers_403_to_another_origin() -> None:
    app = _app(check_origin(["https://app.example.com"]))
    assert _try(app, origin=Origin("https://evil.example")).status == 403
    assert _try(app).status == 403  # no Origin: not in this list
    allowed = _try(app, "hi", origin=Origin("https://app.example.com"))
    assert (allowed.status, allowed.received, allowed.code) == (None, ["hi"], 1000)


def test_admit_answers_503_with_retry_after_when_full_or_draining() -> None:
    full = Connections(POLICY, max_open=1)
    full.admission()  # the first connection's own admission does not hold it open
    draining = Connections(POLICY)
    run(draining.drain(window=0))  # nothing open: the drain only stops admission
    refused = _try(_app(admit(draining, retry_after=7)))
    assert (refused.status, refused.headers["retry-after"]) == (503, "7")
    assert _try(_app(admit(Connections(POLICY))), "hi").received == ["hi"]


@pytest.mark.parametrize(
    ("options", "size", "closed"),
    [
        ({}, 1000, None),  # at the policy's limit: echoed
        ({}, 1500, "policy"),  # over it, within the server's (twice): the policy's words
        ({}, 2500, "aiohttp"),  # over the server's: aiohttp refuses it from the header
        ({"max_msg_size": 0}, 2500, "aiohttp"),  # aiohttp's "none" still gets the limit
        ({"max_msg_size": 1200}, 1500, "aiohttp"),  # yours, stricter, wins
    ],
)
def test_websocket_gives_aiohttp_the_merged_message_limit(
    options: dict[str, Any], size: int, closed: str | None
) -> None:
    seen = _try(_app(**options), "x" * size)
    if closed is None:
        assert (seen.received, seen.code) == (["x" * size], 1000)
        return
    assert (seen.received, seen.code) == ([], 1009)
    assert (seen.reason == "Message too large") is (closed == "policy"), seen.reason


def test_a_limit_of_yours_below_the_policy_is_an_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^max_msg_size: a message limit of 10 bytes"):
        websocket(POLICY, max_msg_size=10)
    with pytest.raises(TypeError, match="max_msg_size"):
        websocket(POLICY, max_msg_size="big")


def test_arguments_are_checked_when_the_hooks_are_built() -> None:
    with pytest.raises(TypeError, match="check"):
        authenticate(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="connections"):
        admit("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ws"):
        guard("x", None)  # type: ignore[arg-type]
