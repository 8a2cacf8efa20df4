"""Autobahn|Testsuite through each adapter, next to its bare transport.

For every server, two echo servers run as real processes, started the way users start them:
the bare echo (conformance/bare_echo.py, no library) and the same echo through the adapter
(examples/conformance_echo.py). wstest's fuzzing client plays every selected case against
both, ``--runs`` times. A case counts when both agents give the same verdict in every run
(stable); the adapter must then score no worse than its bare transport: it may not fail
(FAILED, UNIMPLEMENTED, or a closing behaviour other than OK) where the bare transport
passes. Autobahn counts OK and NON-STRICT both as a pass; which of the two a server gets in
3.4, 4.1.5 and 4.2.5 depends on whether it reads the bad frame before the echo goes out, so
it changes from run to run on every stack, bare or not. Those differences are listed as
"stricter" / "less strict", not judged, as are cases whose verdict changes between runs.

wstest runs on Python 2.7 only; it is installed once with ``pip install --target`` into
build/autobahn/site from conformance/requirements-autobahn.txt. Reports land in
build/autobahn/run-N/ (open index.html), and a summary in build/autobahn/summary.json
(``--out`` for another directory).

    python conformance/autobahn.py [--stacks websockets hypercorn] [--runs 2]
                                   [--cases '1.*' '7.*'] [--python2 PATH]

Exit status: 0 when no stable case is worse through an adapter, 1 otherwise (2 for bad
arguments).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "autobahn"
SITE = OUT / "site"
REQUIREMENTS = ROOT / "conformance" / "requirements-autobahn.txt"
LIMIT = 16 * 1024 * 1024

STACKS = (
    "websockets",
    "uvicorn-websockets-sansio",
    "uvicorn-websockets",
    "uvicorn-wsproto",
    "hypercorn",
    "granian",
    "daphne",
    "aiohttp",
)
#: (label, module) of the two echo servers compared on each stack.
APPS = (("bare", "conformance.bare_echo"), ("adapter", "examples.conformance_echo"))
#: 9.* is throughput (messages up to 16 MiB, minutes per agent); 12.* and 13.* are
#: permessage-deflate, which not every server offers. Select them with --cases.
DEFAULT_EXCLUDE = ("9.*", "12.*", "13.*")
#: Autobahn's verdicts, best first: OK and NON-STRICT are both a pass, and INFORMATIONAL
#: cases are not graded. Anything else (FAILED) ranks last.
RANK = {"OK": 0, "NON-STRICT": 0, "INFORMATIONAL": 0, "UNIMPLEMENTED": 1}
FAILED_RANK = 2
#: Closing behaviours that pass.
CLOSE_PASSES = ("OK", "INFORMATIONAL")
#: Seconds a pass may take per case and server before wstest is taken to be stuck.
SECONDS_PER_CASE = 30


def server_command(stack: str, module: str, port: int) -> list[str]:
    """How a user starts ``module``'s echo on ``stack``."""
    python, host, app = sys.executable, "127.0.0.1", f"{module}:app"
    if stack == "websockets":
        return [python, "-m", module, str(port)]
    if stack.startswith("uvicorn-"):
        return [python, "-m", "uvicorn", app, "--host", host, "--port", str(port),
                "--ws", stack.removeprefix("uvicorn-"), "--log-level", "warning"]  # fmt: skip
    if stack == "hypercorn":
        return [python, "-m", "hypercorn", app, "--bind", f"{host}:{port}"]
    if stack == "granian":
        return [python, "-m", "granian", "--interface", "asgi", "--host", host,
                "--port", str(port), "--log-level", "warning", app]  # fmt: skip
    if stack == "aiohttp":
        return [python, "-m", "aiohttp.web", "-H", host, "-P", str(port), f"{module}:aiohttp_app"]
    if stack == "daphne":
        return [python, "-m", "daphne", "-b", host, "-p", str(port),
                "--websocket-max-message-size", str(LIMIT),
                "--websocket-max-frame-size", str(LIMIT), app]  # fmt: skip
    raise ValueError(f"unknown stack {stack!r}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_accepting(port: int, process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server on port {port} did not accept within {timeout} s")


