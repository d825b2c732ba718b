"""scripts/check_layers.py: the dynamic imports across layers that import-linter cannot see are caught."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts" / "check_layers.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


check_layers = _script()
ROUTER_FORBIDDEN = frozenset({"streams", "bench", "faults", "tests", "aiokafka", "faust", "mode"})


def test_the_contracts_come_from_pyproject() -> None:
    """The script forbids what the import-linter contracts forbid: router gets the Kafka clients too."""
    rules = check_layers.contracts(ROOT / "pyproject.toml")
    assert {"streams", "bench", "faults", "tests", "aiokafka", "faust", "mode"} <= rules["router"]
    assert rules["streams"] == {"bench", "faults", "tests"}
    assert rules["bench"] == rules["faults"] == {"tests"}


def test_the_repository_has_no_dynamic_import_across_layers(capsys: pytest.CaptureFixture[str]) -> None:
    """`make lint` passes the layer check on the tree as it is."""
    assert check_layers.main(["--root", str(ROOT)]) == 0, capsys.readouterr().out


@pytest.mark.parametrize(
    "source",
    [
        'import importlib\nimportlib.import_module("streams.demo")',
        'from importlib import import_module\nimport_module("streams")',
        'import importlib as il\nil.import_module(f"streams.{name}")',
        '__import__("aiokafka")',
        'import importlib.util\nimportlib.util.find_spec("faust")',
        'from importlib import import_module\n_MOD = "streams.cli"\nimport_module(_MOD)',
        'from importlib import import_module\nimport_module(".demo", package="streams")',
        'import pkgutil\npkgutil.resolve_name("streams.cli:main")',
        'from importlib import resources\nresources.files("tests.fixtures")',
        'HANDLERS = {"worker": "streams.cli:worker", "demo": "streams.demo"}',
    ],
)
def test_each_dynamic_form_is_caught(source: str) -> None:
    """A string naming a forbidden package, in an import call or as a module reference, is reported."""
    found = check_layers.scan_module(source, ROUTER_FORBIDDEN, "router/x.py")
    assert found, source
    assert all(f.startswith("router/x.py:") for f in found)


@pytest.mark.parametrize(
    "source",
    [
        'import importlib\nimportlib.import_module("router.kernel")',
        'import importlib\nimportlib.import_module("numpy")',
        'from importlib import resources\nresources.files("router.data")',
        'MODE = "mode"',  # a word, not a reference into the package `mode`
        'MSG = "run `python -m streams.cli worker` for that"',
        '"""See ``streams.adapters``."""',
    ],
)
def test_what_is_allowed_is_not_reported(source: str) -> None:
    """Imports within the layer, third-party packages that are allowed and prose are not findings."""
    assert check_layers.scan_module(source, ROUTER_FORBIDDEN, "router/x.py") == []


def test_a_planted_upward_import_fails_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A router module importing streams through importlib makes the script exit 1 naming file and line."""
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    for package in ("router", "streams", "bench", "faults"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "router" / "sneaky.py").write_text(
        textwrap.dedent(
            """\
            import importlib


            def worker() -> object:
                return importlib.import_module("streams.worker")
            """
        )
    )
    assert check_layers.main(["--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "router/sneaky.py:5: import_module() of 'streams.worker' imports streams" in out
