"""The MV/LV coupling of a :class:`grid.district.District`'s LinDistFlow models (issue 18).

:class:`MvLvCoupling` holds one linearised DistFlow map per LV feeder and one for the MV
grid (:class:`grid.lindistflow.FeederModel`, each around its own base case) and couples
them as the District docstring says, for one interval or many at once (arrays of shape
``(..., n_bus)``):

1. every LV feeder is solved with its slack at the MV voltage of the previous pass (1.0 p.u.
   at first); its slack power is minus the sending-end flows of its branches out of the
   slack (positive when the feeder exports);
2. the MV grid is solved with those slack powers as injections at ``mv_bus`` (added to the
   MV injections given, e.g. its background);
3. the MV voltages at ``mv_bus`` become the LV slack voltages; the passes repeat
   ``passes`` times (two settle it: an LV feeder's losses barely depend on its slack
   voltage).

The slack voltage enters an LV map only through its constant term, linearly in the squared
slack voltage, so a changed slack voltage costs one precomputed vector per feeder.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from grid.distflow import linear_map
from grid.district import District
from grid.lindistflow import FeederModel


@dataclass(frozen=True)
class DistrictFlow:
    """The coupled power flow of a district (arrays with the leading shape of the input).

    slack_p_kw, slack_q_kvar : (..., n_feeders) LV slack powers, export positive.
    mv_v_pu : (..., mv.n_bus); mv_p_kw, mv_q_kvar : (..., mv.n_line) sending-end MV flows.
    lv_v_pu, lv_p_kw, lv_q_kvar : tuples, one array per LV feeder, likewise.
    """

    slack_p_kw: np.ndarray
    slack_q_kvar: np.ndarray
    mv_v_pu: np.ndarray
    mv_p_kw: np.ndarray
    mv_q_kvar: np.ndarray
    lv_v_pu: tuple[np.ndarray, ...]
    lv_p_kw: tuple[np.ndarray, ...]
    lv_q_kvar: tuple[np.ndarray, ...]


class MvLvCoupling:
    """LinDistFlow models of a district's MV grid and LV feeders, coupled at the
    transformers (module docstring). ``options`` go to every :class:`FeederModel`."""

    def __init__(self, district: District, *, passes: int = 2, **options: Any) -> None:
        self.district = district
        self.passes = int(passes)
        self.mv_model = FeederModel(district.mv, **options)
        self.lv_models: list[FeederModel] = []
        self._dz: list[np.ndarray] = []
        self._out: list[np.ndarray] = []
        for f in district.feeders:
            m = FeederModel(f, **options)
            ws = m.w_slack_pu
            z_up = linear_map(m.tree, m.lin, ws + 1.0).z0
            self._dz.append(z_up - m.map.z0)  # d z / d w_slack
            self._out.append(np.flatnonzero(f.lines["from_bus"].to_numpy() == f.slack_bus))
            self.lv_models.append(m)

    def _lv(
        self, k: int, p_kw: np.ndarray, q_kvar: np.ndarray, v_slack: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        m = self.lv_models[k]
        s = m.feeder.s_base_kva
        pl, ql, w = m.map.solve(np.asarray(p_kw, float) / s, np.asarray(q_kvar, float) / s)
        dw = (np.asarray(v_slack)[..., None] ** 2) - m.w_slack_pu
        dz = dw * self._dz[k]
        nl = m.map.n_line
        pl, ql, w = pl + dz[..., :nl], ql + dz[..., nl : 2 * nl], w + dz[..., 2 * nl :]
        return pl * s, ql * s, np.sqrt(np.maximum(w, 0.0))

    def flow(
        self,
        lv_p_kw: list[np.ndarray],
        lv_q_kvar: list[np.ndarray],
        mv_p_kw: np.ndarray | None = None,
        mv_q_kvar: np.ndarray | None = None,
    ) -> DistrictFlow:
        """The coupled flow for per-feeder bus injections [kW, kvar], export positive,
        background included (shape ``(..., n_bus)`` of each feeder); ``mv_p_kw`` /
        ``mv_q_kvar`` are the MV grid's own injections (default its base case)."""
        d = self.district
        n = d.n_feeders
        if len(lv_p_kw) != n or len(lv_q_kvar) != n:
            raise ValueError(f"expected injections for {n} LV feeders, got {len(lv_p_kw)}")
        lead = np.shape(lv_p_kw[0])[:-1]
        mv_p = d.mv.base_injection_kw() if mv_p_kw is None else np.asarray(mv_p_kw, float)
        mv_q = d.mv.base_injection_kvar() if mv_q_kvar is None else np.asarray(mv_q_kvar, float)
        v_slack = np.broadcast_to(np.array([m.feeder.v_slack_pu for m in self.lv_models]),
                                  (*lead, n))  # fmt: skip
        mvm = self.mv_model
        for _ in range(max(1, self.passes)):
            lv = [self._lv(k, lv_p_kw[k], lv_q_kvar[k], v_slack[..., k]) for k in range(n)]
            sp = np.stack([-r[0][..., self._out[k]].sum(axis=-1) for k, r in enumerate(lv)], -1)
            sq = np.stack([-r[1][..., self._out[k]].sum(axis=-1) for k, r in enumerate(lv)], -1)
            p = np.broadcast_to(mv_p, (*lead, d.mv.n_bus)).copy()
            q = np.broadcast_to(mv_q, (*lead, d.mv.n_bus)).copy()
            for k, b in enumerate(d.mv_bus.tolist()):  # several feeders may share a bus
                p[..., b] += sp[..., k]
                q[..., b] += sq[..., k]
            s = d.mv.s_base_kva
            pl, ql, w = mvm.map.solve(p / s, q / s)
            mv_v = np.sqrt(np.maximum(w, 0.0))
            v_slack = mv_v[..., d.mv_bus]
        lv = [self._lv(k, lv_p_kw[k], lv_q_kvar[k], v_slack[..., k]) for k in range(n)]
        return DistrictFlow(
            slack_p_kw=sp,
            slack_q_kvar=sq,
            mv_v_pu=mv_v,
            mv_p_kw=pl * s,
            mv_q_kvar=ql * s,
            lv_v_pu=tuple(r[2] for r in lv),
            lv_p_kw=tuple(r[0] for r in lv),
            lv_q_kvar=tuple(r[1] for r in lv),
        )


