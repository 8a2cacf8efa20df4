"""What the docs say about errors holds: every line of a Python example in the README or
docs/ that ends in ``# SomeError: message`` raises that error with that message."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import ws_close_policy
from ws_close_policy.actions import Close, Send

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


PUBLIC_MODULES = [
    "ws_close_policy",
    "ws_close_policy.client",
    "ws_close_policy.adapters.connection",
    "ws_close_policy.adapters.websockets",
    "ws_close_policy.adapters.starlette",
    "ws_close_policy.adapters.logs",
    "ws_close_policy.metrics",
    "ws_close_policy.metrics.prometheus",
    "ws_close_policy.metrics.opentelemetry",
    "ws_close_policy.codes",
]


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_api_md_names_every_export(module: str) -> None:
    api = (ROOT / "docs" / "api.md").read_text()
    exported = importlib.import_module(module).__all__
    missing = [name for name in exported if f"`{name}" not in api]
    assert missing == [], f"docs/api.md does not name {missing} from {module}"
