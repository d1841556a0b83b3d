"""Report: the project's modules over the size limit (issue 13: no module over about 400
lines), longest first, and how many there are.

    python bench/module_sizes.py            # limit 400 lines
    python bench/module_sizes.py --limit 300

It exits 1 while any module is over the limit; tests/test_module_sizes.py holds it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "market", "grid", "scenarios", "live", "p2pgrid")


def module_lines(root: Path = ROOT) -> dict[str, int]:
    """Module path (relative to ``root``) -> its number of lines."""
    return {
        str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
        for package in PACKAGES
        for path in sorted((root / package).rglob("*.py"))
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=400)
    opts = parser.parse_args()
    sizes = module_lines()
    over = sorted(((n, p) for p, n in sizes.items() if n > opts.limit), reverse=True)
    for lines, path in over:
        print(f"{lines:6d}  {path}")
    print(f"{len(over)} of {len(sizes)} modules over {opts.limit} lines")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
