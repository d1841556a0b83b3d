"""The scenarios whose results are stored in ``tests/golden/<case>/`` (issue 13: the
refactor must leave every results file identical for the same seed).

Run ``python tests/golden/cases.py`` to write them anew, only when a change of the results
is intended (and say so in the commit).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent
DEMO = str(HERE.parent.parent / "scenarios" / "library" / "demo.toml")

#: case -> overrides of the demo scenario (a day or two each, the features a refactor touches)
CASES: dict[str, list[str]] = {
    # the demo: radial feeder, price-aware storage, V2G, order books written
    "demo": ["simulation.days=2", "output.order_books=true"],
    # a feeder at its limits: full PV on every roof, re-clearing, curtailment, CDA
    "stressed": [
        "simulation.days=1",
        "community.households=30",
        "grid.feeder=radial:30",
        "community.pv_share=1.0",
        "community.pv_kwp=[10.0, 20.0]",
        "market.mechanism=cda",
        "output.order_books=true",
    ],
    # winter evening EVs on ieee33 with its own load, McAfee, distance fees, AC check
    "ieee33-winter": [
        "simulation.start=2026-01-12",
        "simulation.days=1",
        "community.households=60",
        "community.ev_share=0.6",
        "grid.feeder=ieee33",
        "grid.check=pyomo+ac",
        "market.mechanism=mcafee",
        "market.grid_fee_model=distance",
    ],
    # no feeder, pay-as-bid, self-consumption storage
    "no-grid": [
        "simulation.days=1",
        "grid.check=off",
        "market.mechanism=pay_as_bid",
        "community.storage_strategy=self_consumption",
    ],
}

#: files compared (manifest.json holds wall times and versions; report.html is a view)
FILES = (
    "intervals.parquet",
    "agents.parquet",
    "trades.parquet",
    "buses.parquet",
    "lines.parquet",
    "households.parquet",
    "books.parquet",
    "kpis.json",
)


def run_case(case: str, out: Path) -> Path:
    from scenarios import load_scenario, run

    run(load_scenario(DEMO, CASES[case]), out)
    return out


def main() -> None:
    for case in sys.argv[1:] or CASES:
        target = HERE / case
        shutil.rmtree(target, ignore_errors=True)
        tmp = HERE / f".{case}-run"
        shutil.rmtree(tmp, ignore_errors=True)
        run_case(case, tmp)
        target.mkdir()
        for name in FILES:
            if (tmp / name).exists():
                shutil.copy(tmp / name, target / name)
        shutil.rmtree(tmp)
        print(case, sorted(p.name for p in target.iterdir()))


if __name__ == "__main__":
    main()
