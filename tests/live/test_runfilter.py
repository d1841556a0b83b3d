"""Which clock drives a client (live/runfilter.py): never a retained clock an earlier run
left behind, only its own run's once it knows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from live.runfilter import RunFilter


def _gate(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_a_stale_retained_clock_never_drives_a_client() -> None:
    f = RunFilter()
    assert not f.accept({"run": "old", "t": 96, "done": True}, retained=True)
    assert not f.accept({"run": "old", "t": 5, "gate_closes_at": _gate(-60)}, retained=True)
    assert not f.accept({"t": 0, "gate_closes_at": _gate(60)}, retained=False)  # no run id
    assert f.run is None and f.ignored == 3
    # the first live clock names the run; from then on only that run's clocks count
    assert f.accept({"run": "new", "t": 0, "gate_closes_at": _gate(1)}, retained=False)
    assert not f.accept({"run": "old", "t": 1, "gate_closes_at": _gate(1)}, retained=False)
    assert f.accept({"run": "new", "t": 1, "gate_closes_at": _gate(-1)}, retained=True)
    assert f.accept({"run": "new", "t": 2, "done": True}, retained=False)
    assert f.run == "new" and f.ignored == 4


def test_joining_a_running_market_adopts_its_open_retained_clock() -> None:
    f = RunFilter()
    assert f.accept({"run": "r1", "t": 7, "gate_closes_at": _gate(20)}, retained=True)
    assert f.run == "r1"
    g = RunFilter()  # asked again after a reconnect: the gate stays open until it closes
    assert g.accept({"run": "r2", "t": 7, "gate_closes_at": None}, retained=True)


def test_a_client_told_its_run_accepts_only_that_run() -> None:
    f = RunFilter("r1")
    assert not f.accept({"run": "r0", "t": 0, "gate_closes_at": _gate(5)}, retained=False)
    assert f.accept({"run": "r1", "t": 3, "gate_closes_at": _gate(-5)}, retained=True)


def test_a_run_adopted_from_a_retained_clock_gives_way_to_a_live_one() -> None:
    # a market killed with its gate open (or after a null-gate re-announce) left this clock
    f = RunFilter()
    assert f.accept({"run": "dead", "t": 3, "gate_closes_at": None}, retained=True)
    assert f.run == "dead" and f.provisional
    assert not f.accept({"run": "other", "t": 0, "gate_closes_at": _gate(9)}, retained=True)
    # the next run's first live clock replaces it; from then on the run is fixed
    assert f.accept({"run": "next", "t": 0, "gate_closes_at": _gate(1)}, retained=False)
    assert f.run == "next" and not f.provisional
    assert not f.accept({"run": "dead", "t": 4, "gate_closes_at": _gate(1)}, retained=False)
    # a live clock of the adopted run confirms it: a later run's clock is another run's
    g = RunFilter()
    assert g.accept({"run": "r1", "t": 7, "gate_closes_at": _gate(20)}, retained=True)
    assert g.accept({"run": "r1", "t": 8, "gate_closes_at": _gate(20)}, retained=False)
    assert not g.provisional
    assert not g.accept({"run": "r2", "t": 0, "gate_closes_at": _gate(20)}, retained=False)
    assert (f.ignored, g.ignored) == (2, 1)
