"""Benchmark of the bilateral P2P market (``market.p2p.clear_p2p``, consensus ADMM).

Run with ``python bench/bench_p2p.py [--quick]``. 1,000 households on a line (a radial
feeder's households in order; fixed seed), each with its 20 nearest (10 either side) as
partners; per interval half of them (drawn) have a surplus and sell, the others buy, one
order each: energies lognormal around 0.3 kWh (a quarter hour), asks uniform in
[0.08, 0.20], bids in [0.12, 0.32] EUR/kWh; the differentiation cost of a pair is
0.02 EUR/kWh times its distance on the line over the longest. Every interval is solved
by ADMM and by the central LP (HiGHS, the same pairs), in two settings: the default
``[market.p2p]`` (to its tolerances, absolute and relative: ``market.p2p`` "Stopping")
and ``relative_tol = 0`` (the absolute tolerances only). Prints per interval the ADMM's
wall and CPU time (the process's, robust to other load on a shared machine),
iterations, convergence and welfare gap to the central optimum (relative), HiGHS's
solve time and the ratio of the two; then the converged fraction, median and max, and
the target of issue 17 (under 200 ms per interval, converged).
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import replace

import numpy as np
import scipy.sparse as sps

from market.p2p import clear_p2p, negotiating_pairs
from market.p2p_central import solve_central
from market.p2p_dso import DSORule, negotiate_with_dso, pair_line_sensitivity
from market.p2p_pairs import P2PRule

SEED = 20261202
HOUSEHOLDS = 1_000
PARTNERS = 20
TARGET_S = 0.2


def line_rule(n: int, k: int) -> P2PRule:
    """Partners: the ``k`` nearest on a line; distance: position difference over n − 1."""
    half = k // 2
    rows = np.repeat(np.arange(n), 2 * half)
    offsets = np.tile(np.r_[np.arange(1, half + 1), -np.arange(1, half + 1)], n)
    cols = rows + offsets
    ok = (cols >= 0) & (cols < n)
    rows, cols = rows[ok], cols[ok]
    partners = sps.csr_matrix((np.ones(rows.size, bool), (rows, cols)), shape=(n, n))
    position = np.arange(n, dtype=np.float64)
    distance = np.abs(position[:, None] - position[None, :]) / (n - 1)
    return P2PRule(
        partners=partners,
        household_bus=np.arange(n),
        bus_distance=distance,
        distance_per_kwh=0.02,
    )


def interval(rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
    sells = rng.random(n) < 0.5
    energy = rng.lognormal(np.log(0.3), 0.8, n)
    price = np.where(sells, rng.uniform(0.08, 0.20, n), rng.uniform(0.12, 0.32, n))
    buy, sell = np.flatnonzero(~sells), np.flatnonzero(sells)
    return energy[buy], price[buy], energy[sell], price[sell], buy, sell


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 intervals instead of 20")
    args = parser.parse_args()
    n_intervals = 3 if args.quick else 20
    base = line_rule(HOUSEHOLDS, PARTNERS)
    print(f"bench_p2p: {HOUSEHOLDS} households, {PARTNERS} partners each, python "
          f"{platform.python_version()}, {platform.machine()}")  # fmt: skip
    warm = interval(np.random.default_rng(0), HOUSEHOLDS)
    clear_p2p(warm[0], warm[1], warm[2], warm[3])  # warm up numpy
    for label, rule in (
        ("defaults (to the tolerances)", base),
        ("relative_tol = 0 (absolute tolerances only)", replace(base, relative_tol=0.0)),
    ):
        print(f"-- {label}")
        run(rule, n_intervals)
    print("-- congested radial chain, [market.p2p] dso (defaults)")
    congested(base, n_intervals)


def run(rule: P2PRule, n_intervals: int) -> None:
    rng = np.random.default_rng(SEED)
    print(f"{'t':>3} {'pairs':>6} {'iter':>5} {'conv':>5} {'admm ms':>8} {'cpu ms':>7} "
          f"{'lp ms':>7} {'ratio':>6} {'gap':>9}")  # fmt: skip
    times, cpu, lp_times, iterations, converged, gaps = [], [], [], [], [], []
    for t in range(n_intervals):
        bq, bp, sq, sp, bo, so = interval(rng, HOUSEHOLDS)
        t0, c0 = time.perf_counter(), time.process_time()
        m = clear_p2p(bq, bp, sq, sp, buy_owner=bo, sell_owner=so, rule=rule)
        elapsed, used = time.perf_counter() - t0, time.process_time() - c0
        central = solve_central(bq, bp, sq, sp, buy_owner=bo, sell_owner=so, rule=rule)
        conv = m.convergence
        welfare = float((bp[m.trade_buy] - sp[m.trade_sell]) @ m.trade_kwh)
        gap = (central.welfare - (welfare - conv.differentiation_cost)) / central.welfare
        times.append(elapsed)
        cpu.append(used)
        lp_times.append(central.solve_s)
        iterations.append(conv.iterations)
        converged.append(conv.converged)
        gaps.append(gap)
        print(f"{t:>3} {conv.pairs:>6} {conv.iterations:>5} {conv.converged!s:>5} "
              f"{1e3 * elapsed:>8.1f} {1e3 * used:>7.1f} {1e3 * central.solve_s:>7.1f} "
              f"{elapsed / central.solve_s:>6.1f} {gap:>9.2e}")  # fmt: skip
    med, lp_med = float(np.median(times)), float(np.median(lp_times))
    cpu_med = float(np.median(cpu))
    met = med < TARGET_S and all(converged)
    print(f"median ADMM {1e3 * med:.1f} ms per interval wall, {1e3 * cpu_med:.1f} ms CPU "
          f"(max {1e3 * max(times):.1f} / {1e3 * max(cpu):.1f}); target {1e3 * TARGET_S:.0f} ms "
          f"converged: {'met' if met else 'NOT met'} (wall/target {med / TARGET_S:.2f}, CPU/target "
          f"{cpu_med / TARGET_S:.2f}); iterations median {int(np.median(iterations))}, max "
          f"{max(iterations)}; {sum(converged)}/{len(converged)} converged "
          f"({np.mean(converged):.0%}); median central LP {1e3 * lp_med:.1f} ms, ratio ADMM/LP "
          f"{med / lp_med:.1f} wall, {cpu_med / lp_med:.1f} CPU; largest welfare gap "
          f"{max(gaps):.2e}")  # fmt: skip


def congested(rule: P2PRule, n_intervals: int) -> None:
    """The congested case of the module docstring."""
    n = HOUSEHOLDS
    rng = np.random.default_rng(SEED + 1)
    dso = DSORule()
    print(f"{'t':>3} {'pairs':>6} {'outer':>5} {'iter':>6} {'conv':>5} {'ms':>8} "
          f"{'restored':>8} {'flow/limit':>10} {'revenue':>8}")  # fmt: skip
    times, outers = [], []
    for t in range(n_intervals):
        sells = rng.random(n) < 0.2 + 0.6 * np.arange(n) / n
        energy = rng.lognormal(np.log(0.3), 0.8, n)
        price = np.where(sells, rng.uniform(0.08, 0.20, n), rng.uniform(0.12, 0.32, n))
        buy, sell = np.flatnonzero(~sells), np.flatnonzero(sells)
        bq, bp, sq, sp = energy[buy], price[buy], energy[sell], price[sell]
        pairs = negotiating_pairs(bp, sp, buy, sell, rule)
        m = clear_p2p(bq, bp, sq, sp, buy_owner=buy, sell_owner=sell, rule=rule)
        # the uncharged flows: line l carries what the buses behind it (l + 1 ..) export
        inject = np.bincount(sell[m.trade_sell] + 1, m.trade_kwh, n + 1)
        inject -= np.bincount(buy[m.trade_buy] + 1, m.trade_kwh, n + 1)
        flow = -np.cumsum(inject[::-1])[::-1][1:]
        worst = int(np.abs(flow).argmax())
        limit = 0.6 * abs(flow[worst])
        path = (np.arange(n)[None, :] < np.arange(n + 1)[:, None])[:, [worst]].astype(float)
        sens = pair_line_sensitivity(path, buy[pairs.buy] + 1, sell[pairs.sell] + 1)

        def check(
            trade: np.ndarray, sens: np.ndarray = sens, limit: float = limit
        ) -> tuple[np.ndarray, np.ndarray]:
            f = sens @ trade
            return np.abs(f) / limit - 1.0, np.where(f >= 0, 1.0, -1.0)[:, None] * sens

        t0 = time.perf_counter()
        out = negotiate_with_dso(bq, bp, sq, sp, pairs, rule, check, dso)
        elapsed = time.perf_counter() - t0
        ratio = abs(float(sens[0] @ out.trade_kwh)) / limit
        times.append(elapsed)
        outers.append(out.outer_iterations)
        c = out.convergence
        print(f"{t:>3} {pairs.n:>6} {out.outer_iterations:>5} {c.iterations:>6} "
              f"{c.converged!s:>5} {1e3 * elapsed:>8.1f} {out.restored!s:>8} {ratio:>10.4f} "
              f"{out.revenue:>8.4f}")  # fmt: skip
    print(f"congested: negotiations median {int(np.median(outers))}, max {max(outers)} "
          f"(cap {dso.max_outer}); {sum(o < dso.max_outer for o in outers)}/{len(outers)} "
          f"within the cap; median {1e3 * float(np.median(times)):.1f} ms per interval, "
          f"max {1e3 * max(times):.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
