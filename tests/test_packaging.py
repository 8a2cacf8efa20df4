"""The package imports with only its runtime dependency, and ships its type information."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

import typing_extensions

import ws_close_policy

SRC = Path(ws_close_policy.__file__).resolve().parent.parent
OPTIONAL = ("websockets", "starlette", "orjson", "msgspec", "hypothesis")


def test_py_typed_is_shipped() -> None:
    assert (Path(ws_close_policy.__file__).parent / "py.typed").is_file()


def test_imports_with_only_typing_extensions(tmp_path: Path) -> None:
    env_dir = tmp_path / "bare"
    venv.create(env_dir, with_pip=False, system_site_packages=False)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    (site / "typing_extensions.py").write_bytes(Path(typing_extensions.__file__).read_bytes())
    (site / "ws_close_policy.pth").write_text(f"{SRC}\n")
    check = (
        "import importlib.util, sys\n"
        f"optional = {OPTIONAL!r}\n"
        "assert all(importlib.util.find_spec(m) is None for m in optional), 'not isolated'\n"
        "import ws_close_policy\n"
        "from ws_close_policy import *\n"
        "import ws_close_policy.cli, ws_close_policy.report\n"
        "loaded = sorted(m for m in optional if m in sys.modules)\n"
        "assert not loaded, loaded\n"
        "print('ok', ws_close_policy.Close(1000).payload())\n"
    )
    result = subprocess.run(
        [python, "-I", "-c", check], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok b'\\x03\\xe8'"


def test_version_is_exposed() -> None:
    from importlib.metadata import version

    assert ws_close_policy.__version__ == version("ws-close-policy")
    assert sys.version_info >= (3, 11)
