"""The MV level of a district run (issue 18): the MV grid checked on the LV feeders'
transformer flows, and the market split where it breaks.

:func:`check_mv` puts every LV feeder's slack power (its transformer flow, export
positive, as its own LV check computed it) at its MV bus (``District.mv_bus``) and solves
the MV grid's LinDistFlow model (:class:`grid.lindistflow.FeederModel` on
``district.mv``, the MV model :class:`grid.district_flow.MvLvCoupling` holds), vectorised
over the intervals: MV voltages, loadings and violations (:class:`grid.limits.Limits` of
the scenario). The LV checks are not re-run at the MV voltages: each LV feeder was checked
at its own slack voltage, as a single run of it is.

Where the MV grid breaks a limit, the district market is re-cleared split into zones
(market splitting, :func:`market.nested.clear_district`): every MV line that is overloaded,
or that feeds a bus outside the voltage band, cuts the feeders below it off from the
rest, so no district trade crosses it. A feeder's zone is the deepest broken line on its
path from the substation (0: none). The district's trades move no energy of their own (the
households' net injections are what they metered), so the split changes who trades with
whom and at what price; the violations stay as reported (``mv_violations``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from grid.district import District
from grid.limits import Limits

if TYPE_CHECKING:
    from grid.lindistflow import FeederModel


@dataclass(frozen=True)
class MvCheck:
    """Per interval: MV voltage range [p.u.], largest MV loading, limits broken, and
    each LV feeder's market zone (shape ``(T, n_feeders)``)."""

    v_min_pu: np.ndarray
    v_max_pu: np.ndarray
    max_loading_frac: np.ndarray
    violations: np.ndarray
    zone: np.ndarray


def _path_lines(district: District) -> list[list[int]]:
    """Per LV feeder, the MV lines from the substation down to its MV bus (top first)."""
    lines = district.mv.lines
    into = {int(b): i for i, b in enumerate(lines["to_bus"].to_numpy())}
    frm = lines["from_bus"].to_numpy()
    paths = []
    for b in district.mv_bus.tolist():
        path: list[int] = []
        while b in into:
            path.append(into[b])
            b = int(frm[into[b]])
        paths.append(path[::-1])
    return paths


def mv_model(district: District, limits: Limits) -> FeederModel:
    """The MV grid's LinDistFlow model with the scenario's limits (built once per run:
    its linear map is the MV check's largest cost)."""
    from grid.lindistflow import FeederModel

    return FeederModel.with_limits(district.mv, limits)


def check_mv(
    district: District,
    slack_p_kw: np.ndarray,
    slack_q_kvar: np.ndarray,
    limits: Limits,
    model: FeederModel | None = None,
) -> MvCheck:
    """The MV check of the transformer flows ``(T, n_feeders)`` [kW, kvar]; ``model``:
    :func:`mv_model` of the same ``limits``, built here when not given."""
    mv = district.mv
    model = mv_model(district, limits) if model is None else model
    n_t = slack_p_kw.shape[0]
    p = np.broadcast_to(mv.base_injection_kw(), (n_t, mv.n_bus)).copy()
    q = np.broadcast_to(mv.base_injection_kvar(), (n_t, mv.n_bus)).copy()
    for k, b in enumerate(district.mv_bus.tolist()):  # several feeders may share a bus
        p[:, b] += slack_p_kw[:, k]
        q[:, b] += slack_q_kvar[:, k]
    v, loading, _ = model.screen(p, q)
    bus_bad = limits.bus_violation(v)
    line_bad = limits.line_violation(loading)
    # a bus outside the band breaks the line that feeds it
    to_bus = mv.lines["to_bus"].to_numpy()
    broken = line_bad | bus_bad[:, to_bus]
    zone = np.zeros((n_t, district.n_feeders), np.int64)
    for k, path in enumerate(_path_lines(district)):
        for line in path:  # the deepest broken line wins
            zone[:, k] = np.where(broken[:, line], line + 1, zone[:, k])
    return MvCheck(
        v.min(axis=1),
        v.max(axis=1),
        loading.max(axis=1),
        bus_bad.sum(axis=1) + line_bad.sum(axis=1),
        zone,
    )
