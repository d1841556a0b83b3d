"""A district: one medium-voltage (MV) grid with low-voltage (LV) feeders under it (issue 18).

A :class:`District` holds the MV network and every LV feeder as ordinary
:class:`grid.feeders.Feeder` tables, so each LV feeder keeps its own LinDistFlow model
exactly as a single-feeder run has it, and the MV grid gets one of its own. The two levels
are coupled at the MV/LV transformers:

- each LV feeder's slack bus is the HV side of its MV/LV transformer (the transformer is the
  feeder's branch of ``kind = "trafo"`` out of the slack), and
- that slack bus is the MV bus ``mv_bus[k]`` of the MV network: the LV feeder's net power at
  its slack (households, background and losses, positive when the LV feeder exports) is an
  injection at that MV bus, and the MV voltage there is the LV feeder's slack voltage.

The MV network's own loads (``mv.buses.base_p_kw``) stay as background; households sit only
on LV buses.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from grid.errors import FeederError
from grid.feeders import Feeder


@dataclass(frozen=True)
class District:
    """An MV network with LV feeders connected at its buses.

    Attributes
    ----------
    name : str
        The district's name (``"district:4x25"``, ``"simbench:<code>"``, file stem).
    mv : Feeder
        The MV network; its slack is the HV/MV substation.
    feeders : tuple of Feeder
        The LV feeders, each with its MV/LV transformer out of its slack bus.
    feeder_ids : tuple of str
        One id per LV feeder (results are partitioned by it: ``feeder=<id>/``).
    mv_bus : numpy.ndarray of int, shape (n_feeders,)
        Position in ``mv.buses`` of the MV bus each LV feeder hangs on.
    """

    name: str
    mv: Feeder
    feeders: tuple[Feeder, ...]
    feeder_ids: tuple[str, ...]
    mv_bus: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.feeders)
        if n == 0:
            raise FeederError(["no LV feeders"], self.name)
        if len(self.feeder_ids) != n or len(set(self.feeder_ids)) != n:
            raise FeederError(
                [
                    f"{len(self.feeder_ids)} feeder ids for {n} LV "
                    "feeders (one unique id per feeder)"
                ],
                self.name,
            )
        bus = np.asarray(self.mv_bus)
        if bus.shape != (n,) or not np.issubdtype(bus.dtype, np.integer):
            raise FeederError(
                [f"mv_bus must be {n} integer bus positions, got shape {bus.shape} of {bus.dtype}"],
                self.name,
            )
        outside = (bus < 0) | (bus >= self.mv.n_bus)
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            raise FeederError(
                [
                    f"LV feeder {self.feeder_ids[k]!r} hangs on MV bus "
                    f"position {int(bus[k])}, outside the MV network's {self.mv.n_bus} buses"
                ],
                self.name,
            )
        if (bus == self.mv.slack_bus).any():
            k = int(np.flatnonzero(bus == self.mv.slack_bus)[0])
            raise FeederError(
                [
                    f"LV feeder {self.feeder_ids[k]!r} hangs on the MV "
                    "slack bus (the substation); connect it to an MV bus below it"
                ],
                self.name,
            )

    @property
    def n_feeders(self) -> int:
        """Number of LV feeders."""
        return len(self.feeders)
