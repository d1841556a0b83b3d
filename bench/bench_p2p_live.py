"""Decentralised p2p market over Mosquitto (issue 17): 100 households, each with its 10
electrically nearest as partners, one 15-minute interval every 10 s (``--speed 90``), at
most 50 ADMM iterations per interval; no market process (``p2pgrid live --decentralised``).

Prints the peer messages per second, the iterations each interval used (its final
iterate; the termination flood adds the partner graph's diameter of rounds) and the
intervals that did not converge, and the ratio of the rounds the peers managed per
interval to the rounds 50 iterations need (≥ 1: the cap fits in the interval). Runs a
few intervals only (``--intervals``, default 3): the machine is shared.

Run: ``PYTHONPATH=. python bench/bench_p2p_live.py [--intervals 3]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_mqtt import start_mosquitto

from live.bus import BrokerConfig
from live.p2p_run import run_decentralised
from scenarios.config.loader import load_scenario
from scenarios.config.schema import Scenario

HOUSEHOLDS, PARTNERS, SPEED, MAX_ITERATIONS = 100, 10, 90.0, 50
TOML = f"""
name = "p2p-live-bench"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 15
# local midnight is the early afternoon at the PV's location: every interval trades
timezone = "Pacific/Auckland"
seed = 3
[community]
households = {HOUSEHOLDS}
[grid]
feeder = "radial:{HOUSEHOLDS}"
check = "pyomo"  # only for the distances: no feeder check runs live
[market]
mechanism = "p2p"
[market.p2p]
partners = {PARTNERS}
max_iterations = {MAX_ITERATIONS}
"""


def batch_iterations(scenario: Scenario, hh: Any) -> int:
    """What the batch core needs on interval 0's book (the same households' plans)."""
    from dataclasses import replace

    from agents.households.community import Community
    from live.p2p_partners import scenario_rule
    from market.p2p import clear_p2p
    from scenarios.engine.inputs import CommunityInputs

    sim = scenario.simulation
    inputs = CommunityInputs(scenario)
    rule = scenario_rule(scenario, [str(a) for a in hh.agent_id], hh.pv_kwp)
    plan = Community(hh, sim.interval_hours, None).plan(
        *inputs.at(0).observed(0, sim.intervals_per_day)
    )
    b = plan.is_buy
    m = clear_p2p(
        plan.energy_kwh[b], plan.price_per_kwh[b], plan.energy_kwh[~b], plan.price_per_kwh[~b],
        buy_owner=plan.household[b], sell_owner=plan.household[~b],
        rule=replace(rule, max_iterations=10_000),
    )  # fmt: skip
    assert m.convergence is not None
    return int(m.convergence.iterations)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--intervals", type=int, default=3)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-p2p-live-"))
    proc, port = start_mosquitto(work)
    try:
        (work / "s.toml").write_text(TOML, encoding="utf-8")
        scenario = load_scenario(work / "s.toml")
        began = time.perf_counter()
        run = run_decentralised(
            scenario, BrokerConfig("127.0.0.1", port), work / "out", SPEED, args.intervals
        )
        wall = time.perf_counter() - began
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(work, ignore_errors=True)
    p, r = run.peers, run.recorder
    assert p is not None and r is not None
    from live.p2p_partners import partner_rows, scenario_rule
    from scenarios.engine.inputs import CommunityInputs

    hh = CommunityInputs(scenario).hh
    rows, diameter = partner_rows(
        scenario_rule(scenario, [str(a) for a in hh.agent_id], hh.pv_kwp).partners, HOUSEHOLDS
    )
    links = sum(len(x) for x in rows)
    batch = batch_iterations(scenario, hh)
    interval_s = scenario.simulation.interval_minutes * 60 / SPEED
    rounds = p.sent / max(links, 1) / max(p.intervals, 1)  # offers, proposals, finals
    need = MAX_ITERATIONS + diameter + 2
    print(f"{HOUSEHOLDS} households · {links / HOUSEHOLDS:.1f} partners each (k = {PARTNERS}, "
          f"symmetric) · diameter {diameter} · one interval every {interval_s:g} s")  # fmt: skip
    print(f"intervals            {p.intervals} in {wall:.1f} s")
    print(f"messages per second  {p.sent / wall:,.0f} sent, {p.received / wall:,.0f} received")
    print(f"iterations used      {p.iterations} (cap {MAX_ITERATIONS})")
    print(f"not converged        {p.not_converged or 'none'}")
    print(f"partners dropped     {p.dropped}")
    print(f"signed pair records  {r.records} ({r.trades} trades, {r.unverified} unverified)")
    print(f"batch ADMM, interval 0's book: {batch} iterations to the tolerances "
          f"({'within' if batch <= MAX_ITERATIONS else 'beyond'} the cap)")  # fmt: skip
    print(f"rounds per interval  {rounds:.1f} of the {need} that {MAX_ITERATIONS} iterations "
          f"need: ratio {rounds / need:.2f} (target >= 1)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