def flat_feeder(district: District) -> Any:
    """The whole district as one :class:`grid.feeders.Feeder` (LV slack buses merged into
    their MV buses; labels ``<feeder_id>/<bus>``), e.g. for an AC power flow of it."""
    from grid.feeders import build_feeder

    mv = district.mv
    mv_lab = list(mv.buses["bus"])
    buses = [dict(r) for r in mv.buses.to_dict("records")]
    lines = [_relabel(r, mv_lab, mv_lab) for r in mv.lines.to_dict("records")]
    for fid, f, mb in zip(district.feeder_ids, district.feeders, district.mv_bus, strict=True):
        lab = [f"{fid}/{b}" for b in f.buses["bus"]]
        lab[f.slack_bus] = mv_lab[int(mb)]
        buses += [
            dict(r, bus=lab[i])
            for i, r in enumerate(f.buses.to_dict("records"))
            if i != f.slack_bus
        ]
        lines += [dict(_relabel(r, lab, lab), line=f"{fid}/{r['line']}")
                  for r in f.lines.to_dict("records")]  # fmt: skip
    flat = build_feeder(
        district.name, buses, lines, slack_bus=mv_lab[mv.slack_bus], source=district.name
    )
    return replace(flat, v_slack_pu=mv.v_slack_pu)


def _relabel(rec: dict[str, Any], frm: list[str], to: list[str]) -> dict[str, Any]:
    return dict(rec, from_bus=frm[int(rec["from_bus"])], to_bus=to[int(rec["to_bus"])])
