"""Print the README's settings table, generated from ``streams.settings.Settings`` so the docs never drift.

    python scripts/settings_table.py            # print the markdown table
    python scripts/settings_table.py --write    # replace the table between the markers in README.md
    python scripts/settings_table.py --check    # exit 1 when README.md's table differs from the generated one

One row per field, in declaration order: the environment variable (``env_var``), the default, what is
allowed (``_allowed``, read from the field's JSON schema) and the field's ``description``.
``tests/streams/test_readme.py`` fails when the README's table differs from this output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from streams.settings import Settings, _allowed, env_var

__all__ = ["END", "README", "START", "readme_table", "replace_table", "settings_table"]

START = "<!-- settings-table:start -->"
END = "<!-- settings-table:end -->"
README = Path(__file__).resolve().parent.parent / "README.md"
REGENERATE = ".venv/bin/python scripts/settings_table.py --write"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        return "computed (see description)"
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def settings_table() -> str:
    """The markdown table of every setting: variable, default, allowed values, description."""
    rows = [
        "| variable | default | allowed | description |",
        "|---|---|---|---|",
    ]
    for name, field in Settings.model_fields.items():
        cells = (f"`{env_var(name)}`", _default(field), _allowed(name), field.description or "")
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"


def readme_table(text: str) -> str | None:
    """The table between the markers of ``text`` (None when the markers are missing)."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start + len(START) : end].strip("\n") + "\n"


def replace_table(text: str, table: str) -> str:
    """``text`` with the part between the markers replaced by ``table``."""
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README has no {START} ... {END} markers")
    return text[: start + len(START)] + "\n" + table + text[end:]


def main(argv: list[str] | None = None) -> int:
    """Print, write or check the table; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="replace the table in README.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when README.md's table is out of date")
    p.add_argument("--readme", type=Path, default=README)
    args = p.parse_args(argv)
    table = settings_table()
    if not (args.write or args.check):
        sys.stdout.write(table)
        return 0
    text = args.readme.read_text(encoding="utf-8")
    if args.check:
        if readme_table(text) != table:
            print(f"{args.readme}: settings table out of date; run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    args.readme.write_text(replace_table(text, table), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
