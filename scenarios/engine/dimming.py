"""§14a EnWG dimming in the interval loop: the grid operator's first relief.

With ``grid.controllable_share > 0`` and ``grid.dimming`` on, a share of the households
(drawn from the seed, :func:`registered_households`) have their controllable devices
(every registered device kind with ``controllable``, :mod:`agents.devices`: wallboxes,
batteries and heat pumps) registered with the grid operator. When the market's clearing of an
interval breaks a feeder limit that their consumption loads (:func:`grid.dimming.relieves`),
the operator dims every registered device to the guaranteed minimum
``grid.dimming_min_kw`` per device (:func:`grid.dimming.dimming_cuts`) before the grid
stage curtails or defers anything else; the dimmed plan is cleared again by the market's
mechanism and then checked as any plan (:meth:`GridStage.check`, which re-clears it with
the feeder in the model if a limit is still broken). The no-P2P baseline goes through the
same step.

Reported per household and interval (``agents.parquet``): ``dimmed_kwh``, the planned
draw the operator cut (own charging and flexible buy orders), and ``ev_shortfall_kwh``,
the part of it that was least-laxity EV charging: what the feeder could not postpone, so
the car leaves with that much less (times the charger efficiency) unless the household
charges it later beyond its plan (it charges at full power after a cut, so it does not).
Batteries are dimmed only in their flexible charging, so their SoC stays within bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.devices import DEVICE_KINDS
from agents.households.community import KIND_NET, Plan
from agents.households.table import draw_owners
from grid.dimming import dimming_cuts, relieves
from grid.relief import shrink_buy_orders
from market.orders import TINY_KWH
from scenarios.config.schema import Scenario
from scenarios.engine.grid_stage import GridStage, orders_of

STREAM_CONTROLLABLE = 104
"""Random stream of the households registered as controllable."""


def registered_households(n: int, share: float, seed: int) -> np.ndarray:
    """Exactly ``round(share * n)`` households registered, placed at random."""
    return draw_owners(np.random.default_rng([seed, STREAM_CONTROLLABLE]), n, share)


@dataclass(frozen=True, slots=True)
class Dimmed:
    """An interval's plan after dimming and what was dimmed per household [kWh]."""

    plan: Plan
    rows: np.ndarray
    """Row in the plan before dimming of each order of the dimmed plan."""
    dimmed_kwh: np.ndarray
    own_cut_kwh: np.ndarray
    """The part of ``dimmed_kwh`` that was own charging (net buy orders shrank by it)."""
    ev_shortfall_kwh: np.ndarray
    violations: int
    """Limits the market's clearing broke before dimming (in the screen)."""


class Dimming:
    """The registered households and the guaranteed minimum of a run."""

    def __init__(self, scenario: Scenario, n_households: int) -> None:
        g, sim = scenario.grid, scenario.simulation
        self.registered = registered_households(n_households, g.controllable_share, sim.seed)
        self.min_kwh = g.dimming_min_kw * sim.interval_hours
        self.kinds = [k for k in DEVICE_KINDS if k.controllable]

    @classmethod
    def of(cls, scenario: Scenario, n_households: int) -> Dimming | None:
        """The run's dimming, or None when no household is registered or it is off."""
        g = scenario.grid
        if not g.dimming or round(g.controllable_share * n_households) == 0:
            return None
        return cls(scenario, n_households)

    def dim(
        self,
        grid: GridStage,
        plan: Plan,
        filled_kwh: np.ndarray,
        net_kwh: np.ndarray,
        bg_p: np.ndarray,
        bg_q: np.ndarray,
    ) -> Dimmed | None:
        """The plan dimmed where the market's clearing (``filled_kwh`` per order, the
        households' net injections ``net_kwh``) breaks a limit that dimming relieves;
        None where it breaks none or dimming would not help."""
        n = len(net_kwh)
        p, q = grid.injections(net_kwh, plan.demand_kwh, bg_p, bg_q)
        v, loading, _ = grid.model.screen(p, q)
        limits = grid.model.limits
        broken = int(limits.bus_violation(v).sum() + limits.line_violation(loading).sum())
        if not broken:
            return None
        hh, zeros = plan.household, np.zeros(n)
        flex = [plan.is_buy & (plan.kind == k.kind) for k in self.kinds]
        own = np.array([plan.self_kwh.get(k.name, zeros) for k in self.kinds])
        flex_kwh = np.array([np.bincount(hh[f], plan.energy_kwh[f], n) for f in flex])
        net_buy = plan.is_buy & (plan.kind == KIND_NET)
        own_cut, flex_cut = dimming_cuts(
            own, flex_kwh, np.bincount(hh[net_buy], plan.energy_kwh[net_buy], n),
            self.registered, self.min_kwh,
        )  # fmt: skip
        own_total = own_cut.sum(axis=0)
        if own_total.sum() + flex_cut.sum() <= TINY_KWH:
            return None
        energy, _ = shrink_buy_orders(orders_of(plan), own_total)
        for f, cut, ordered in zip(flex, flex_cut, flex_kwh, strict=True):
            frac = np.divide(cut, ordered, out=np.zeros(n), where=ordered > 0)
            energy[f] *= 1.0 - frac[hh[f]]
        # the injections if the market's fills beyond the dimmed orders go
        lost = np.bincount(hh, np.maximum(filled_kwh - energy, 0.0) * ~net_buy, n)
        p_dim, q_dim = grid.injections(net_kwh + own_total + lost, plan.demand_kwh, bg_p, bg_q)
        v_dim, loading_dim, _ = grid.model.screen(p_dim, q_dim)
        if not relieves(limits, v, loading, v_dim, loading_dim):
            return None
        keep = energy > TINY_KWH
        cuts = {k.name: c for k, c in zip(self.kinds, own_cut, strict=True)}
        return Dimmed(
            plan=plan.dim(cuts).with_orders(keep, energy),
            rows=np.flatnonzero(keep),
            dimmed_kwh=own_total + flex_cut.sum(axis=0),
            own_cut_kwh=own_total,
            ev_shortfall_kwh=plan.dimmed_shortfall_kwh(cuts),
            violations=broken,
        )
