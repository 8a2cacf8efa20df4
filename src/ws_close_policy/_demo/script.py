"""``ws-close-policy demo``: the reference server and a scripted client, every scenario.

Each row: what the client sent, the close the profile promises, the close it observed, the
reconnect advice for it, and, where the advice is acted on, the follow-up connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .. import (
    Outcome,
    Policy,
    Profile,
    ReconnectAction,
    ReconnectPolicy,
    Violation,
    advise_reconnect,
    close_for,
)
from .client import Observation, observe
from .jobs import DemoSettings
from .probe import BAD_INPUTS
from .servers import Adapter, Served, running

MAX_CONNECTIONS = 3
BAD_TOKEN = "expired-token"


@dataclass
class Row:
    scenario: str
    sent: str
    expected: str
    observed: str
    advice: str
    follow_up: str
    ok: bool


def _expected(profile: Profile, cause: Violation | Outcome | int) -> tuple[int | None, str]:
    if isinstance(cause, Violation):
        close = profile.close_for_violation(cause)
    elif isinstance(cause, Outcome):
        close = close_for(cause, Policy(profile=profile))
    else:
        return None, f"HTTP {cause}"
    return int(close.code), close.reason


def _advice_text(code: int | None, profile: Profile) -> str:
    """The first attempt's advice, with the range its jittered delay is drawn from."""
    policy = ReconnectPolicy(profile=profile)
    low = advise_reconnect(code, 0, policy, random=lambda: 0.0)
    high = advise_reconnect(code, 0, policy, random=lambda: 1 - 1e-9)
    if low.action is ReconnectAction.STOP:
        return "stop"
    return f"{low.action.value}, wait {low.delay:.3g}-{high.delay:.3g} s"