@contextmanager
def running(stack: str, module: str, log: Path) -> Iterator[str]:
    """One echo server process in its own process group; yields its ws:// URI."""
    port = free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_command(stack, module, port),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_accepting(port, process)
        yield f"ws://127.0.0.1:{port}/"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def is_python27(executable: str) -> bool:
    # A pyenv shim exists even when it cannot run: ask the interpreter itself.
    try:
        found = subprocess.run(
            [executable, "-c", "import sys; print(sys.version_info[:2] == (2, 7))"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    except OSError:
        return False
    return found.stdout.strip() == "True"


def find_python2(given: str | None) -> str:
    """The interpreter asked for (--python2, then AUTOBAHN_PYTHON2), or one found."""
    asked_for = (("--python2", given), ("AUTOBAHN_PYTHON2", os.environ.get("AUTOBAHN_PYTHON2")))
    for source, asked in asked_for:
        if asked:
            if not is_python27(asked):
                sys.exit(f"{source}={asked!r} is not a Python 2.7 interpreter")
            return asked
    candidates = [shutil.which("python2.7")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/2.7*/bin/python")))
    for candidate in candidates:
        if candidate and is_python27(candidate):
            return candidate
    sys.exit(
        "Autobahn|Testsuite needs Python 2.7 (none found): pass --python2 PATH, set "
        "AUTOBAHN_PYTHON2, or put python2.7 on PATH (e.g. `pyenv install 2.7.18`)."
    )


def install_wstest(python2: str) -> Path:
    site = SITE
    stamp = site / ".installed"
    if stamp.exists() and stamp.read_text() == REQUIREMENTS.read_text():
        return site
    shutil.rmtree(site, ignore_errors=True)
    subprocess.run(
        [python2, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-warn-script-location", "--target", str(site), "-r", str(REQUIREMENTS)],
        check=True,
    )  # fmt: skip
    stamp.write_text(REQUIREMENTS.read_text())
    return site


def importing(site: Path) -> str:
    # addsitedir, not PYTHONPATH: zope's namespace package needs the .pth files processed.
    return f"import json, site, sys; site.addsitedir({str(site)!r}); "


def selected_cases(python2: str, site: Path, patterns: Sequence[str]) -> list[str]:
    """The case IDs ``patterns`` select, resolved by wstest's own code (which would wait
    forever for zero cases): a pattern that selects nothing is an error naming it."""
    script = importing(site) + (
        "from autobahntestsuite.case import Cases, CaseCategories, CaseSubCategories, "
        "CaseSetname, CaseBasename; from autobahntestsuite.caseset import CaseSet; "
        "cases = CaseSet(CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories); "
        "spec = json.loads(sys.argv[1]); "
        "print(json.dumps({p: [c for c in cases.resolveCasePatternList([p]) "
        "if c in cases.CasesIndices] for p in spec['cases']} if spec['cases'] else "
        "{'*': [c for c in cases.parseSpecCases({'cases': ['*'], 'exclude-cases': "
        "spec['exclude']}) if c in cases.CasesIndices]}))"
    )
    spec = {"cases": list(patterns), "exclude": list(DEFAULT_EXCLUDE)}
    found = subprocess.run(
        [python2, "-c", script, json.dumps(spec)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    by_pattern: dict[str, list[str]] = json.loads(found.stdout.strip().splitlines()[-1])
    empty = [pattern for pattern, ids in by_pattern.items() if not ids]
    if empty:
        sys.exit(f"--cases: no Autobahn case matches {', '.join(map(repr, empty))}")
    return sorted({c for ids in by_pattern.values() for c in ids}, key=case_order)


def case_order(case: str) -> list[int]:
    return [int(part) for part in case.split(".")]


def run_wstest(python2: str, site: Path, servers: list[dict[str, str]], cases: Sequence[str],
               outdir: Path) -> dict[str, dict[str, Any]]:  # fmt: skip
    """One fuzzing-client pass over ``servers``; Autobahn's index (agent -> case -> result)."""
    outdir.mkdir(parents=True, exist_ok=True)
    spec = {"outdir": str(outdir), "servers": servers, "cases": list(cases)}
    spec_file = outdir / "spec.json"
    spec_file.write_text(json.dumps(spec, indent=2))
    launcher = importing(site) + "from autobahntestsuite.wstest import run; sys.exit(run())"
    timeout = SECONDS_PER_CASE * len(cases) * len(servers)
    with (outdir / "wstest.log").open("wb") as log:
        subprocess.run(
            [python2, "-c", launcher, "-m", "fuzzingclient", "-s", str(spec_file)],
            cwd=outdir, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=timeout,
        )  # fmt: skip
    index: dict[str, dict[str, Any]] = json.loads((outdir / "index.json").read_text())
    return index


def score(result: dict[str, Any]) -> tuple[int, int]:
    """(behaviour, closing behaviour), lower is better; OK and NON-STRICT score the same."""
    behaviour = RANK.get(result["behavior"], FAILED_RANK)
    closing = 0 if result["behaviorClose"] in CLOSE_PASSES else 1
    return behaviour, closing


def verdict(result: dict[str, Any]) -> str:
    return f"{result['behavior']}/{result['behaviorClose']}"


def compare(stack: str, runs: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    bare = [run[f"{stack}/bare"] for run in runs]
    adapter = [run[f"{stack}/adapter"] for run in runs]
    worse, better, stricter, less_strict, unstable = [], [], [], [], []
    for case in sorted(bare[0], key=case_order):
        bare_verdicts = {verdict(r[case]) for r in bare}
        adapter_verdicts = {verdict(r[case]) for r in adapter}
        if len(bare_verdicts) > 1 or len(adapter_verdicts) > 1:
            unstable.append(
                f"{case}: bare {sorted(bare_verdicts)}, adapter {sorted(adapter_verdicts)}"
            )
            continue
        b, a = score(bare[0][case]), score(adapter[0][case])
        line = f"{case}: bare {verdict(bare[0][case])}, adapter {verdict(adapter[0][case])}"
        strict = bare[0][case]["behavior"], adapter[0][case]["behavior"]
        if a > b:
            worse.append(line)
        elif a < b:
            better.append(line)
        elif strict == ("OK", "NON-STRICT"):
            less_strict.append(line)
        elif strict == ("NON-STRICT", "OK"):
            stricter.append(line)
    return {
        "bare": counts(bare),
        "adapter": counts(adapter),
        "worse": worse,
        "better": better,
        "stricter": stricter,
        "less strict": less_strict,
        "unstable": unstable,
    }


def counts(runs: list[dict[str, Any]]) -> dict[str, str]:
    """How many cases got each verdict: "n", or "low-high" when it changed between runs."""
    per_run = [Counter(verdict(result) for result in run.values()) for run in runs]
    spans = {}
    for label in sorted({label for run in per_run for label in run}):
        low, high = min(run[label] for run in per_run), max(run[label] for run in per_run)
        spans[label] = f"{low}" if low == high else f"{low}-{high}"
    return spans


def stop(signum: int, _frame: object) -> None:
    print(f"stopped by signal {signum}: stopping the servers", file=sys.stderr)
    sys.exit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", nargs="+", choices=STACKS, default=list(STACKS))
    parser.add_argument("--runs", type=int, default=2, help="passes over every case (2)")
    excluded = ", ".join(DEFAULT_EXCLUDE)
    parser.add_argument("--cases", nargs="*", default=[],
                        help=f"case patterns (default: all but {excluded})")  # fmt: skip
    parser.add_argument("--python2", help="Python 2.7 interpreter for wstest")
    parser.add_argument("--out", type=Path, default=OUT,
                        help=f"reports and logs ({OUT}; wstest stays in {SITE})")  # fmt: skip
    args = parser.parse_args(argv)
    args.out = args.out.resolve()  # wstest runs in its report directory
    # Stopped from outside: unwind, so that every server process is stopped too. SIGINT is
    # set explicitly because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    python2 = find_python2(args.python2)
    site = install_wstest(python2)
    cases = selected_cases(python2, site, args.cases)
    runs = []
    with ExitStack() as processes:
        servers = []
        for name in args.stacks:
            for label, module in APPS:
                agent = f"{name}/{label}"
                log = args.out / "logs" / f"{agent.replace('/', '-')}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                servers.append(
                    {"agent": agent, "url": processes.enter_context(running(name, module, log))}
                )
        for number in range(1, args.runs + 1):
            print(f"== Autobahn pass {number} of {args.runs}: {len(cases)} cases, "
                  f"{len(servers)} servers", flush=True)  # fmt: skip
            outdir = args.out / f"run-{number}"
            try:
                runs.append(run_wstest(python2, site, servers, cases, outdir))
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
                print(f"wstest did not finish ({error}); see {outdir / 'wstest.log'}")
                return 1

    summary = {name: compare(name, runs) for name in args.stacks}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    failed = False
    for name, result in summary.items():
        print(f"\n{name}\n  bare:    {result['bare']}\n  adapter: {result['adapter']}")
        for key in ("worse", "better", "stricter", "less strict", "unstable"):
            for line in result[key]:
                print(f"  {key}: {line}")
        failed = failed or bool(result["worse"])
    print(f"\nreports: {args.out}/run-N/index.html; summary: {args.out / 'summary.json'}")
    print("FAIL: an adapter scores worse than its bare transport" if failed else
          "OK: no adapter scores worse than its bare transport in any stable case")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: the servers are stopped", file=sys.stderr)
        sys.exit(130)
