"""A report page is written a part at a time (:func:`scenarios.reports.html_page.
write_page`): plotly.js once, every figure in it, and the memory of writing it does not
grow with the page (a year's run page is 13.7 MB; built as one string it took four to
five times that)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import plotly.offline

from scenarios.reports.html_page import figures_html, write_page


def _figures(n: int) -> list[dict]:
    rng = np.random.default_rng(1)
    return [
        {
            "data": [
                {"type": "scatter", "x": list(range(40_000)), "y": rng.random(40_000).tolist()}
            ],
            "layout": {"title": {"text": f"figure {i}"}},
        }
        for i in range(n)
    ]


def _write(path: Path, n: int) -> float:
    """Write a page of ``n`` figures; the peak of Python's allocations meanwhile [MB]."""
    figures = _figures(n)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        write_page(path, "a <page>", figures_html(figures))
        return (tracemalloc.get_traced_memory()[1] - base) / 2**20
    finally:
        tracemalloc.stop()


def test_a_page_of_figures_has_plotly_once_and_every_figure(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    _write(path, 3)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</body></html>\n")
    assert "<title>a &lt;page&gt; — p2pgrid report</title>" in page
    assert page.count(plotly.offline.get_plotlyjs()) == 1
    assert page.index(plotly.offline.get_plotlyjs()[:200]) < page.index("Plotly.newPlot")
    assert page.count("Plotly.newPlot") == 3
    assert all(f'"figure {i}"' in page for i in range(3))


def test_writing_a_page_takes_no_more_memory_for_more_figures(tmp_path: Path) -> None:
    """Four times the figures, 9 MB more page: the peak moves by less than 2 MB (built
    as one string, it grew by more than the page itself)."""
    _write(tmp_path / "warm.html", 1)  # plotly's and the template's caches
    small, large = (_write(tmp_path / f"{n}.html", n) for n in (4, 16))
    grown = ((tmp_path / "16.html").stat().st_size - (tmp_path / "4.html").stat().st_size) / 2**20
    assert grown > 8
    assert large - small < 2, (small, large)
