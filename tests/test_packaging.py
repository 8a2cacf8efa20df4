"""The package is pure Python: it imports with no dependency, builds one py3-none-any wheel
with no compiled file, and that wheel installs and runs in a clean venv."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

import ws_close_policy

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(ws_close_policy.__file__).resolve().parent.parent
OPTIONAL = (
    "websockets",
    "starlette",
    "aiohttp",
    "orjson",
    "msgspec",
    "hypothesis",
    "typing_extensions",
)


def test_py_typed_is_shipped() -> None:
    assert (Path(ws_close_policy.__file__).parent / "py.typed").is_file()


def _bare_python(tmp_path: Path, *, with_pip: bool = False) -> Path:
    env_dir = tmp_path / "bare"
    venv.create(env_dir, with_pip=with_pip, system_site_packages=False)
    return env_dir / "bin" / "python"


def test_imports_with_no_dependency(tmp_path: Path) -> None:
    python = _bare_python(tmp_path)
    site = subprocess.check_output(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
    ).strip()
    (Path(site) / "ws_close_policy.pth").write_text(f"{SRC}\n")
    check = (
        "import importlib.util, sys\n"
        f"optional = {OPTIONAL!r}\n"
        "assert all(importlib.util.find_spec(m) is None for m in optional), 'not isolated'\n"
        "import ws_close_policy\n"
        "from ws_close_policy import *\n"
        "import ws_close_policy.cli, ws_close_policy.metrics, ws_close_policy.adapters\n"
        "loaded = sorted(m for m in optional if m in sys.modules)\n"
        "assert not loaded, loaded\n"
        "print('ok', int(ws_close_policy.Close(1000).code))\n"
    )
    result = subprocess.run(
        [python, "-I", "-c", check], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok 1000"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from this checkout (no build isolation: hatchling is a dev tool)."""
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("no source checkout next to the tests: nothing to build")
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", out, ROOT],
        check=True,
        capture_output=True,
        timeout=180,
    )
    (built,) = out.glob("*.whl")
    return built


def test_wheel_is_pure_python(wheel: Path) -> None:
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    compiled = [n for n in names if n.endswith((".so", ".pyd", ".c", ".dylib", ".dll"))]
    assert compiled == []
    assert "ws_close_policy/py.typed" in names
    assert {"ws_close_policy/_demo/page/index.html", "ws_close_policy/_demo/page/demo.js"} <= set(
        names
    )  # the demo's browser page
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Dist" not in text.split("Provides-Extra")[0]  # no runtime dependency


def test_wheel_installs_and_runs_in_a_clean_venv(wheel: Path, tmp_path: Path) -> None:
    python = _bare_python(tmp_path, with_pip=True)
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", wheel],
        check=True,
        timeout=120,
    )
    result = subprocess.run(
        [python.parent / "ws-close-policy", "codes"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("profile: ACTIONABLE")
    assert "1008" in result.stdout


def test_version_is_exposed() -> None:
    assert ws_close_policy.__version__ == version("ws-close-policy")
    assert sys.version_info >= (3, 11)
