"""House rules a reader relies on to find their way: checked on the source, so a change that breaks one fails.

Third-party packages the library imports are the ones `pyproject.toml` declares; only `workbench/labelstudio/`
speaks HTTP or imports the SDK; only the CLI prints; no module grows past what one person reads in a sitting.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "workbench"
HTTP_MODULES = {"label_studio_sdk", "httpx", "requests", "urllib3", "http"}
MAX_LINES = 520  # "about 500"


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
