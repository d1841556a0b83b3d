"""The audit ledger's cost: writing it in a batch run (``p2pgrid run --ledger``) and
verifying it (``p2pgrid ledger verify``: chain, leaves, checkpoints, signatures and the
replay of every interval), for a day of 1,000 households. Target: verify under 30 s.

    python bench/bench_audit_ledger.py [--households 1000] [--days 1] [--check pyomo]

Prints the run's wall time without and with the ledger, the ledger's size, the verify
time and its shares (read + hash + fold, signatures, replay, checkpoints), and the time
to cut one household's bill and check it alone.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from scenarios import load_scenario, run
from scenarios.audit.bills import bills_of, verify_bill
from scenarios.audit.chain import read_checkpoints
from scenarios.audit.verify import verify


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, default=1000)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--check", default="pyomo", choices=["off", "pyomo", "pyomo+ac"])
    args = ap.parse_args()
    scenario = load_scenario(
        {
            "name": "audit-bench",
            "simulation": {"start": "2026-06-01", "days": args.days, "seed": 5},
            "community": {"households": args.households},
            "grid": {"check": args.check},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        plain, audited = Path(tmp) / "plain", Path(tmp) / "audited"
        began = time.perf_counter()
        run(scenario, plain)
        t_plain = time.perf_counter() - began
        began = time.perf_counter()
        run(scenario, audited, ledger=True)
        t_ledger = time.perf_counter() - began
        ledger = audited / "ledger"
        size = sum(p.stat().st_size for p in ledger.rglob("*") if p.is_file())
        began = time.perf_counter()
        report = verify(ledger)
        t_verify = time.perf_counter() - began
        began = time.perf_counter()
        bill = bills_of(ledger, read_checkpoints(ledger)[-1])["h0001"]
        t_bills = time.perf_counter() - began
        began = time.perf_counter()
        check = verify_bill(bill)
        t_bill = time.perf_counter() - began

    n_t = scenario.simulation.n_intervals
    print(f"{args.households} households x {n_t} intervals, grid check {args.check}")
    print(f"run without ledger     {t_plain:8.2f} s")
    print(f"run with ledger        {t_ledger:8.2f} s  (+{t_ledger - t_plain:.2f} s writing)")
    per = size / (n_t * args.households)
    print(f"ledger size            {size / 1e6:8.1f} MB  ({per:.0f} B per household-interval)")
    print(f"ledger verify          {t_verify:8.2f} s  (target < 30 s) ok={report.ok}")
    for name, secs in report.seconds.items():
        print(f"  {name:<20} {secs:8.2f} s  {100 * secs / t_verify:5.1f} %")
    print(f"bills of a checkpoint  {t_bills:8.2f} s  (all {args.households} households)")
    print(f"verify one bill        {t_bill * 1e3:8.1f} ms ok={check.ok}")


if __name__ == "__main__":
    main()
