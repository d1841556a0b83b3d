"""No new ``type: ignore`` without its reason on the line (issue 13): a comment after the
ignore says why the checker is wrong or why the code is right anyway, e.g.
``x = f()  # type: ignore[attr-defined]  # typer reads it``. The ignores written before
the type checker ran in CI are counted per file below; a file may only lose them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "market", "grid", "scenarios", "live", "p2pgrid")
IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(?P<rest>.*)$")

#: Ignores without a reason on the line when mypy joined CI (file -> how many).
BEFORE_MYPY = {
    "grid/feeder_files.py": 2,
    "scenarios/studies/hosting.py": 1,
    "scenarios/studies/sweep.py": 2,
}


def unexplained(root: Path = ROOT) -> dict[str, int]:
    """File -> its ``type: ignore`` comments with no reason after them."""
    out: dict[str, int] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for line in path.read_text(encoding="utf-8").splitlines():
                match = IGNORE.search(line)
                if match and not match["rest"].strip().startswith("#"):
                    name = str(path.relative_to(root))
                    out[name] = out.get(name, 0) + 1
    return out


def test_the_pattern_tells_a_reason_from_none() -> None:
    assert IGNORE.search("x = 1  # type: ignore[arg-type]")["rest"] == ""
    assert IGNORE.search("x = 1  # type: ignore[arg-type]  # why")["rest"].strip() == "# why"


def test_no_new_type_ignore_without_a_reason() -> None:
    found = unexplained()
    grown = {f: n for f, n in found.items() if n > BEFORE_MYPY.get(f, 0)}
    assert not grown, f"type: ignore without a reason on the line: {grown}"
