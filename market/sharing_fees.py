"""Grid fees and levies on shared energy, by jurisdiction (``[market.sharing] jurisdiction``).

A shared kWh still travels over the public grid: the member it is allocated to pays the
grid fee and the levies on it, on top of the internal price, as a buyer pays them on a
P2P trade (:mod:`market.settlement`). The residual supply is bought at the supplier's
retail price, which includes the full grid fee and levies; feed-in is paid for what is
not shared. Per shared kWh (``g`` = ``market.grid_fee_per_kwh``, the energy component of
the grid fee; ``l`` = ``[market.sharing] levies_per_kwh``, the per-kWh levies and taxes a
supplied kWh carries):

``de_42c``  Germany, energy sharing under §42c EnWG (from 1 June 2026 within one DSO's
            area): no reduction, ``fee = g``, ``levies = l`` (electricity tax and the
            levies apply to shared energy as to supplied energy).
``at_eeg``  Austria, a renewable energy community (Erneuerbare-Energie-Gemeinschaft, EAG
            and ElWOG §16c): ``fee = g · (1 − r)`` with the reduction of the energy
            component of the grid usage charge for energy shared within the community,
            ``r = 0.57`` for a *local* community (members connected within grid levels 6
            and 7, the low-voltage grid) and ``r = 0.28`` for a *regional* one (grid
            levels 4 and 5, up to the medium-voltage busbar of the substation)
            (:data:`AT_EEG_REDUCTION`); ``levies = 0`` when ``at_levies_exempt`` (the
            renewable funding contribution, Erneuerbaren-Förderbeitrag, is not charged on
            energy shared within an EEG, and for PV electricity the electricity levy,
            Elektrizitätsabgabe, neither), else ``l``.
``fr_acc``  France, collective self-consumption (*autoconsommation collective*, Code de
            l'énergie L315-2): ``fee = fr_autoproduced_fee_per_kwh`` (the energy
            component of the TURPE on self-produced flows under the CRE's optional
            low-voltage ACC tariff; default ``g``, the standard TURPE without the option),
            ``levies = l`` (the excise, *accise sur l'électricité*, applies).

Sources. The grid levels of a local and a regional Austrian EEG: the federal
coordination office, energiegemeinschaften.gv.at ("Erneuerbare-Energie-Gemeinschaften");
the exemption from the Erneuerbaren-Förderbeitrag and, for PV, the Elektrizitätsabgabe:
e.g. tb-eder.com/energiegemeinschaften ("Für innerhalb einer EEG gehandelten Strom
entfällt der Erneuerbaren-Förderbeitrag …, für Strom aus Photovoltaik außerdem die
Elektrizitätsabgabe"); "up to 60 % of the grid costs" saved: energie-bau.at. The French
optional TURPE component for ACC, which distinguishes self-produced from other flows:
Assemblée nationale, amendment 3347/AN/320 (2020), exposé sommaire. **Not found** in the
sources searched: the text of the Austrian ordinance (Systemnutzungsentgelte-Verordnung,
as amended in 2021) with the 57 % / 28 % figures — they are the values E-Control
publishes for local / regional EEGs, taken here as the defaults, to be checked against
the ordinance in force; and the CRE's current figures of the ACC component (hence a
scenario key, not a built-in number).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AT_EEG_REDUCTION", "JURISDICTIONS", "SharedCharges", "shared_charges"]

JURISDICTIONS = ("de_42c", "at_eeg", "fr_acc")

AT_EEG_REDUCTION = {"local": 0.57, "regional": 0.28}
"""Reduction of the energy component of the grid usage charge on energy shared within an
Austrian renewable energy community, by its area (see the module docstring)."""


@dataclass(frozen=True)
class SharedCharges:
    """What a shared kWh carries besides the internal price [currency/kWh]."""

    grid_fee_per_kwh: float
    levies_per_kwh: float

    @property
    def total_per_kwh(self) -> float:
        return self.grid_fee_per_kwh + self.levies_per_kwh


def shared_charges(
    jurisdiction: str,
    grid_fee_per_kwh: float,
    levies_per_kwh: float,
    *,
    at_area: str = "local",
    at_levies_exempt: bool = True,
    fr_autoproduced_fee_per_kwh: float | None = None,
) -> SharedCharges:
    """The grid fee and levies per shared kWh under ``jurisdiction`` (module docstring).

    Raises
    ------
    ValueError
        An unknown jurisdiction or Austrian area.
    """
    if jurisdiction == "de_42c":
        return SharedCharges(grid_fee_per_kwh, levies_per_kwh)
    if jurisdiction == "at_eeg":
        if at_area not in AT_EEG_REDUCTION:
            raise ValueError(f"at_area {at_area!r} is not one of {', '.join(AT_EEG_REDUCTION)}")
        fee = grid_fee_per_kwh * (1.0 - AT_EEG_REDUCTION[at_area])
        return SharedCharges(fee, 0.0 if at_levies_exempt else levies_per_kwh)
    if jurisdiction == "fr_acc":
        fee = (
            grid_fee_per_kwh if fr_autoproduced_fee_per_kwh is None else fr_autoproduced_fee_per_kwh
        )
        return SharedCharges(fee, levies_per_kwh)
    raise ValueError(f"jurisdiction {jurisdiction!r} is not one of {', '.join(JURISDICTIONS)}")
