"""The package's shape: no import cycles, a core that needs only the standard library and
reads no clock or global random source, no private names imported across modules, one
import path per public name, a small top level, and adapters that translate while the core
decides."""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ws_close_policy
from ws_close_policy.adapters import Transport

PACKAGE = Path(ws_close_policy.__file__).resolve().parent
#: Everything else is the sans-IO core.
NOT_CORE = ("adapters", "client", "_demo", "cli", "__main__", "testing", "metrics", "fanout")
#: The adapter modules proper: one per server family, each translating, nothing else.
ADAPTERS = {"websockets": 250, "starlette": 250, "aiohttp": 150}  # and their line budgets


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(["ws_close_policy", *parts])] = path
    return modules


MODULES = _modules()


def _imports(
    name: str, path: Path, *, module_level: bool = False
) -> Iterator[tuple[str, list[str]]]:
    """(module imported, names taken from it) for every import in ``path``, resolved; with
    ``module_level``, only those run on import (not the lazy ones inside functions)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }
    nodes = tree.body if module_level else list(ast.walk(tree))
    for node in nodes:
        if id(node) in typing_only:  # for type checkers only: never imported at run time
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [alias.name for alias in node.names]
            # `from . import x` imports the submodule x.
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES]
            if submodules:
                for sub in submodules:
                    yield sub, []
            else:
                yield target, names


def _is_core(name: str) -> bool:
    parts = name.split(".")[1:]
    return not parts or parts[0] not in NOT_CORE


def _internal_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        graph[name] = set()
        for target, _ in _imports(name, path):
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target.startswith("ws_close_policy") and target != name:
                graph[name].add(target)
    return graph


def test_no_import_cycles() -> None:
    graph = _internal_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            raise AssertionError(" -> ".join(cycle))
        if module in done:
            return
        for imported in sorted(graph[module]):
            # A package's __init__ re-exports its children: importing the package from a
            # child is the same edge reversed only when the child imports the package.
            if imported == "ws_close_policy" and module != "ws_close_policy":
                continue
            visit(imported, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_core_needs_only_the_standard_library() -> None:
    # orjson and msgspec are imported inside the codecs' constructors, only when chosen.
    stdlib = sys.stdlib_module_names
    for name, path in MODULES.items():
        if not _is_core(name):
            continue
        for target, _ in _imports(name, path, module_level=True):
            top = target.split(".")[0]
            assert top in stdlib or top == "ws_close_policy", f"{name} imports {target}"


def test_the_core_reads_no_clock_and_no_global_random() -> None:
    for name, path in MODULES.items():
        if not _is_core(name):
            continue
        for target, names in _imports(name, path):
            assert target.split(".")[0] not in {"time", "random", "datetime", "secrets"}, (
                f"{name} imports {target}"
            )
            assert not {"urandom", "time", "monotonic"} & set(names), f"{name}: {names}"


def test_no_private_names_across_modules() -> None:
    # Private modules (``_inbound``, ``adapters._connection`` ...) are the package's own
    # internals, imported within it; a private name is never imported from another module.
    for name, path in MODULES.items():
        for target, names in _imports(name, path):
            if not target.startswith("ws_close_policy"):
                continue
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{name} imports {private} from {target}"


def _public(name: str) -> bool:
    return not any(part.startswith("_") for part in name.split("."))


def test_each_public_name_has_one_import_path() -> None:
    # h11's rule: a name is public where a public module lists it in __all__; the top level
    # re-exports its modules' main names, which those modules then do not list again. (Two
    # adapters may each have their own ``guard``: different objects, one path each.)
    seen: dict[int, str] = {}
    for name in sorted(MODULES):
        if not _public(name) or name.endswith(("__main__", "cli")):
            continue
        module = importlib.import_module(name)
        for exported in module.__all__:
            value = getattr(module, exported)
            if exported == "__version__" or isinstance(value, int | float | str | bytes):
                continue
            where = f"{name}.{exported}"
            assert id(value) not in seen, f"{where} is {seen[id(value)]} too"
            seen[id(value)] = where


def _tree(module: str) -> ast.Module:
    return ast.parse(MODULES[module].read_text())


CODE_RANGES = (range(1000, 1016), range(3000, 5000))
WHO_CLOSED = {"local", "peer", "server", "transport"}


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_adapters_translate_and_the_core_decides(adapter: str) -> None:
    # No adapter picks a close code or an outcome, or says who closed: it passes what its
    # server reports to the core (Disconnect.from_frames / from_code) and does what the
    # core answers.
    module = f"ws_close_policy.adapters.{adapter}"
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            assert not any(node.value in r for r in CODE_RANGES), (module, node.value)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert node.value not in WHO_CLOSED, (module, node.value)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            assert node.value.id not in {"Outcome", "CloseCode", "Violation"}, (module, node.attr)
        if isinstance(node, ast.Call) and ast.unparse(node.func) == "Disconnect":
            assert not node.args, f"{module} classifies a Disconnect itself"
            assert not node.keywords, f"{module} classifies a Disconnect itself"
    for target, names in _imports(module, MODULES[module]):
        assert target != "ws_close_policy.codes", f"{module} reads the code registry"
        assert not {"Session", "close_for", "admission", "drain_delays"} & set(names), module


@pytest.mark.parametrize("shared", ["_connection", "_connections"])
def test_the_shared_async_layer_writes_no_close_code(shared: str) -> None:
    module = f"ws_close_policy.adapters.{shared}"
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Constant) and type(node.value) is int:
            assert not any(node.value in r for r in CODE_RANGES), (module, node.value)
    assert all(t != "ws_close_policy.codes" for t, _ in _imports(module, MODULES[module]))


TRANSPORT = {"closed", "receive", "send", "disconnect", "close", "remote"}


@pytest.mark.parametrize("adapter", sorted(ADAPTERS))
def test_each_transport_is_the_small_contract(adapter: str) -> None:
    # closed, receive, send, disconnect, close and remote (receive and send may be the
    # server's own methods, bound in __init__), plus optional write_buffer_size and
    # send_many; nothing a third adapter would have to copy (fan-out, who closed) is the
    # transport's.
    classes = [
        node
        for node in _tree(f"ws_close_policy.adapters.{adapter}").body
        if isinstance(node, ast.ClassDef) and node.name.endswith("Transport")
    ]
    (transport,) = classes
    module = importlib.import_module(f"ws_close_policy.adapters.{adapter}")
    members = {n for n in dir(getattr(module, transport.name)) if not n.startswith("_")}
    members |= {  # the server's own methods, bound in __init__: self.receive = connection.recv
        target.attr
        for node in ast.walk(transport)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Attribute) and target.attr in TRANSPORT | {"write_buffer_size"}
    }
    assert TRANSPORT <= members <= TRANSPORT | {"write_buffer_size", "send_many"}, members
    assert set(Transport.__annotations__) == {"closed"}
    assert {n for n in vars(Transport) if not n.startswith("_")} == TRANSPORT - {"closed"}


@pytest.mark.parametrize(("adapter", "budget"), sorted(ADAPTERS.items()))
def test_adapters_stay_small(adapter: str, budget: int) -> None:
    lines = MODULES[f"ws_close_policy.adapters.{adapter}"].read_text().count("\n")
    assert lines <= budget, f"adapters/{adapter}.py: {lines} lines, budget {budget}"


def test_the_top_level_is_small() -> None:
    exported = [n for n in ws_close_policy.__all__ if n != "__version__"]
    assert len(exported) < 25
    for name in exported:
        assert getattr(ws_close_policy, name).__doc__, name
