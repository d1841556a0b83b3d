"""The registers of a meter's signed records against the metered energy of the input
leaves (scenarios/audit/registers.py), on numbers worked by hand.

Half-hour intervals from t=0 s. Records (time, import register, export register):
0 s (100.0, 10.0), 900 s (100.3, 10.0), 1800 s (100.5, 10.2), 3600 s (101.5, 10.2):
interval 0 (0-1800 s) imports 100.5 - 100.0 = 0.5 kWh and exports 0.2 kWh, interval 1
(1800-3600 s) imports 1.0 kWh and exports nothing.
"""

from __future__ import annotations

from typing import Any

from agents.meters.base import Sample
from scenarios.audit.registers import Registers

RECORDS = [
    Sample(0.0, 100.0, 10.0),
    Sample(900.0, 100.3, 10.0),
    Sample(1800.0, 100.5, 10.2),
    Sample(3600.0, 101.5, 10.2),
]


def leaf(t: int, import_kwh: float, export_kwh: float, estimated: bool = False) -> dict[str, Any]:
    return {
        "agent": "h1",
        "t": t,
        "reading": {"demand_kwh": import_kwh, "generation_kwh": export_kwh},
        "estimated": estimated,
    }


def registers(records: list[tuple[int, Sample | None]], *leaves: dict[str, Any]) -> Registers:
    r = Registers(0.0, 1800.0)
    for session, sample in records:
        r.record("h1", session, sample)
    for seq, x in enumerate(leaves, start=1):
        r.version("h1", seq, 0, x)
    return r


def test_the_energy_the_records_bracket_is_compared_with_the_leaves() -> None:
    r = registers([(0, s) for s in RECORDS], leaf(0, 0.5, 0.2), leaf(1, 1.0, 0.0))
    assert r.problems() == [] and r.compared == 2
    # the leaf of interval 1 bills 0.9 kWh of import: named, with both figures
    r = registers([(0, s) for s in RECORDS], leaf(0, 0.5, 0.2), leaf(1, 0.9, 0.0))
    assert r.problems() == [
        (
            2,
            1,
            "h1: its meter's signed records give import 1.000000 kWh, export 0.000000 kWh; "
            "the ledger has 0.900000 kWh, 0.000000 kWh",
        )
    ]
    # within 1e-6 kWh it holds; beyond, not
    assert registers([(0, s) for s in RECORDS], leaf(1, 1.0 + 9e-7, 0.0)).problems() == []
    assert len(registers([(0, s) for s in RECORDS], leaf(1, 1.0 + 2e-6, 0.0)).problems()) == 1


def test_a_reset_counts_the_new_value_as_the_market_does() -> None:
    reset = [*RECORDS[:3], Sample(3600.0, 0.4, 10.2)]  # the import register restarted
    r = registers([(0, s) for s in reset], leaf(1, 0.4, 0.0))
    assert r.problems() == [] and r.compared == 1


def test_only_intervals_a_run_of_usable_records_brackets_are_compared() -> None:
    wrong = (leaf(0, 9.0, 9.0), leaf(1, 9.0, 9.0))  # would fail wherever compared
    # a record that did not verify (None) between 900 s and 3600 s: the run 0 s … 900 s
    # ends before interval 0 does, the run from 3600 s starts after interval 1's start
    broken = [(0, RECORDS[0]), (0, RECORDS[1]), (0, None), (0, RECORDS[3])]
    r = registers(broken, *wrong)
    assert r.problems() == [] and r.compared == 0
    # a record without a time the meter vouches for ends the run the same way
    untimed = [(0, RECORDS[0]), (0, RECORDS[1]), (0, Sample(None, 100.4, 10.1)), (0, RECORDS[3])]
    assert registers(untimed, *wrong).problems() == []
    # a new session of the market after the record at 1800 s: interval 0 is compared
    # (its version is of session 0), interval 1 is bracketed by no run
    sessions = [(0, RECORDS[0]), (0, RECORDS[1]), (0, RECORDS[2]), (1, RECORDS[3])]
    r = registers(sessions, leaf(0, 0.5, 0.2), leaf(1, 9.0, 9.0))
    assert r.problems() == [] and r.compared == 1
    # an interval the records start after (the meter's first record at 900 s)
    r = registers([(0, s) for s in RECORDS[1:]], leaf(0, 9.0, 9.0), leaf(1, 1.0, 0.0))
    assert r.problems() == [] and r.compared == 1


def test_an_estimate_is_compared_once_corrected_and_stops_the_checks_while_it_stands() -> None:
    records = [(0, s) for s in RECORDS]
    # interval 0 settled on an estimate, never corrected: neither it nor any later one
    r = registers(records, leaf(0, 0.45, 0.2, estimated=True), leaf(1, 9.0, 9.0))
    assert r.problems() == [] and r.compared == 0
    # corrected (a later entry's leaf, not estimated): the correction is compared
    r = registers(records, leaf(0, 0.45, 0.2, estimated=True), leaf(0, 0.5, 0.2))
    assert r.problems() == [] and r.compared == 1
    r = registers(records, leaf(0, 0.45, 0.2, estimated=True), leaf(0, 0.45, 0.2))
    assert [(seq, t) for seq, t, _ in r.problems()] == [(2, 0)]
