"""No module of the packages is over 400 lines (issue 13): a room that grows past it is
split by concern into small modules named for what they hold."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 400


def _module_lines() -> dict[str, int]:
    spec = importlib.util.spec_from_file_location("module_sizes", ROOT / "bench/module_sizes.py")
    assert spec is not None and spec.loader is not None
    sizes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sizes)
    return sizes.module_lines(ROOT)


def test_no_module_over_the_limit() -> None:
    lines = _module_lines()
    assert len(lines) > 100  # the walk found the packages
    over = {path: n for path, n in lines.items() if n > LIMIT}
    assert over == {}, f"modules over {LIMIT} lines: {over}"
