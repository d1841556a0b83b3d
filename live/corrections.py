"""Late meter energy, settled as corrections (the late-energy rule).

A meter that publishes on its own clock has not reached the end of an interval when the
interval's gate closes. Its household is then settled with a substitute value
(:meth:`agents.meters.tracker.MeterTracker.settle`: the energy known so far plus the last
rate until the interval's end), and its ``agents/<id>/settlement`` says
``"estimated": true``. When the meter's counters reach the end of that interval, the
settlement is re-issued with ``version`` k+1, ``"estimated": false`` and the true
metered energy: the trades (and what was paid and received for them) and the committed
net (the order the market placed from the estimate) stand, and the true metered net
minus that commitment is the household's imbalance, settled at the imbalance prices,
through the same settlement function as every interval
(:func:`scenarios.audit.rebill.rebill`: :func:`market.settlement.settle`). The last
version of every interval is what counts; over a run, the settled meter energy equals
the counters' difference.

Corrections are found at every gate and once more after the last interval (the market
waits up to an interval for the late meters); each is committed to the ledger with the
interval (or, after the last one, in a correction record) before it is published, and
the estimates still open are committed too, so a restarted market re-issues them.

An estimate that no counter has corrected :data:`agents.meters.tracker.PAST_INTERVALS`
intervals later stands (its last version stays ``"estimated": true``); the difference
to the true energy is settled on the meter's oldest intervals still open when its
counters come back (never below zero energy).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agents.meters.tracker import MeterTracker
from live.audit import supersedes
from market.settlement import Tariffs
from scenarios.audit.rebill import rebill


class MeterCorrections:
    """The estimated settlements still open for correction, by meter and interval.

    Parameters
    ----------
    households : the household (agent id) of each meter id
    tariffs : the market's tariffs of interval ``t`` (they vary with the time-variable
        grid fee, ``market.fees``)
    """

    def __init__(self, households: dict[str, str], tariffs: Callable[[int], Tariffs]) -> None:
        self.households = households
        self.tariffs = tariffs
        self.held: dict[tuple[str, int], dict[str, Any]] = {}
        """``(meter id, t)`` → the last settlement issued for it (estimated)."""

    def hold(self, meter_id: str, payload: dict[str, Any]) -> None:
        """Keep an estimated settlement until its meter's counters come."""
        self.held[(meter_id, int(payload["t"]))] = payload

    def due(self, trackers: dict[str, MeterTracker]) -> list[dict[str, Any]]:
        """The corrections the trackers' samples allow now, ``[{agent, settlement,
        supersedes}]`` in meter and interval order (``supersedes``: the audit ledger's
        name of the version replaced, :func:`live.audit.supersedes`); forgets estimates
        that stand (no longer pending)."""
        out = []
        for meter_id, tr in trackers.items():
            for t, imp, exp in tr.corrections():
                old = self.held.pop((meter_id, t), None)
                if old is not None:
                    agent = self.households[meter_id]
                    out.append(
                        {
                            "agent": agent,
                            "settlement": rebill(old, imp, exp, self.tariffs(t)),
                            "supersedes": supersedes(agent, old),
                        }
                    )
        for key in [k for k in self.held if k[1] not in trackers[k[0]].pending]:
            del self.held[key]
        return out

    def pending(self) -> int:
        """How many estimated settlements are still open."""
        return len(self.held)

    def state(self) -> list[dict[str, Any]]:
        """The open estimates, for the ledger."""
        return [{"meter": m, "settlement": p} for (m, _t), p in sorted(self.held.items())]

    def restore(self, state: list[dict[str, Any]]) -> None:
        for item in state:
            if item["meter"] in self.households:
                self.hold(item["meter"], item["settlement"])
