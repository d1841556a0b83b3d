"""The feeder in the interval loop: check the flows the trades imply, re-clear if needed.

Per interval, with ``grid.check`` on:

1. the households' physical net injections (after the unconstrained clearing) are summed
   per bus, the feeder's background load added; households' reactive power follows
   their demand at the power factor ``grid.household_power_factor`` (PV and storage at
   unity);
2. the persistent feeder model checks them (screen, or Pyomo near a limit);
3. if a limit is broken, the interval is re-cleared by :func:`grid.coupling.reclear`:
   welfare over the same orders with the feeder's limits, PV curtailment and the utility
   at the slack; flexible storage orders flow only as far as they are filled. The result
   replaces the unconstrained trades. Curtailment and deferred EV charging are shared
   over the buses pro rata to what each can give wherever that keeps every limit
   (:func:`grid.coupling.spread_evenly`; where only some buses relieve the limit they
   carry it), and at a bus among its households: curtailment first from the surplus they
   could not sell peer to peer, then from the PV they used themselves, each pro rata. The
   re-cleared fills become trades only where both orders' limits allow them
   (:func:`grid.pairing.pair_fills`), priced at the dual of the P2P balance kept inside
   every pair's bid and ask; fills that no bid accepts are settled with the utility.
   Without P2P (``p2p=False``, the no-P2P baseline, :mod:`scenarios.engine.baseline`) the
   re-clearing fills no order and only curtails and defers.
4. Nodal prices (the duals of the bus balances) exist where the re-clearing ran and
   restored every limit; elsewhere they are null (where a limit cannot be restored the
   duals price the violation penalty, not energy).
5. Re-clearing is skipped where the market holds nothing that could relieve the broken
   limit (:func:`grid.relief.can_relieve`), and replaced by its known optimum where only
   an under-voltage is broken that stays broken without any flexible charging
   (:func:`grid.relief.saturated_relief`).

The coupling logic itself lives in ``grid/`` (:mod:`grid.coupling`, :mod:`grid.relief`,
:mod:`grid.pairing`, limits in :mod:`grid.limits`) and works on the market's order arrays;
this module orchestrates it for a run and writes ``buses.parquet`` and ``lines.parquet``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from agents.households.community import Plan
from grid import AcPowerFlow, FeederModel, GridCheck, assign_households
from grid.clearing_model import reserve_order_slots
from grid.coupling import reclear
from grid.feeders import Feeder
from grid.limits import Limits
from grid.pairing import Pairing
from grid.relief import can_relieve, deferrable_of_buyers, saturated_relief, shrink_buy_orders
from market.orders import Orders
from market.settlement import Tariffs
from scenarios.config.preflight import scenario_feeder
from scenarios.config.schema import Scenario
from scenarios.engine.background import background_factor
from scenarios.results.files import BUSES_FILE, LINES_FILE, TableStream


def scenario_limits(scenario: Scenario) -> Limits:
    """The limits the run's feeder model holds and its results are judged by
    (:mod:`grid.limits`; the thermal margin is the model's default)."""
    g = scenario.grid
    return Limits(g.v_min_pu, g.v_max_pu, g.v_margin_pu)


def orders_of(plan: Plan) -> Orders:
    """The plan's orders as the market's order arrays."""
    return Orders.build(plan.household, plan.is_buy, plan.energy_kwh, plan.price_per_kwh, plan.kind)


@dataclass(frozen=True, slots=True)
class GridOutcome:
    """The feeder's verdict on one interval."""

    check: GridCheck | None
    p_kw: np.ndarray
    q_kvar: np.ndarray
    recleared: bool
    filled_kwh: np.ndarray | None = None
    curtailed_kwh: np.ndarray | None = None
    pairing: Pairing | None = None
    nodal_price_per_kwh: np.ndarray | None = None
    p2p_price_per_kwh: float = float("nan")
    dropped_orders: np.ndarray | None = None
    ev_deferred_kwh: np.ndarray | None = None
    violations_before: int | None = None

    @property
    def violations_before_reclear(self) -> int:
        """Limits broken before any re-clearing."""
        if self.violations_before is not None:
            return self.violations_before
        assert self.check is not None
        return self.check.violations


class GridStage:
    """The feeder of a run, its model, and the bus and line tables being written."""

    def __init__(
        self, scenario: Scenario, n_households: int, out_dir: Path, feeder: Feeder | None = None
    ) -> None:
        """``feeder``: the feeder to run on instead of ``grid.feeder``'s (an LV feeder of
        a district, :mod:`scenarios.engine.district`)."""
        g, sim = scenario.grid, scenario.simulation
        self.feeder = scenario_feeder(scenario, n_households) if feeder is None else feeder
        self.bus = assign_households(self.feeder, n_households, sim.seed)
        self.limits = scenario_limits(scenario)
        self.model = FeederModel.with_limits(self.feeder, self.limits)
        self.ac = AcPowerFlow(self.feeder) if g.check == "pyomo+ac" else None
        self.tan_phi = math.tan(math.acos(g.household_power_factor))
        self.dt_h = sim.interval_hours
        self.interval_minutes = sim.interval_minutes
        self.background_kind = g.background
        self.n_bus = self.feeder.n_bus
        self._reserved = False
        self.bus_labels = self.feeder.buses["bus"].astype(str).to_numpy()
        lines = self.feeder.lines
        self.line_labels = lines["line"].astype(str).to_numpy()
        self._from = lines["from_bus"].to_numpy(np.int32)
        self._to = lines["to_bus"].to_numpy(np.int32)
        ids = pa.dictionary(pa.int32(), pa.string())
        self._buses_out = TableStream(
            out_dir / BUSES_FILE,
            pa.schema(
                [
                    ("t", pa.int32()),
                    ("bus", ids),
                    ("p_kw", pa.float64()),
                    ("q_kvar", pa.float64()),
                    ("v_pu", pa.float64()),
                    ("nodal_price_per_kwh", pa.float64()),
                ]
            ),
            ["bus"],
        )
        self._lines_out = TableStream(
            out_dir / LINES_FILE,
            pa.schema(
                [
                    ("t", pa.int32()),
                    ("line", ids),
                    ("from_bus", ids),
                    ("to_bus", ids),
                    ("p_kw", pa.float64()),
                    ("q_kvar", pa.float64()),
                    ("loading_frac", pa.float64()),
                ]
            ),
            ["line", "from_bus", "to_bus"],
        )

    def twin(self) -> GridStage:
        """A stage on the same feeder, household buses and AC network with a feeder model
        of its own and no bus or line tables: the no-P2P baseline's. Its solves never
        warm-start the run's, so the run's results do not depend on the baseline's."""
        twin = copy.copy(self)
        twin.model = FeederModel.with_limits(self.feeder, self.limits)
        twin._reserved = False
        twin._buses_out = twin._lines_out = None
        return twin

    def background(self, local: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
        """Background injections for the intervals starting at ``local`` [kW, kvar],
        shape (T, n_bus), on the scenario's calendar (:mod:`scenarios.engine.background`)."""
        factor = background_factor(self.background_kind, local, self.interval_minutes)
        return (
            self.feeder.background_injection_kw(factor),
            self.feeder.background_injection_kvar(factor),
        )

    def background_violations(self, bg_p: np.ndarray, bg_q: np.ndarray) -> np.ndarray:
        """Limits the background load alone breaks, per interval of a window (T,).

        From the vectorised screen of the same linear model (exact for it), so a planner
        can tell the feeder's own violations from the community's.
        """
        return self.model.screen_violations(bg_p, bg_q)

    def injections(
        self, net_kwh: np.ndarray, demand_kwh: np.ndarray, bg_p: np.ndarray, bg_q: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Total net injection per bus [kW, kvar], background included."""
        p = np.bincount(self.bus, net_kwh, self.n_bus) / self.dt_h + bg_p
        q = -np.bincount(self.bus, demand_kwh, self.n_bus) * self.tan_phi / self.dt_h + bg_q
        return p, q

    @staticmethod
    def shrink_buy_orders(plan: Plan, deferred_kwh: np.ndarray) -> tuple[Plan, np.ndarray]:
        """The plan with each buyer's net buy order reduced by its deferred charging, and
        which of the plan's orders it keeps (:func:`grid.relief.shrink_buy_orders`)."""
        energy, keep = shrink_buy_orders(orders_of(plan), deferred_kwh)
        return plan.with_orders(keep, energy), keep

    def prepare(self) -> None:
        """Build and solve the clearing model once (the live market does it before its first
        gate opens); stock path: pools sized for the fullest bus, never rebuilt; direct
        path: order columns appended as books need them (:mod:`grid.clearing_direct`)."""
        if self._reserved:
            return
        per_bus = int(np.bincount(self.bus, minlength=self.n_bus).max())
        reserve_order_slots(self.model, per_bus, 2)
        self._reserved = True
        zero, none = np.zeros(self.n_bus), np.zeros(0)
        self.model.check(zero, zero)
        # an empty book: the utility prices (retail 0.3, feed-in 0.1) play no part
        self.model.clear_constrained(
            zero,
            zero,
            none.astype(np.int64),
            none.astype(np.int8),
            none,
            none,
            zero,
            0.3,
            0.1,
            self.dt_h,
            deferrable_kw=zero,
            order_flexible=none.astype(bool),
        )

    def check(
        self,
        plan: Plan,
        net_kwh: np.ndarray,
        bg_p: np.ndarray,
        bg_q: np.ndarray,
        tariffs: Tariffs,
        filled_kwh: np.ndarray | None = None,
        p2p: bool = True,
    ) -> GridOutcome:
        """Check an interval; re-clear it with the feeder in the model if a limit breaks
        and the market could relieve it (:func:`grid.relief.can_relieve`). Without ``p2p``
        (the no-P2P baseline) the re-clearing fills no order: it only curtails and defers."""
        p, q = self.injections(net_kwh, plan.demand_kwh, bg_p, bg_q)
        m = self.model
        orders = orders_of(plan)
        relief = (plan.generation_kwh, plan.ev_deferrable_kwh)
        if filled_kwh is not None:
            # The screen (the same linear model, equal to the Pyomo solve to 1e-7 p.u.)
            # decides whether the known optimum of an unrestorable under-voltage applies;
            # the state that is recorded is always checked by the Pyomo model (recheck).
            v, loading, _ = m.screen(p, q)
            bus_bad, line_bad = m.limits.bus_violation(v), m.limits.line_violation(loading)
            if bus_bad.any() and can_relieve(m.limits, v, line_bad, orders, filled_kwh, *relief):
                dropped = saturated_relief(
                    m, self.bus, v, line_bad, orders, filled_kwh, plan.ev_deferrable_kwh, p, q,
                    self.dt_h,
                )  # fmt: skip
                if dropped is not None:
                    return GridOutcome(
                        None,
                        p,
                        q,
                        recleared=True,
                        dropped_orders=dropped,
                        ev_deferred_kwh=deferrable_of_buyers(orders, plan.ev_deferrable_kwh),
                        violations_before=int(bus_bad.sum() + line_bad.sum()),
                    )
        chk = m.check(p, q)
        if chk.violations == 0:
            return GridOutcome(chk, p, q, recleared=False)
        if filled_kwh is not None and not can_relieve(
            m.limits, chk.v_pu, chk.line_violation, orders, filled_kwh, *relief
        ):
            return GridOutcome(chk, p, q, recleared=False)
        self.prepare()
        res = reclear(
            m, self.bus, orders, plan.generation_kwh, plan.ev_deferrable_kwh, bg_p, q,
            tariffs.retail_price_per_kwh, tariffs.feed_in_price_per_kwh, self.dt_h, p2p,
        )  # fmt: skip
        return GridOutcome(
            check=chk,
            p_kw=p,
            q_kvar=q,
            recleared=True,
            filled_kwh=res.filled_kwh,
            curtailed_kwh=res.curtailed_kwh,
            ev_deferred_kwh=res.ev_deferred_kwh,
            pairing=res.pairing,
            nodal_price_per_kwh=res.nodal_price_per_kwh,
            p2p_price_per_kwh=res.p2p_price_per_kwh,
        )

    def recheck(
        self,
        outcome: GridOutcome,
        net_kwh: np.ndarray,
        demand_kwh: np.ndarray,
        bg_p: np.ndarray,
        bg_q: np.ndarray,
    ) -> GridOutcome:
        """The check of the injections that the re-clearing left."""
        p, q = self.injections(net_kwh, demand_kwh, bg_p, bg_q)
        chk = self.model.check(p, q)
        return replace(outcome, check=chk, p_kw=p, q_kvar=q)

    def ac_check(self, outcome: GridOutcome) -> tuple[float, float, float, float]:
        """AC power flow of the interval: (v_min, v_max, largest |model − AC| voltage) [p.u.]
        and the largest loading (current over rated current) [-]."""
        assert self.ac is not None
        ac = self.ac.run(outcome.p_kw, outcome.q_kvar)
        err = float(np.abs(outcome.check.v_pu - ac.v_pu).max())
        return float(ac.v_pu.min()), float(ac.v_pu.max()), err, float(ac.loading_frac.max())

    def write_window(self, t0: int, outcomes: list[GridOutcome]) -> None:
        """Append a window of intervals to buses.parquet and lines.parquet."""
        n_t, nb = len(outcomes), self.n_bus
        nl = len(self.line_labels)
        t = np.arange(t0, t0 + n_t, dtype=np.int32)
        nan_prices = np.full(nb, np.nan)
        bus_idx = pa.array(np.tile(np.arange(nb, dtype=np.int32), n_t))
        self._buses_out.write(
            {
                "t": np.repeat(t, nb),
                "bus": pa.DictionaryArray.from_arrays(bus_idx, pa.array(self.bus_labels)),
                "p_kw": np.concatenate([o.p_kw for o in outcomes]),
                "q_kvar": np.concatenate([o.q_kvar for o in outcomes]),
                "v_pu": np.concatenate([o.check.v_pu for o in outcomes]),
                "nodal_price_per_kwh": np.concatenate(
                    [
                        nan_prices if o.nodal_price_per_kwh is None else o.nodal_price_per_kwh
                        for o in outcomes
                    ]
                ),
            }
        )
        line_idx = pa.array(np.tile(np.arange(nl, dtype=np.int32), n_t))
        self._lines_out.write(
            {
                "t": np.repeat(t, nl),
                "line": pa.DictionaryArray.from_arrays(line_idx, pa.array(self.line_labels)),
                "from_bus": pa.DictionaryArray.from_arrays(
                    pa.array(np.tile(self._from, n_t)), pa.array(self.bus_labels)
                ),
                "to_bus": pa.DictionaryArray.from_arrays(
                    pa.array(np.tile(self._to, n_t)), pa.array(self.bus_labels)
                ),
                "p_kw": np.concatenate([o.check.line_p_kw for o in outcomes]),
                "q_kvar": np.concatenate([o.check.line_q_kvar for o in outcomes]),
                "loading_frac": np.concatenate([o.check.loading_frac for o in outcomes]),
            }
        )

    def rows(self, outcome: GridOutcome) -> tuple[list[dict], list[dict]]:
        """One interval's rows of buses.parquet and lines.parquet, as dicts (NaN → None):
        what the live market publishes in ``market/result`` ``grid.buses``/``grid.lines``."""

        def num(x: float) -> float | None:
            return float(x) if np.isfinite(x) else None

        prices = outcome.nodal_price_per_kwh
        chk = outcome.check
        buses = [
            {
                "bus": str(label),
                "p_kw": num(p),
                "q_kvar": num(q),
                "v_pu": num(v),
                "nodal_price_per_kwh": None if prices is None else num(prices[i]),
            }
            for i, (label, p, q, v) in enumerate(
                zip(
                    self.bus_labels,
                    outcome.p_kw.tolist(),
                    outcome.q_kvar.tolist(),
                    chk.v_pu.tolist(),
                    strict=True,
                )
            )
        ]
        lines = [
            {
                "line": str(label),
                "from_bus": str(self.bus_labels[f]),
                "to_bus": str(self.bus_labels[to]),
                "p_kw": num(p),
                "q_kvar": num(q),
                "loading_frac": num(x),
            }
            for label, f, to, p, q, x in zip(
                self.line_labels,
                self._from.tolist(),
                self._to.tolist(),
                chk.line_p_kw.tolist(),
                chk.line_q_kvar.tolist(),
                chk.loading_frac.tolist(),
                strict=True,
            )
        ]
        return buses, lines

    def close(self) -> None:
        self._buses_out.close()
        self._lines_out.close()
