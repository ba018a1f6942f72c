"""House rules a reader relies on to find their way: checked on the source, so a change that breaks one fails.

Third-party packages the library imports are the ones `pyproject.toml` declares; only `workbench/labelstudio/`
speaks HTTP or imports the SDK; only the CLI prints; no module grows past what one person reads in a sitting;
imports run one way: no circle of modules, and no circle of rooms (the top-level modules and packages of
`workbench/`), so following a value through the code never climbs back up.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "workbench"
HTTP_MODULES = {"label_studio_sdk", "httpx", "requests", "urllib3", "http"}
MAX_LINES = 500
MAX_ROOMS = 25  # top-level modules and packages of workbench/, the rooms a newcomer finds their way among


def _modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8")) for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def _distribution_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_is_declared_and_every_declaration_is_imported() -> None:
    imported = set().union(*(_imports(tree) for tree in _modules().values()))
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "workbench"}
    owners = importlib.metadata.packages_distributions()
    needed = {_distribution_name(dist) for name in third_party for dist in owners.get(name, [name])}
    declared = {
        _distribution_name(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0])
        for spec in tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    }
    assert needed - declared == set(), "imported by workbench/ but not declared in pyproject.toml"
    assert declared - needed == set(), "declared in pyproject.toml but imported nowhere in workbench/"


def test_every_third_party_import_of_the_tests_is_declared() -> None:
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in sorted((REPO / "tests").rglob("*.py"))]
    imported = set().union(*(_imports(tree) for tree in trees))
    local = {"workbench", "tests", "bench"}
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name not in local}
    owners = importlib.metadata.packages_distributions()
    needed = {_distribution_name(dist) for name in third_party for dist in owners.get(name, [name])}
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["test"]
    declared = {_distribution_name(re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0]) for spec in specs}
    assert needed - declared == set(), "imported by tests/ but declared neither as a dependency nor in the test extra"


def test_only_the_labelstudio_package_speaks_http_or_uses_the_sdk() -> None:
    offenders = {
        path.relative_to(REPO).as_posix(): sorted(_imports(tree) & HTTP_MODULES)
        for path, tree in _modules().items()
        if _imports(tree) & HTTP_MODULES and PACKAGE / "labelstudio" not in path.parents
    }
    assert offenders == {}


def test_only_the_cli_prints() -> None:
    offenders = []
    for path, tree in _modules().items():
        if PACKAGE / "cli" in path.parents:
            continue
        for node in ast.walk(tree):
            called = node.func if isinstance(node, ast.Call) else None
            name = getattr(called, "id", None) or getattr(called, "attr", None)
            if name in ("print", "echo", "Console"):
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
    assert offenders == []


def test_no_module_is_longer_than_one_sitting() -> None:
    long = {path.relative_to(REPO).as_posix(): n for path in PACKAGE.rglob("*.py")
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}  # fmt: skip
    assert long == {}


# ---- the import graph ------------------------------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module -> the workbench modules it imports (at any depth of the file, `from a import b` naming module a.b
    when b is a module, else a)."""
    modules = {_module_name(path): tree for path, tree in _modules().items()}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, tree in modules.items():
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{alias.name}" if f"{node.module}.{alias.name}" in modules else node.module
                           for alias in node.names]  # fmt: skip
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name and target.startswith("workbench"):
                    graph[name].add(target)
    return graph


def _room(module: str) -> str:
    """The top-level module or package of `workbench/` a module belongs to (the package root is its own room)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "workbench"


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one member (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_circle_of_modules() -> None:
    assert _circles(_import_graph()) == []


def test_no_circle_of_rooms() -> None:
    rooms: dict[str, set[str]] = {}
    for module, targets in _import_graph().items():
        rooms.setdefault(_room(module), set()).update(_room(t) for t in targets if _room(t) != _room(module))
    assert _circles(rooms) == []


def test_the_house_has_few_enough_rooms_to_find_ones_way() -> None:
    rooms = sorted(path.name for path in PACKAGE.iterdir() if path.name != "__init__.py"
                   and (path.suffix == ".py" or (path / "__init__.py").exists()))  # fmt: skip
    assert len(rooms) <= MAX_ROOMS, rooms


@pytest.mark.parametrize(
    ("description", "graph", "circles"),
    [
        ("a chain", {"a": {"b"}, "b": {"c"}, "c": set()}, []),
        ("two modules importing each other", {"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
        ("a longer circle beside a chain", {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ],
)
def test_circles_are_found(description: str, graph: dict[str, set[str]], circles: list[list[str]]) -> None:
    assert _circles(graph) == circles, description


def test_the_cli_starts_without_the_heavy_stages() -> None:
    """push, pull and status start without spaCy, datasets or matplotlib (a million-paragraph `push --next` and
    `status` pay every import: bench/README.md); the commands that need them import them when they run."""
    import subprocess

    heavy = "('spacy', 'datasets', 'matplotlib')"
    probe = f"import sys, workbench.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert out.stdout.strip() == "[]"
