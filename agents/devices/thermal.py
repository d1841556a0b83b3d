"""Thermal physics of a heated house: heat-pump COP, heating curve, a 1R1C building.

**COP** (When2Heat; Ruhnau, Hirth & Praktiknjo 2019, "Time series of heat demand and
heat pump efficiency for energy system modeling", Scientific Data 6:189, and its code,
``input/cop/cop_parameters.csv`` and ``scripts/cop.py`` of github.com/oruhnau/when2heat):
a quadratic regression on manufacturer data of the temperature lift ``ΔT = sink − source``
(clipped below at 15 K), times the paper's correction factor 0.85 for real operation::

    COP = 0.85 · (a + b·ΔT + c·ΔT²)
    air:    a = 6.0801, b = −0.0941, c = 0.0005
    ground: a = 10.288, b = −0.2084, c = 0.0012

Source temperature: the outdoor air (air source); for ground source the soil
temperature minus 5 K (When2Heat's brine loss), with the soil at a constant
:data:`SOIL_TEMP_C` (an assumption: When2Heat reads soil temperature from reanalysis).
Sink (supply) temperature by When2Heat's heating curves: radiators ``40 − T_out``, floor
heating ``30 − 0.5·T_out`` [°C].

**Building** (1R1C): one thermal capacity ``C`` [kWh/K] behind one heat-loss
coefficient ``H`` [kW/K] to the outdoor air, with constant heat input ``Q`` (heating
plus internal gains) over an interval of ``Δt`` hours. Exactly integrated::

    T_end = T_eq + (T_0 − T_eq)·a,   T_eq = T_out + Q / H,   a = exp(−Δt · H / C)

and, inverted, the heat that ends the interval at ``T_end`` (:func:`heat_to_reach_kw`).
"""

from __future__ import annotations

import numpy as np

#: When2Heat COP regression coefficients (a, b, c) by heat source.
COP_COEFFICIENTS: dict[str, tuple[float, float, float]] = {
    "air": (6.0801, -0.0941, 0.0005),
    "ground": (10.288, -0.2084, 0.0012),
}
#: When2Heat's correction of the regression to real operation [-].
COP_CORRECTION: float = 0.85
#: Smallest temperature lift the regression is used at [K] (When2Heat clips below).
MIN_LIFT_K: float = 15.0
#: Soil temperature of a ground-source heat pump's collector [°C] (assumption).
SOIL_TEMP_C: float = 10.0
#: Brine below the soil temperature (When2Heat) [K].
GROUND_BRINE_DROP_K: float = 5.0
#: Heating curves (offset [°C], slope [-]): sink = offset + slope · T_out.
HEATING_CURVES: dict[str, tuple[float, float]] = {"radiator": (40.0, -1.0), "floor": (30.0, -0.5)}


def cop(lift_k: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Corrected COP at temperature lift ``lift_k`` [K] with regression coefficients."""
    d = np.maximum(lift_k, MIN_LIFT_K)
    return COP_CORRECTION * (a + b * d + c * d * d)


def sink_temp_c(t_out_c: float | np.ndarray, offset_c: np.ndarray, slope: np.ndarray) -> np.ndarray:
    """Supply temperature by the heating curve [°C]."""
    return offset_c + slope * t_out_c


def source_temp_c(t_out_c: float | np.ndarray, ground: np.ndarray) -> np.ndarray:
    """Heat source temperature [°C]: outdoor air, or the brine of a ground collector."""
    return np.where(ground, SOIL_TEMP_C - GROUND_BRINE_DROP_K, t_out_c)


def heat_pump_cop(
    t_out_c: float | np.ndarray,
    ground: np.ndarray,
    sink_offset_c: np.ndarray,
    sink_slope: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray,
) -> np.ndarray:
    """A heat pump's COP at outdoor temperature ``t_out_c`` [°C]: the regression at the
    lift from its source to its heating curve's supply temperature (arrays broadcast:
    a column of temperatures against a row of heat pumps gives interval × heat pump)."""
    sink = sink_temp_c(t_out_c, sink_offset_c, sink_slope)
    return cop(sink - source_temp_c(t_out_c, ground), a, b, c)


def heat_delivered_kwh(el_kwh: np.ndarray, hp_max_kwh: np.ndarray, cop: np.ndarray) -> np.ndarray:
    """Heat [kWh] from electric energy ``el_kwh``: the heat pump first, up to its
    ``hp_max_kwh``, at ``cop``; the rest by the resistive backup (COP 1)."""
    hp_el = np.clip(el_kwh, 0.0, hp_max_kwh)
    return hp_el * cop + np.maximum(el_kwh - hp_el, 0.0)


def decay(h_kw_k: np.ndarray, c_kwh_k: np.ndarray, interval_hours: float) -> np.ndarray:
    """``exp(−Δt·H/C)``: the share of the indoor-outdoor difference an interval keeps
    (1 where there is no building, ``C = 0``)."""
    safe_c = np.where(c_kwh_k > 0, c_kwh_k, 1.0)
    return np.where(c_kwh_k > 0, np.exp(-interval_hours * h_kw_k / safe_c), 1.0)


def end_temp_c(
    t0_c: np.ndarray, t_out_c: float, q_kw: np.ndarray, h_kw_k: np.ndarray, a: np.ndarray
) -> np.ndarray:
    """Indoor temperature at the end of an interval of constant heat input ``q_kw``."""
    safe_h = np.where(h_kw_k > 0, h_kw_k, 1.0)
    t_eq = t_out_c + q_kw / safe_h
    return np.where(h_kw_k > 0, t_eq + (t0_c - t_eq) * a, t0_c)


def heat_to_reach_kw(
    t0_c: np.ndarray, t_end_c: np.ndarray, t_out_c: float, h_kw_k: np.ndarray, a: np.ndarray
) -> np.ndarray:
    """Constant total heat input [kW] that takes the house from ``t0_c`` to ``t_end_c``
    in one interval (negative when its gains alone would take it above ``t_end_c``)."""
    one_minus = np.where(a < 1.0, 1.0 - a, 1.0)
    q = h_kw_k * (t_end_c - t_out_c - (t0_c - t_out_c) * a) / one_minus
    return np.where(a < 1.0, q, 0.0)
