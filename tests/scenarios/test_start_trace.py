"""``$P2PGRID_TRACE_START``: the time a run's engine reaches its first interval."""

import time
from pathlib import Path

from scenarios import load_scenario, run
from scenarios.engine.start_trace import TRACE_START_ENV, mark_first_interval


def test_the_mark_is_written_once_and_only_when_asked(tmp_path, monkeypatch):
    path = tmp_path / "mark"
    monkeypatch.delenv(TRACE_START_ENV, raising=False)
    mark_first_interval()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv(TRACE_START_ENV, str(path))
    before, cpu_before = time.time(), time.process_time()
    mark_first_interval()
    wall, cpu = map(float, path.read_text().split())
    assert before <= wall <= time.time()
    assert cpu_before <= cpu <= time.process_time()
    first = path.read_text()
    mark_first_interval()  # a second mark (a district's next feeder) keeps the first
    assert path.read_text() == first


def test_a_run_marks_before_its_first_window_is_done(tmp_path: Path, monkeypatch):
    """The mark falls after the run starts and before the engine reports its first window
    of intervals done (the progress callback, called after the window's last interval)."""
    path = tmp_path / "mark"
    monkeypatch.setenv(TRACE_START_ENV, str(path))
    data = {"simulation": {"start": "2026-06-19", "days": 1}, "community": {"households": 6},
            "grid": {"feeder": "radial:6", "check": "off"}}  # fmt: skip
    scenario = load_scenario(data)
    reported: list[tuple[float, int]] = []
    started = time.time()
    run(scenario, tmp_path / "run", progress=lambda done, _n: reported.append((time.time(), done)),
        report=False)  # fmt: skip
    mark = float(path.read_text().split()[0])
    assert reported, "no progress reported"
    assert started <= mark <= reported[0][0]
