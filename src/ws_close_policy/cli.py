"""The ``ws-close-policy`` command line (also ``python -m ws_close_policy``).

``codes`` and ``explain`` need nothing but the core; ``demo``, ``serve-demo`` and ``probe``
need the ``websockets`` extra (and ``starlette`` plus uvicorn for ``--adapter starlette``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import socket
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote

from ._report import FORMATS, code_row, code_rows, render
from .codes import describe
from .profile import PRESETS, Profile, profile_named

if TYPE_CHECKING:
    from ._demo.jobs import DemoSettings

__all__ = ["main"]

ADAPTERS = ("websockets", "starlette")


def _profile_arg(value: str) -> Profile:
    try:
        return profile_named(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _code_arg(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a close code: {value!r} (expected an integer)"
        ) from None


def _positive_arg(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _positive_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if not (number > 0 and math.isfinite(number)):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value!r}")
    return number


def _add_profile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        type=_profile_arg,
        default=Profile.ACTIONABLE,
        help=f"one of {', '.join(PRESETS)} (default: ACTIONABLE)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ws-close-policy",
        description="WebSocket close codes: what they mean and what to do about them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    codes = commands.add_parser("codes", help="print the close-code table for a profile")
    _add_profile(codes)
    codes.add_argument("--format", choices=FORMATS, default="table", help="default: table")

    explain = commands.add_parser("explain", help="explain one close code")
    explain.add_argument("code", type=_code_arg, help="any integer, e.g. 1008 or 4001")
    _add_profile(explain)

    demo = commands.add_parser("demo", help="run the reference server and every scenario")
    demo.add_argument("--adapter", choices=ADAPTERS, default="websockets")
    _add_profile(demo)
    demo.add_argument(
        "--serve",
        action="store_true",
        help="keep serving the page after the scripted run, until SIGTERM or SIGINT",
    )
    demo.add_argument("--port", type=int, default=0, help="default: a free port")
    demo.add_argument(
        "--logs",
        action="store_true",
        help="show the library's close log lines and the server's own lines with the table",
    )

    serve = commands.add_parser("serve-demo", help="serve the reference job-progress server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    serve.add_argument("--adapter", choices=ADAPTERS, default="websockets")
    serve.add_argument("--token", default="demo-token")
    serve.add_argument("--max-connections", type=_positive_arg, default=None)
    serve.add_argument(
        "--job-seconds", type=float, default=1.0, help="how long ok-/fail-/big- jobs run"
    )
    serve.add_argument(
        "--refusal",
        choices=("http", "close"),
        default="http",
        help="refuse a bad token with HTTP 401 before the upgrade (default; a browser sees "
        "only 1006) or accept and close 1008 (which a browser reads)",
    )
    serve.add_argument(
        "--restart-delay",
        nargs=2,
        type=float,
        default=(5.0, 30.0),
        metavar=("LOW", "HIGH"),
        help="the reconnect window after 1012 that clients are told (default: 5 30)",
    )
    serve.add_argument(
        "--origin",
        action="append",
        metavar="ORIGIN",
        help="an allowed Origin header value, e.g. http://127.0.0.1:8765 (repeatable; 'none' "
        "allows clients that send none); refused as --refusal says (HTTP 403, or close 1008). "
        "Default: any Origin",
    )
    serve.add_argument(
        "--redis",
        metavar="URL",
        help="run as a fleet: worker processes and a jobs process, the jobs' messages "
        "reaching every watcher through this Redis (e.g. redis://127.0.0.1:6379/0; needs "
        "the redis extra)",
    )
    serve.add_argument(
        "--workers",
        type=_positive_arg,
        default=None,
        help="server worker processes sharing the port, with --redis (default: 2)",
    )
    _add_profile(serve)

    probe = commands.add_parser(
        "probe",
        help="send common bad inputs to any server and say what it did instead",
        description="Send common bad inputs to any WebSocket server, one connection each, "
        "all at once; show what the profile expects, what the server did, and the fix. "
        "Exits 0 only when every close is the expected one.",
    )
    probe.add_argument("url", help="ws:// or wss:// URL")
    _add_profile(probe)
    probe.add_argument("--token", help="appended to the URL as ?token=...")
    probe.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a header for the handshake (repeatable), e.g. 'Authorization: Bearer abc'",
    )
    probe.add_argument("--max-bytes", type=_positive_arg, default=1_048_576)
    probe.add_argument(
        "--timeout",
        type=_positive_float,
        default=3.0,
        help="seconds to wait for each close (default 3); the inputs run at once",
    )
    probe.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def _codes(args: argparse.Namespace) -> int:
    print(render(code_rows(args.profile), args.format, args.profile))
    return 0


def _explain(args: argparse.Namespace) -> int:
    row = code_row(args.code, args.profile)
    wire = "yes" if row.sendable else "no: never sent in a close frame"
    lines = [
        describe(args.code),
        f"  meaning:          {row.meaning or '(no registered meaning)'}",
        f"  sent by:          {row.sent_by}",
        f"  on the wire:      {wire}",
        f"  server sends it:  {', '.join(row.server_situations) or '(in no situation)'}",
        f"  client action:    {row.client_action} (profile {args.profile.name})",
    ]
    print("\n".join(lines))
    return 0


def _require(module: str, extra: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise SystemExit(
            f"ws-close-policy: this command needs {module}: pip install 'ws-close-policy[{extra}]'"
        ) from None


def _demo(args: argparse.Namespace) -> int:
    _require("websockets", "websockets")
    if args.adapter == "starlette":
        _require("uvicorn", "starlette")
    from ._demo.jobs import DemoSettings
    from ._demo.script import render_rows, run_demo
    from ._demo.servers import Served, serve_until_signalled

    served_on: list[Served] = []
    library, silent = logging.getLogger("ws_close_policy"), logging.NullHandler()
    propagate = library.propagate
    if args.logs:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    else:  # the table says what happened; the close lines are behind --logs
        library.addHandler(silent)
        library.propagate = False

    async def demo_then_serve() -> bool:
        rows = await run_demo(
            args.adapter, args.profile, port=args.port, ready=served_on.append, quiet=not args.logs
        )
        print(f"reference job-progress server on {args.adapter}, profile {args.profile.name}\n")
        print(render_rows(rows))
        failed = sum(not row.ok for row in rows)
        print(f"\n{len(rows) - failed} passed, {failed} failed", flush=True)
        if args.serve:  # a fresh server on the same port: the script ended with a drain
            page = served_on[0].page
            port = int(page.rsplit(":", 1)[1].strip("/"))
            print(f"serving the page at {page} until SIGTERM or SIGINT", flush=True)
            settings = DemoSettings(profile=args.profile)
            await serve_until_signalled(args.adapter, settings, "127.0.0.1", port)
        return failed == 0

    try:
        passed = asyncio.run(demo_then_serve())
    except OSError as exc:
        raise SystemExit(f"ws-close-policy: cannot serve on port {args.port}: {exc}") from None
    finally:  # the process's logging as it was (main() runs inside tests too)
        library.removeHandler(silent)
        library.propagate = propagate
    return 0 if passed else 1


def _serve_demo(args: argparse.Namespace) -> int:
    _require("websockets", "websockets")
    if args.adapter == "starlette":
        _require("uvicorn", "starlette")
    from ._demo.jobs import PROGRESS_STEPS, DemoSettings
    from ._demo.servers import serve_until_signalled

    pid = " %(process)d" if args.redis is not None else ""  # a fleet: which process says it
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s{pid} %(name)s %(message)s")
    if not args.job_seconds > 0:
        raise SystemExit("ws-close-policy: --job-seconds must be positive")
    low, high = args.restart_delay
    if not 0 <= low <= high:
        raise SystemExit("ws-close-policy: --restart-delay needs 0 <= LOW <= HIGH")
    settings = DemoSettings(
        token=args.token,
        profile=args.profile,
        max_connections=args.max_connections,
        step_seconds=args.job_seconds / PROGRESS_STEPS,
        refusal=args.refusal,
        restart_delay=(low, high),
        origins=None
        if args.origin is None
        else tuple(None if o == "none" else o for o in args.origin),
    )

    def ready(uri: str) -> None:
        page = "http" + uri.removeprefix("ws") + "/"
        quoted = quote(args.token, safe="")
        token = "" if args.token == "demo-token" else f"?token={quoted}"
        print(f"serving {uri}/jobs/{{job_id}}?token={quoted} on {args.adapter}", flush=True)
        print(f"the page: {page}{token}", flush=True)

    if args.redis is not None:
        return _serve_fleet(args, settings, ready)
    if args.workers is not None:
        raise SystemExit("ws-close-policy: --workers needs --redis (the jobs run elsewhere)")
    try:
        asyncio.run(
            serve_until_signalled(args.adapter, settings, args.host, args.port, ready=ready)
        )
    except OSError as exc:
        raise SystemExit(
            f"ws-close-policy: cannot serve on {args.host}:{args.port}: {exc}"
        ) from None
    return 0


def _serve_fleet(
    args: argparse.Namespace, settings: DemoSettings, ready: Callable[[str], None]
) -> int:
    """``serve-demo --redis URL``: worker processes on one socket, and a jobs process."""
    _require("redis", "redis")
    import redis

    from ._demo.fleet import serve_fleet
    from ._demo.servers import listen, serve_until_signalled

    try:
        redis.Redis.from_url(args.redis)  # the URL only: nothing connects yet
    except ValueError as exc:
        raise SystemExit(f"ws-close-policy: --redis: {exc}") from None
    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        raise SystemExit(
            f"ws-close-policy: cannot serve on {args.host}:{args.port}: {exc}"
        ) from None
    workers = 2 if args.workers is None else args.workers
    ready(f"ws://{args.host}:{sock.getsockname()[1]}")
    print(f"{workers} workers and a jobs process, through {args.redis}", flush=True)

    def worker(sock: socket.socket) -> None:
        serving = serve_until_signalled(
            args.adapter, settings, args.host, args.port, sock=sock, redis=args.redis
        )
        asyncio.run(serving)

    return serve_fleet(worker, args.redis, settings, sock, workers)


def _probe(args: argparse.Namespace) -> int:
    _require("websockets", "websockets")
    from ._demo.probe import Refused, run_probe

    url = args.url
    if not url.startswith(("ws://", "wss://")):
        raise SystemExit(f"ws-close-policy: not a WebSocket URL: {url!r} (use ws:// or wss://)")
    if args.token:
        url += ("&" if "?" in url else "?") + "token=" + quote(args.token, safe="")
    headers = dict(_header(h) for h in args.header)
    try:
        results = asyncio.run(
            run_probe(
                url,
                args.profile,
                max_bytes=args.max_bytes,
                timeout=args.timeout,
                headers=headers,
                credentials=bool(args.token or headers),
            )
        )
    except Refused as refused:
        if args.json:
            print(json.dumps({"url": args.url, "error": str(refused)}, indent=2))
            return 1
        raise SystemExit(f"ws-close-policy: {args.url}: {refused}") from None
    failed = sum(not r.ok for r in results)
    if args.json:
        report = {
            "url": args.url,
            "profile": args.profile.name,
            "passed": len(results) - failed,
            "failed": failed,
            "results": [r.as_dict() for r in results],
        }
        print(json.dumps(report, indent=2))
        return 1 if failed else 0
    width = max(len(r.name) for r in results)
    print(f"probing {args.url} (profile {args.profile.name})\n")
    for r in results:
        expected = f"{int(r.expected.code)} {r.expected.reason!r}"
        verdict = "ok" if r.ok else "MISMATCH" if r.read else "NOT READ"
        print(f"{r.name.ljust(width)}  {verdict:8}  expected {expected}; {r.diagnosis}")
        if r.fix is not None:
            print(f"{'':{width}}            fix: {r.fix}")
    if not all(r.read for r in results):
        print(
            "\nThe server closed connections before reading what was sent: get past that "
            "close first (credentials: --token or --header; a job that exists), then probe again."
        )
    print(f"\n{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise SystemExit(f"ws-close-policy: --header must be 'NAME: VALUE', got {text!r}")
    return name.strip(), value.strip()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    args = _parser().parse_args(argv)
    commands = {
        "codes": _codes,
        "explain": _explain,
        "demo": _demo,
        "serve-demo": _serve_demo,
        "probe": _probe,
    }
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
