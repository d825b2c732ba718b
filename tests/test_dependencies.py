"""Every third-party package the project imports is declared in pyproject.toml (dependencies or an extra)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CODE = ("router", "streams", "bench", "faults", "scripts", "tests")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _imported_top_levels() -> dict[str, str]:
    """Each third-party top-level module imported anywhere in the code, with one file that imports it."""
    local = set(CODE)
    out: dict[str, str] = {}
    for folder in CODE:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in local and top != "__future__":
                        out.setdefault(top, str(path.relative_to(ROOT)))
    return out


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs.extend(extra)
    return {_normalise(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0]) for r in reqs}


def test_every_imported_package_is_declared() -> None:
    """An import of a package that is only installed as someone else's dependency fails here, naming it."""
    installed = importlib.metadata.packages_distributions()
    declared = _declared()
    missing = {
        module: where
        for module, where in _imported_top_levels().items()
        if not {_normalise(d) for d in installed.get(module, [module])} & declared
    }
    assert not missing, f"imported, not declared in pyproject.toml (module: a file importing it): {missing}"
