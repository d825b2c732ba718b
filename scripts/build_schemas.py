"""Write router/schemas/<Name>.json, the JSON Schema of every message, from the pydantic models.

Run after changing a model in router/models.py (tests/router/test_schemas.py fails until you do):

    .venv/bin/python scripts/build_schemas.py          # write the files
    .venv/bin/python scripts/build_schemas.py --check  # exit 1 and name the files that differ
"""

from __future__ import annotations

import argparse
import sys

from router.schemas import MESSAGES, generate, render, schema_path


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check, compare) every schema file; returns the exit status."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = p.parse_args(argv)
    stale = []
    for name in MESSAGES:
        path = schema_path(name)
        want = render(generate(name))
        if path.exists() and path.read_bytes() == want:
            continue
        stale.append(str(path))
        if not args.check:
            path.write_bytes(want)
    verb = "differ" if args.check else "written"
    print(f"{len(stale)} of {len(MESSAGES)} schema files {verb}" + "".join(f"\n  {s}" for s in stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
