"""One log line per close, at the level that fits, with structured fields and no message
content (ws_close_policy.adapters._logs), over the in-memory transport."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.adapters.fake import FakeTransport, guarded
from tests.wire import run
from ws_close_policy import Outcome
from ws_close_policy.adapters import Closed, PolicyConnection
from ws_close_policy.adapters._logs import FIELDS


def _f(record: logging.LogRecord) -> dict[str, Any]:
    """The record's structured fields."""
    return {name: getattr(record, name, None) for name in FIELDS}


def _closes(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "ws_code", None) is not None]


async def _serve(conn: PolicyConnection, crash: bool = False) -> None:
    async with conn:
        async for message in conn:
            if crash:
                raise ValueError("the handler's bug")
            await conn.send(message)


def test_a_normal_end_is_one_info_line_with_every_field(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ws_close_policy")
    transport = FakeTransport('{"type": "ping"}')

    async def scenario() -> str:
        conn = guarded(transport)
        async with conn:
            await conn.send(await conn.receive())
        return conn.id

    connection = run(scenario())
    (record,) = _closes(caplog)
    assert record.levelno == logging.INFO
    assert all(hasattr(record, name) for name in FIELDS)
    fields = {name: getattr(record, name) for name in FIELDS}
    assert fields["ws_connection"] == connection
    assert fields["ws_peer"] == "127.0.0.1:50000"
    assert (fields["ws_code"], fields["ws_label"], fields["ws_closed_by"]) == (
        1000,
        "normal_closure",
        "local",
    )
    assert (fields["ws_outcome"], fields["ws_violation"]) == ("completed", None)
    assert (fields["ws_messages_in"], fields["ws_messages_out"]) == (1, 1)
    assert fields["ws_bytes_in"] == len('{"type": "ping"}')
    assert connection in record.getMessage()


def test_a_peer_close_is_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "ws_close_policy")
    transport = FakeTransport()
    transport.leave(4001, "bye")
    run(_serve(guarded(transport)))
    (record,) = _closes(caplog)
    assert record.levelno == logging.INFO
    assert (_f(record)["ws_code"], _f(record)["ws_closed_by"], _f(record)["ws_reason"]) == (
        4001,
        "peer",
        "bye",
    )


def test_a_violation_is_one_warning_with_the_detail_and_no_content(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, "ws_close_policy")
    secret = '{"type": "ping", "token": "hunter2", "x": [1, 2,}'  # not JSON
    run(_serve(guarded(FakeTransport(secret))))
    (record,) = _closes(caplog)
    assert record.levelno == logging.WARNING
    assert (_f(record)["ws_code"], _f(record)["ws_violation"]) == (1002, "invalid_json")
    assert _f(record)["ws_detail"] is not None
    assert repr(_f(record)["ws_detail"]) in record.getMessage()  # escaped
    assert all("hunter2" not in r.getMessage() for r in caplog.records)
    assert all("hunter2" not in str(vars(r)) for r in caplog.records)


def test_a_handler_exception_is_one_error_line_naming_it_and_the_server_gets_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ValueError, match="the handler's bug"):  # for the server to log
        run(_serve(guarded(FakeTransport('{"type": "ping"}')), crash=True))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    (record,) = errors
    assert (_f(record)["ws_code"], _f(record)["ws_outcome"]) == (1011, "failed")
    assert record.exc_info is None  # the server logs the traceback, once
    assert "ValueError: the handler's bug" in _f(record)["ws_detail"]


def test_an_exception_after_the_close_is_the_servers_to_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "ws_close_policy")
    transport = FakeTransport()

    async def scenario() -> None:
        async with guarded(transport) as conn:
            await conn.close(Outcome.COMPLETED)
            raise KeyError("after the close")

    with pytest.raises(KeyError):
        run(scenario())
    assert [r.levelno for r in _closes(caplog)] == [logging.INFO]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_closed_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    transport = FakeTransport()

    async def scenario() -> None:
        async with guarded(transport) as conn:
            transport.leave(1001)
            assert await conn.receive() is None
            assert conn.close_event is not None
            raise Closed(conn.close_event)

    run(scenario())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_peers_reason_reaches_the_fields_with_its_control_characters_escaped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "ws_close_policy")
    transport = FakeTransport()
    transport.leave(4002, "evil\nINFO fake line\x1b[31m")
    run(_serve(guarded(transport)))
    (record,) = _closes(caplog)
    assert _f(record)["ws_reason"] == "evil\\nINFO fake line\\x1b[31m"


def test_an_out_of_range_number_is_not_quoted_in_the_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    run(_serve(guarded(FakeTransport('{"type": "x", "card": 4111111111111111e999}'))))
    (record,) = _closes(caplog)
    assert _f(record)["ws_violation"] == "invalid_json"
    assert all("4111111111111111" not in str(vars(r)) for r in caplog.records)
