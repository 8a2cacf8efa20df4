"""What the docs say holds: every line of a Python example in the README or docs/ that ends
in ``# SomeError: message`` raises that error with that message; docs/api.md is what the
code says; every test the docs cite exists."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

import ws_close_policy
from ws_close_policy._actions import Close, Send

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
RAISES = re.compile(r"^(?P<expr>\S.*?)\s+# (?P<error>[A-Z]\w*Error): (?P<message>.+)$")


def _claims() -> list[tuple[str, str, str, str]]:
    claims = []
    for doc in DOCS:
        for block in BLOCK.findall(doc.read_text()):
            for line in block.splitlines():
                match = RAISES.match(line)
                if match:
                    claims.append((doc.name, match["expr"], match["error"], match["message"]))
    return claims


CLAIMS = _claims()


def test_the_docs_make_such_claims() -> None:
    assert len(CLAIMS) >= 5


@pytest.mark.parametrize(("doc", "expr", "error", "message"), CLAIMS)
def test_documented_error(doc: str, expr: str, error: str, message: str) -> None:
    namespace = {name: getattr(ws_close_policy, name) for name in ws_close_policy.__all__}
    namespace.update(Close=Close, Send=Send)
    with pytest.raises((TypeError, ValueError)) as raised:
        eval(expr, namespace)
    assert type(raised.value).__name__ == error
    assert str(raised.value).startswith(message.removesuffix("...").rstrip())


def _apidoc() -> ModuleType:
    spec = importlib.util.spec_from_file_location("apidoc", ROOT / "docs" / "apidoc.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_api_md_is_generated_from_the_code() -> None:
    # Every public name, its signature and its docstring's first paragraph: a signature in
    # the API reference cannot drift from the code.
    assert (ROOT / "docs" / "api.md").read_text() == _apidoc().api_doc(), "run `make docs`"


def test_api_md_covers_every_public_module() -> None:
    public = sorted(
        name
        for name in (f"ws_close_policy.{p}" for p in _package_paths())
        if not any(part.startswith("_") for part in name.split(".")) and name in sys.modules
    )
    documented = set(_apidoc().MODULES)
    assert [m for m in public if m not in documented and not m.endswith("cli")] == []


def _package_paths() -> list[str]:
    src = Path(ws_close_policy.__file__).parent
    paths = []
    for path in src.rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts and parts != ["__main__"]:
            importlib.import_module(".".join(["ws_close_policy", *parts]))
            paths.append(".".join(parts))
    return paths


CITED_TEST = re.compile(r"`(test_\w+)(?![\w.])")  # a test, not a test_*.py file


def test_every_test_the_docs_cite_exists() -> None:
    # A claim backed by a test names it; a renamed or deleted test must not leave the
    # claim citing nothing.
    defined = {
        match
        for path in (ROOT / "tests").rglob("*.py")
        for match in re.findall(r"^\s*(?:async )?def (test_\w+)", path.read_text(), re.M)
    }
    cited = {(doc.name, name) for doc in DOCS for name in CITED_TEST.findall(doc.read_text())}
    assert len(cited) >= 10
    assert sorted((doc, name) for doc, name in cited if name not in defined) == []
