"""The package's import graph: no cycles (also through imports inside functions), click only in cli/, pygit2
only in store/.

Read from the source with ``ast``, so an import made only at run time (inside a function) counts
as much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gitsync"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every module ``name`` imports (absolute names; ``from x import y`` counts x and x.y)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module → the gitsync modules it imports (a submodule importing its own package is implicit)."""
    mods = _modules()
    return {
        name: {m for m in _imports(name, path) if m in mods and m != name and not name.startswith(m + ".")}
        for name, path in mods.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_only_the_cli_uses_click() -> None:
    users = set()
    for name, path in _modules().items():
        if any(m.split(".")[0] == "click" for m in _imports(name, path)):
            users.add(name)
    assert users and all(name.startswith("gitsync.cli") for name in users), sorted(users)


def test_only_the_store_uses_pygit2() -> None:
    users = set()
    for name, path in _modules().items():
        if any(m.split(".")[0] == "pygit2" for m in _imports(name, path)):
            users.add(name)
    assert users and all(name.startswith("gitsync.store.") for name in users), sorted(users)
    light = {"gitsync.store", "gitsync.store._names", "gitsync.store._worktree", "gitsync.store.quickscan",
             "gitsync.store.locking", "gitsync.store.crashpoints"}
    assert not users & light, "these are imported without libgit2 (the --local fast path, type hints)"


def test_the_sync_core_is_pure() -> None:
    """gitsync/sync/ decides; it reaches no repository, network or file: not the store, the transport,
    the drivers or the CLI, nor the libraries and modules that would (the drivers do the I/O)."""
    banned_pkgs = ("gitsync.store", "gitsync.transport", "gitsync.app", "gitsync.cli")
    banned_libs = {"pygit2", "requests", "socket", "os", "io", "pathlib", "shutil", "subprocess", "tempfile"}
    found: dict[str, list[str]] = {}
    for name, path in _modules().items():
        if name == "gitsync.sync" or name.startswith("gitsync.sync."):
            imported = _imports(name, path)
            bad = {m for m in imported if m.startswith(banned_pkgs) or m.split(".")[0] in banned_libs}
            if bad:
                found[name] = sorted(bad)
    assert not found, found
