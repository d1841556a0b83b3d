"""A feeder's name in a scenario (``ieee33``, ``radial:<households>``, ``simbench:<code>`` or a
feeder file), read without building the feeder: :func:`parse_feeder`, and
:func:`load_feeder`, which then builds it (:mod:`grid.named_feeders`, :mod:`grid.feeder_files`,
:mod:`grid.simbench_feeders`, imported only then: ``p2pgrid validate`` reads the name of a
generated feeder without numpy or pandas).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grid.errors import FeederError
from grid.radial_design import check_radial_size

if TYPE_CHECKING:
    from grid.feeders import Feeder


def _builder(kind: str, *args: Any) -> Callable[[], Feeder]:
    """The builder of a feeder kind, importing its module when it runs."""

    def build() -> Feeder:
        if kind == "file":
            from grid.feeder_files import read_feeder_file

            return read_feeder_file(*args)
        if kind == "simbench":
            from grid.simbench_feeders import simbench_feeder

            return simbench_feeder(*args)
        from grid.named_feeders import ieee33, radial

        return ieee33() if kind == "ieee33" else radial(*args)

    return build


@dataclass(frozen=True)
class FeederSpec:
    """A feeder as a scenario names it, read but not built (:func:`parse_feeder`)."""

    spec: str
    load: Callable[[], Feeder]
    """Builds the feeder; raises :class:`grid.errors.FeederError` for a malformed file."""
    generated: bool = False
    """ieee33 or radial:<households>: built from code, so reading the name has found every
    problem there can be (``p2pgrid validate`` need not build it)."""
    district: bool = False
    """A district (:func:`grid.district_networks.is_district`): ``load()`` builds it with
    :func:`grid.district_networks.load_district`, so its problems are found, then refuses:
    a district needs the district engine, not a single-feeder run."""


def parse_feeder(spec: str, *, households: int) -> FeederSpec:
    """Read a feeder's name (or file path) without building the feeder yet.

    Parameters
    ----------
    spec : str
        ``"ieee33"``, ``"radial:<households>"`` (``"radial"`` alone uses ``households``),
        ``"simbench:<code>"`` (needs ``pip install "p2pgrid[simbench]"``), a path to a JSON
        feeder file, or a path to a directory (or its ``buses.csv``) holding the CSV pair
        ``buses.csv`` + ``lines.csv`` (format in :mod:`grid.feeder_files`).
    households : int
        Size of the community; used by ``radial`` and to check that it fits.

    Returns
    -------
    FeederSpec
        Its ``load()`` builds the feeder (reading the file, if it is one).

    Raises
    ------
    FeederError
        Unknown name, a bad ``radial`` size.
    """
    s = str(spec).strip()
    if s == "ieee33":
        return FeederSpec(s, _builder("ieee33"), generated=True)
    if s == "radial" or s.startswith("radial:"):
        arg = s.partition(":")[2] or str(households)
        try:
            n = int(arg)
        except ValueError:
            raise FeederError([f"radial:{arg}: {arg!r} is not a number of households"], s) from None
        check_radial_size(n)
        return FeederSpec(s, _builder("radial", n), generated=True)
    from grid.district_networks import is_district

    if is_district(s):
        return FeederSpec(s, _district_refusal(s, households), district=True)
    if s.startswith("simbench:"):
        return FeederSpec(s, _builder("simbench", s.partition(":")[2]))
    path = Path(s)
    if path.suffix.lower() == ".json" or path.is_dir() or path.suffix.lower() == ".csv":
        return FeederSpec(s, _builder("file", path))
    raise FeederError(
        [
            f"unknown feeder {s!r}: expected 'ieee33', 'radial:<households>', "
            "'simbench:<code>', a .json feeder file or a directory with buses.csv and lines.csv "
            "(or a district: 'district:<lv_feeders>x<households>', 'simbench:1-MVLV-<...>', a "
            "district file)"
        ],
        s,
    )


def _district_refusal(spec: str, households: int) -> Callable[[], Feeder]:
    """Build the district ``spec`` (finding its problems), then refuse it as a feeder."""

    def refuse() -> Feeder:
        from grid.district_networks import load_district

        d = load_district(spec, households=households)
        raise FeederError(
            [
                f"{spec} is a district ({d.n_feeders} LV feeders under an MV grid of "
                f"{d.mv.n_bus} buses), not a feeder: a district needs the district engine "
                "(grid.district_networks.load_district), not a single-feeder run"
            ],
            spec,
        )

    return refuse


def load_feeder(spec: str, *, households: int) -> Feeder:
    """Load a feeder by name or file: :func:`parse_feeder` then its ``load()``.

    Raises
    ------
    FeederError
        Unknown name, malformed file (every problem listed with its location).
    """
    return parse_feeder(spec, households=households).load()
