"""The command line: `codes` in every format, errors without tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ws_close_policy.cli import main


def test_codes_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codes"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("profile: ACTIONABLE")
    line_1002 = next(line for line in out.splitlines() if line.startswith("1002"))
    assert "PROTOCOL_ERROR" in line_1002
    assert "invalid_json" in line_1002
    assert "stop" in line_1002
    assert len([line for line in out.splitlines() if line[:4].isdigit()]) == 16


def test_codes_json_follows_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codes", "--profile", "rfc_strict", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["profile"] == "RFC_STRICT"
    rows = {row["code"]: row for row in data["codes"]}
    assert "violation:invalid_json" in rows[1008]["server_situations"]
    assert rows[1005]["sendable"] is False


def test_codes_markdown_lists_private_codes_of_graphql_ws(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["codes", "--profile", "GRAPHQL_WS", "--format", "markdown"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| code |")
    assert any(line.startswith("| 4400 |") and "invalid_json" in line for line in out)


def test_unknown_profile_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["codes", "--profile", "nope"])
    assert exc.value.code == 2
    assert "unknown profile 'nope'" in capsys.readouterr().err


def test_module_and_console_script() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ws_close_policy", "codes"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "1011  INTERNAL_ERROR" in out
    script = shutil.which(
        "ws-close-policy", path=str(__import__("pathlib").Path(sys.executable).parent)
    )
    assert script is not None, "console script not installed"
    out2 = subprocess.run([script, "codes"], capture_output=True, text=True, check=True, timeout=60)
    assert out2.stdout == out


def test_close_codes_doc_has_not_drifted() -> None:
    from ws_close_policy._report import close_codes_doc

    doc = Path(__file__).parent.parent / "docs" / "close-codes.md"
    assert doc.read_text(encoding="utf-8") == close_codes_doc(), "run `make docs`"
