"""Fail when a layer names a package it must not import in a string: the imports import-linter cannot see.

``lint-imports`` checks the forbidden contracts of ``[tool.importlinter]`` in pyproject.toml, but it reads
``import`` statements only. This script reads the same contracts and walks the syntax tree of every module
of each contract's source packages for the dynamic forms:

- a call of ``importlib.import_module``, ``__import__``, ``importlib.util.find_spec``,
  ``pkgutil.resolve_name`` or ``importlib.resources.files`` (however imported) whose module argument, or
  ``package=``, is a string or f-string naming a forbidden package, or a name bound to such a string in the
  same module;
- any string that is exactly a dotted path or ``module:attr`` reference into a forbidden package
  (``"streams.demo"``, ``"streams.cli:main"``), e.g. a table of handlers imported later.

Run by ``make lint`` (``python scripts/check_layers.py``); exit 1 listing ``file:line: reason`` for each
finding, 0 when there is none. tests/router/test_layers.py plants each form and checks it is caught.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path

__all__ = ["DYNAMIC_IMPORTERS", "contracts", "main", "scan_module", "scan_package"]

ROOT = Path(__file__).resolve().parent.parent

#: functions that import (or locate and import) the module named by their first argument
DYNAMIC_IMPORTERS = frozenset({"import_module", "__import__", "find_spec", "resolve_name", "files"})

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def contracts(pyproject: Path) -> dict[str, frozenset[str]]:
    """Each source package and the top-level packages it must not import, from the forbidden contracts."""
    config = tomllib.loads(pyproject.read_text())["tool"]["importlinter"]
    out: dict[str, set[str]] = {}
    for c in config.get("contracts", []):
        if c.get("type") != "forbidden":
            continue
        for source in c["source_modules"]:
            out.setdefault(source, set()).update(m.split(".")[0] for m in c["forbidden_modules"])
    return {k: frozenset(v) for k, v in out.items()}


def _root(name: str) -> str | None:
    """The top-level package a module path or ``module:attr`` reference names, or None if it is not one."""
    path = name.split(":", 1)[0]
    return path.split(".")[0] if _DOTTED.fullmatch(path) else None


def _leading_text(node: ast.expr, constants: Mapping[str, str]) -> str | None:
    """The string an argument starts with: a literal, an f-string's leading literal, or a bound constant."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        first = node.values[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value.rstrip(".")
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _string_constants(tree: ast.Module) -> dict[str, str]:
    """Names assigned a plain string anywhere in the module (``_MOD = "streams.demo"``)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            if not isinstance(node.value.value, str):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value.value
    return out


def scan_module(source: str, forbidden: frozenset[str], filename: str = "<string>") -> list[str]:
    """Every dynamic import of, or module reference into, a forbidden package: ``file:line: reason``."""
    tree = ast.parse(source, filename)
    constants = _string_constants(tree)
    found: list[str] = []
    reported: set[int] = set()  # the literal of a flagged call is not reported a second time
    for node in ast.walk(tree):  # breadth first: a call comes before its arguments
        if isinstance(node, ast.Call) and _called_name(node.func) in DYNAMIC_IMPORTERS:
            args = node.args[:1] + [k.value for k in node.keywords if k.arg in ("name", "package")]
            for arg in args:
                text = _leading_text(arg, constants)
                root = _root(text) if text else None
                if root in forbidden:
                    reported.add(id(arg))
                    found.append(
                        f"{filename}:{node.lineno}: {_called_name(node.func)}() of {text!r} imports {root}"
                    )
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in reported:
            text = node.value
            root = _root(text)
            if root in forbidden and ("." in text or ":" in text):
                found.append(f"{filename}:{node.lineno}: string {text!r} names a module of {root}")
    return found


def _modules(package_dir: Path) -> Iterator[Path]:
    yield from sorted(p for p in package_dir.rglob("*.py") if "__pycache__" not in p.parts)


def scan_package(package_dir: Path, forbidden: frozenset[str], relative_to: Path = ROOT) -> list[str]:
    """``scan_module`` over every ``.py`` file under ``package_dir``."""
    found: list[str] = []
    for path in _modules(package_dir):
        name = str(path.relative_to(relative_to)) if path.is_relative_to(relative_to) else str(path)
        found.extend(scan_module(path.read_text(), forbidden, name))
    return found


def main(argv: list[str] | None = None) -> int:
    """Scan each contract's source packages under ``--root``; print the findings; 1 if any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository (default: this script's)")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    found: list[str] = []
    rules = contracts(root / "pyproject.toml")
    for source, forbidden in sorted(rules.items()):
        found.extend(scan_package(root / source.replace(".", "/"), forbidden, root))
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} dynamic import(s) across layers: see [tool.importlinter] in pyproject.toml")
        return 1
    print(f"layers: no dynamic import across layers in {', '.join(sorted(rules))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
