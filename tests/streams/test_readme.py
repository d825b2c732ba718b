"""The README's reference tables match the code: settings, metrics, placement fields, objective, commands."""

from __future__ import annotations

import argparse
import importlib.util
import re
from pathlib import Path
from types import ModuleType

from router.cli import _parser
from router.models import Placement
from router.topology import Objective
from streams.metrics import Metrics
from streams.settings import Settings, env_var
from tests.streams.sample import placement

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def _script() -> ModuleType:
    """scripts/settings_table.py, loaded from its path (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("settings_table", ROOT / "scripts" / "settings_table.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _section(text: str, start: str, end: str) -> str:
    """The part of ``text`` from the line starting with ``start`` up to the next one starting with ``end``."""
    m = re.search(rf"^{re.escape(start)}.*?(?=^{re.escape(end)})", text, re.S | re.M)
    assert m is not None, f"README has no section from {start!r} to {end!r}"
    return m.group(0)


def test_settings_table_matches_the_code() -> None:
    """The settings table in the README is exactly the one generated from streams.settings.Settings."""
    st = _script()
    got = st.readme_table(README.read_text(encoding="utf-8"))
    assert got is not None, f"README.md lacks the {st.START} / {st.END} markers"
    assert got == st.settings_table(), (
        "README.md's settings table differs from streams.settings.Settings; "
        f"regenerate it with `{st.REGENERATE}` and commit README.md"
    )


def test_every_setting_has_a_description_and_a_row() -> None:
    """Every Settings field has a description, and the generated table has one row per field, in order."""
    undocumented = [name for name, f in Settings.model_fields.items() if not (f.description or "").strip()]
    assert not undocumented, f"add description=... to these Settings fields: {undocumented}"
    rows = _script().settings_table().splitlines()[2:]
    assert [r.split(" | ")[0].strip("| `") for r in rows] == [env_var(n) for n in Settings.model_fields]


def test_replace_table_keeps_the_rest_of_the_readme() -> None:
    """Regenerating replaces only the text between the markers."""
    st = _script()
    text = f"before\n{st.START}\nold table\n{st.END}\nafter\n"
    assert st.replace_table(text, "| new |\n") == f"before\n{st.START}\n| new |\n{st.END}\nafter\n"


def test_every_prometheus_series_is_documented() -> None:
    """Every series a real Metrics exposition shows is a row of the README's metrics table, with its type."""
    m = Metrics("x")
    placed = placement(energy_usd=1.0, carbon_g=2.0, baseline={"energy_usd": 1.5, "carbon_g": 3.0})
    m.record_placements([placed], [0.0])
    m.record_dead_letter("inference.requests", "energy_wh")
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", m.exposition().decode(), re.M))
    series = {n: t for n, t in types.items() if not n.endswith("_created")}
    table = _section(README.read_text(encoding="utf-8"), "| series | type |", "Savings are")
    documented = dict(re.findall(r"^\| `(carbon_router_\w+)` \| (\w+) \|", table, re.M))
    assert documented == series


def test_every_placement_field_is_documented() -> None:
    """Every field of router.models.Placement is named in the README's Placement table."""
    table = _section(README.read_text(encoding="utf-8"), "**Placement**", "**DeadLetter**")
    missing = [f for f in Placement.model_fields if f"`{f}`" not in table]
    assert not missing, f"document these Placement fields in README.md: {missing}"


def test_every_objective_field_is_documented() -> None:
    """Every field of the topology's [objective] is a row of the README's objective table, default too."""
    table = _section(README.read_text(encoding="utf-8"), "**`[objective]`**", "**`[[regions]]`**")
    rows = dict(re.findall(r"^\| `(\w+)` \| [^|]* \| ([^|]+) \|", table, re.M))
    assert set(rows) == set(Objective.model_fields)
    for name, field in Objective.model_fields.items():
        default = field.default
        shown = rows[name].strip().strip("`")
        if isinstance(default, tuple):
            assert shown == str(list(default)), name
        else:
            assert float(shown) == default, name


def test_every_command_and_option_is_documented() -> None:
    """Every carbon-router subcommand and each of its long options appears in the README's command table."""
    table = _section(README.read_text(encoding="utf-8"), "| command | options |", "`--topology`, `--signals`")
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        row = next((r for r in table.splitlines() if r.startswith(f"| `carbon-router {name}` |")), None)
        assert row is not None, f"README.md has no row for `carbon-router {name}`"
        options = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
        options.remove("--help")
        missing = [o for o in options if f"`{o}" not in row]
        assert not missing, f"`carbon-router {name}` options missing in README.md: {missing}"


def _shown_default(default: object) -> str:
    """A default as the README's command table writes it: 30.0 -> 30, [0.5, 1.0] -> 0.5,1, a path as is."""
    if isinstance(default, list):
        return ",".join(f"{v:g}" for v in default)
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


def test_every_option_default_is_the_one_the_readme_states() -> None:
    """Each option with a default value shows that value next to it in the README's command table."""
    table = _section(README.read_text(encoding="utf-8"), "| command | options |", "`--topology`, `--signals`")
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in sub.choices.items():
        row = next(r for r in table.splitlines() if r.startswith(f"| `carbon-router {name}` |"))
        for action in parser._actions:
            if action.default in (None, False, [], argparse.SUPPRESS) or not action.option_strings:
                continue
            opt = action.option_strings[-1]
            m = re.search(rf"`{re.escape(opt)}[ `](.*?)(?=, `--|\|)", row)
            assert m is not None, f"`carbon-router {name}` {opt} is not in README.md"
            shown = _shown_default(action.default)
            assert shown in m.group(1), (
                f"README.md shows {m.group(1)!r} for {name} {opt}; the code has {shown}"
            )