class Demo:
    def __init__(self, served: Served, profile: Profile, token: str) -> None:
        self.served = served
        self.profile = profile
        self.uri = served.uri
        self.token = token
        self.rows: list[Row] = []

    def job(self, job_id: str, token: str | None = None, **query: str) -> str:
        params = "&".join([f"token={token or self.token}", *(f"{k}={v}" for k, v in query.items())])
        return f"{self.uri}/jobs/{job_id}?{params}"

    def record(
        self,
        scenario: str,
        sent: str,
        cause: Violation | Outcome | int,
        seen: Observation,
        follow_up: tuple[str, bool] = ("", True),
    ) -> None:
        code, reason = _expected(self.profile, cause)
        if code is None:
            expected, ok = f"HTTP {cause}", seen.status == cause
            advice = "stop" if seen.status in (401, 403) else "retry"
        else:
            expected = f"{code} {reason!r}"
            ok = (seen.code, seen.reason) == (code, reason) and seen.error is None
            advice = _advice_text(seen.code, self.profile) if seen.error is None else "-"
        note, follow_ok = follow_up
        self.rows.append(
            Row(scenario, sent, expected, seen.summary(), advice, note, ok and follow_ok)
        )

    async def run(self) -> list[Row]:
        await self.simple("job completes", "-", "ok-1", [], Outcome.COMPLETED)
        await self.simple(
            "user cancels", '{"type":"cancel"}', "slow-2", ['{"type":"cancel"}'], Outcome.CANCELLED
        )
        await self.simple("job fails", "-", "fail-3", [], Outcome.FAILED)
        await self.big_then_summary()
        await self.refresh_then_continue()
        unknown = ("unknown type", '{"type": "launch"}', Violation.UNKNOWN_TYPE, "")
        for name, data, violation, _ in [*BAD_INPUTS, unknown]:
            shown = data if isinstance(data, str) else "<binary>"
            slug = "-".join(name.split())
            await self.simple(name, shown, f"slow-{slug}", [data], violation)
        oversized = '{"type":"ping","pad":"' + "x" * (1024 * 1024) + '"}'
        await self.simple(
            "message over 1 MiB", "<1 MiB + 24 B>", "slow-big-in", [oversized], Violation.TOO_BIG
        )
        seen = await observe(self.job("ok-4", token=BAD_TOKEN))
        self.record("token refused before upgrade", "?token=expired-token", 401, seen)
        await self.overload()
        await self.drain()
        return self.rows

    async def simple(
        self,
        scenario: str,
        sent: str,
        job_id: str,
        send: list[str | bytes],
        cause: Violation | Outcome,
    ) -> Observation:
        seen = await observe(self.job(job_id), send, wait_first=True)
        self.record(scenario, sent, cause, seen)
        return seen

    async def big_then_summary(self) -> None:
        seen = await observe(self.job("big-5"), wait_first=True)
        again = await observe(self.job("big-5", summary="1"), wait_first=True)
        final = again.messages[-1] if again.messages else {}
        summary_ok = (
            again.code == _expected(self.profile, Outcome.COMPLETED)[0]
            and isinstance(final, dict)
            and final.get("payload", {}).get("summary") is True
        )
        self.record(
            "result over 32 MiB",
            "-",
            Violation.OUTBOUND_TOO_BIG,
            seen,
            (f"summary=1 -> {again.summary()}, summary-only result", summary_ok),
        )

    async def refresh_then_continue(self) -> None:
        bad = json.dumps({"type": "refresh_token", "token": BAD_TOKEN})
        seen = await observe(self.job("slow-6"), [bad], wait_first=True)
        good = json.dumps({"type": "refresh_token", "token": self.token})
        again = await observe(self.job("ok-6"), [good], wait_first=True)
        continued = again.code == _expected(self.profile, Outcome.COMPLETED)[0]
        self.record(
            "refresh_token refused",
            '{"type":"refresh_token",...}',
            Outcome.POLICY_VIOLATION,
            seen,
            (f"refresh -> new token accepted, job -> {again.summary()}", continued),
        )

    async def _holding(self, count: int, body: Callable[[], Awaitable[None]]) -> list[Observation]:
        """Keep ``count`` slow jobs open while ``body`` runs; returns how they ended."""
        held = [
            asyncio.create_task(observe(self.job(f"slow-h{i}"), wait_first=True))
            for i in range(count)
        ]
        await asyncio.sleep(0.5)
        await body()
        return list(await asyncio.gather(*held))

    async def overload(self) -> None:
        extra: list[Observation] = []

        async def one_more() -> None:
            extra.append(await observe(self.job("slow-extra"), wait_first=False))
            for held in self.served.connections:  # let the held jobs go
                await held.close(Outcome.COMPLETED)

        await self._holding(MAX_CONNECTIONS, one_more)
        self.record(
            f"connection {MAX_CONNECTIONS + 1} of {MAX_CONNECTIONS}",
            "-",
            Outcome.OVERLOADED,
            extra[0],
        )

    async def drain(self) -> None:
        async def sigterm() -> None:
            await self.served.connections.drain(window=0.5)

        seen = await self._holding(2, sigterm)
        self.record("server restarts (SIGTERM)", "-", Outcome.RESTARTING, seen[0])


async def run_demo(
    adapter: Adapter,
    profile: Profile,
    token: str = "demo-token",
    *,
    port: int = 0,
    ready: Callable[[Served], None] | None = None,
    quiet: bool = False,
) -> list[Row]:
    """Run every scenario against the reference server (on ``port``, default a free one);
    ``ready`` is called once it serves; ``quiet`` hides the server's own log lines."""
    settings = DemoSettings(
        token=token,
        profile=profile,
        max_connections=MAX_CONNECTIONS,
        step_seconds=0.1,
        quiet=quiet,
    )
    async with running(adapter, settings, port=port) as served:
        if ready is not None:
            ready(served)
        return await Demo(served, profile, token).run()


def render_rows(rows: list[Row]) -> str:
    headers = [
        "scenario",
        "client sent",
        "expected close",
        "observed",
        "advice",
        "follow-up",
        "result",
    ]
    cells = [
        [
            r.scenario,
            r.sent,
            r.expected,
            r.observed,
            r.advice,
            r.follow_up,
            "ok" if r.ok else "MISMATCH",
        ]
        for r in rows
    ]
    widths = [min(60, max(len(row[i]) for row in [headers, *cells])) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(
            (cell if len(cell) <= w else cell[: w - 1] + "…").ljust(w)
            for cell, w in zip(row, widths, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])
