"""The package's shape: no import cycles, a core that needs only the standard library and
reads no clock or global random source, no private names imported across modules, and a
small top level."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import ws_close_policy

PACKAGE = Path(ws_close_policy.__file__).resolve().parent
#: Everything else is the sans-IO core.
NOT_CORE = ("adapters", "client", "demo", "cli", "__main__", "testing", "metrics")


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
    nodes = tree.body if module_level else list(ast.walk(tree))
    for node in nodes:
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
    for name, path in MODULES.items():
        for target, names in _imports(name, path):
            if not target.startswith("ws_close_policy"):
                continue
            private_module = [p for p in target.split(".") if p.startswith("_") and p != "__init__"]
            assert not private_module, f"{name} imports the private module {target}"
            private = [n for n in names if n.startswith("_")]
            assert not private, f"{name} imports {private} from {target}"


def test_the_top_level_is_small() -> None:
    exported = [n for n in ws_close_policy.__all__ if n != "__version__"]
    assert len(exported) < 25
    for name in exported:
        assert getattr(ws_close_policy, name).__doc__, name
