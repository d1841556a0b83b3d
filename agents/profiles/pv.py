"""Rooftop PV generation with pvlib, vectorised over households and time.

Model chain per interval (evaluated at ``ceil(interval / 15 min)`` sub-step midpoints and
averaged, so hourly intervals still see the sun move):

1. solar position, NREL SPA (Reda & Andreas 2004) via
   :func:`pvlib.solarposition.get_solarposition` from the tz-aware timestamps;
2. clear-sky GHI, Ineichen & Perez (2002) via :func:`pvlib.clearsky.ineichen`, Kasten &
   Young (1989) air mass, Linke turbidity from pvlib's monthly climatology
   (:func:`pvlib.clearsky.lookup_linke_turbidity`, read once per run, offline);
3. GHI = clear-sky index (:mod:`agents.profiles.weather`) x clear-sky GHI;
4. GHI -> DNI, DHI with the Erbs et al. (1982) diffuse-fraction correlation
   (:func:`pvlib.irradiance.erbs`);
5. plane-of-array irradiance: beam + Hay & Davies (1980) sky diffuse
   (:func:`pvlib.irradiance.haydavies`) + isotropic ground reflection with albedo
   ``ALBEDO``, broadcasting the ``(T, 1)`` sun against each household's ``(1, N)`` tilt
   and azimuth (:func:`plane_of_array_w_m2`; equal to
   :func:`pvlib.irradiance.get_total_irradiance` with ``model="haydavies"``, but with the
   angle of incidence factorised so the ``(T, N)`` work is multiply-adds); no
   incidence-angle modifier; only daytime instants are computed;
6. cell temperature, Faiman (2008) model (:func:`pvlib.temperature.faiman`, default
   coefficients) with the climatological air temperature of :mod:`agents.profiles.weather` and a
   constant wind speed ``WIND_SPEED_M_S``;
7. DC power, PVWatts (Dobos 2014) :func:`pvlib.pvsystem.pvwatts_dc` with temperature
   coefficient ``GAMMA_PDC_PER_K``;
8. DC system losses ``SYSTEM_LOSSES_PERCENT`` = PVWatts default loss budget (soiling 2 %,
   shading 3 %, mismatch 2 %, wiring 2 %, connections 0.5 %, light-induced degradation
   1.5 %, nameplate 1 %, availability 3 %; combined 14.08 %,
   :func:`pvlib.pvsystem.pvwatts_losses`);
9. AC power, PVWatts inverter (:func:`pvlib.inverter.pvwatts`) with nominal efficiency
   ``INVERTER_ETA_NOM`` and DC rating equal to the array's kWp (DC/AC ratio 1), so AC
   power never exceeds ``0.96 * kWp``.

Energy per interval = mean AC power over the interval [kW] x interval length [h].
With the Berlin cloud climatology of :mod:`agents.profiles.weather` (about 1,000 kWh/m2/yr GHI)
a south-facing 35-degree roof in Berlin yields about 900 kWh/kWp/yr on average over
weather years (standard deviation about 50 kWh/kWp between seeds), in line with typical
German specific yields of roughly 850-1,000 kWh/kWp; under clear sky every day it
yields about 1,550 kWh/kWp.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from agents.profiles.weather import AirTemperature, ambient_temperature_c

__all__ = [
    "ALBEDO",
    "GAMMA_PDC_PER_K",
    "INVERTER_ETA_NOM",
    "WIND_SPEED_M_S",
    "PVModel",
    "plane_of_array_w_m2",
]

#: Ground albedo [-].
ALBEDO: float = 0.2
#: PVWatts DC temperature coefficient [1/K] (crystalline silicon).
GAMMA_PDC_PER_K: float = -0.004
#: Inverter nominal efficiency [-] (PVWatts default).
INVERTER_ETA_NOM: float = 0.96
#: Wind speed for the cell temperature model [m/s].
WIND_SPEED_M_S: float = 1.0

_SUB_STEP_MAX_MINUTES = 15


@cache
def _system_losses_percent() -> float:
    import pvlib  # pvlib (and the SciPy its package imports) only when PV is computed

    return float(pvlib.pvsystem.pvwatts_losses())


def __getattr__(name: str) -> Any:
    """``SYSTEM_LOSSES_PERCENT``: DC system losses [%], the PVWatts default loss budget
    (:func:`pvlib.pvsystem.pvwatts_losses`), computed on first use so that importing this
    module does not import pvlib."""
    if name == "SYSTEM_LOSSES_PERCENT":
        return _system_losses_percent()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class PVModel:
    """AC energy of every household's rooftop PV, window by window.

    Parameters
    ----------
    latitude, longitude : float
        Site [deg north, deg east].
    altitude_m : float
        Site altitude [m].
    interval_minutes : int
        Interval length [min].
    pv_kwp : numpy.ndarray
        ``(N,)`` STC peak power [kWp]; households with 0 get 0 generation.
    tilt_deg : numpy.ndarray
        ``(N,)`` tilt from horizontal [deg].
    azimuth_deg : numpy.ndarray
        ``(N,)`` azimuth [deg], 180 = south (pvlib convention).
    air : AirTemperature, optional
        The community's air temperature (default: the site's climatology).
    """

    def __init__(
        self,
        latitude: float,
        longitude: float,
        altitude_m: float,
        interval_minutes: int,
        pv_kwp: np.ndarray,
        tilt_deg: np.ndarray,
        azimuth_deg: np.ndarray,
        air: AirTemperature | None = None,
    ) -> None:
        import pvlib

        self.air = air
        self.latitude = float(latitude)
        self.longitude = float(longitude)
        self.altitude_m = float(altitude_m)
        self.interval_minutes = int(interval_minutes)
        kwp = np.asarray(pv_kwp, dtype=np.float64)
        self.n_households = kwp.shape[0]
        self._cols = np.flatnonzero(kwp > 0)
        self._kwp = kwp[self._cols][np.newaxis, :]
        self._tilt = np.asarray(tilt_deg, dtype=np.float64)[self._cols][np.newaxis, :]
        self._azimuth = np.asarray(azimuth_deg, dtype=np.float64)[self._cols][np.newaxis, :]
        self._pressure_pa = float(pvlib.atmosphere.alt2pres(self.altitude_m))
        n_sub = math.ceil(self.interval_minutes / _SUB_STEP_MAX_MINUTES)
        self._n_sub = n_sub
        self._sub_offsets = pd.to_timedelta(
            (np.arange(n_sub) + 0.5) * (self.interval_minutes * 60.0 / n_sub), unit="s"
        )
        if self._cols.size:
            # Linke turbidity for each day of a leap year, looked up once (offline file).
            days = pd.date_range("2020-01-01 12:00", periods=366, freq="D", tz="UTC")
            self._linke_by_doy = pvlib.clearsky.lookup_linke_turbidity(
                days, self.latitude, self.longitude
            ).to_numpy(dtype=np.float64)

    def energy_kwh(self, times: pd.DatetimeIndex, clear_sky_index: np.ndarray) -> np.ndarray:
        """AC energy per interval for all households.

        Parameters
        ----------
        times : pandas.DatetimeIndex
            ``(T,)`` tz-aware interval starts.
        clear_sky_index : numpy.ndarray
            ``(T,)`` clear-sky index of each interval [-].

        Returns
        -------
        numpy.ndarray
            ``(T, N)`` AC energy [kWh]; 0 for households without PV and when the sun is
            below the horizon; at most ``kWp * interval hours``.
        """
        n_t = len(times)
        out = np.zeros((n_t, self.n_households))
        if self._cols.size == 0:
            return out
        n_sub = self._n_sub
        utc = times.tz_convert("UTC").tz_localize(None).to_numpy()
        sub_utc = (utc[:, np.newaxis] + self._sub_offsets.to_numpy()[np.newaxis, :]).reshape(-1)
        sub_times = pd.DatetimeIndex(sub_utc).tz_localize("UTC").tz_convert(times.tz)
        k = np.repeat(np.asarray(clear_sky_index, dtype=np.float64), n_sub)
        ac_kw = self.ac_power_kw(sub_times, k)
        mean_kw = ac_kw.reshape(n_t, n_sub, -1).mean(axis=1)
        hours = self.interval_minutes / 60.0
        out[:, self._cols] = np.minimum(mean_kw * hours, self._kwp * hours)
        return out

    def ac_power_kw(self, times: pd.DatetimeIndex, clear_sky_index: np.ndarray) -> np.ndarray:
        """AC power of the PV households at instants ``times``.

        Parameters
        ----------
        times : pandas.DatetimeIndex
            ``(S,)`` tz-aware instants.
        clear_sky_index : numpy.ndarray
            ``(S,)`` clear-sky index [-].

        Returns
        -------
        numpy.ndarray
            ``(S, N_pv)`` AC power [kW] of the households with ``pv_kwp > 0``; exactly 0
            while the sun is below the horizon (apparent zenith >= 90 deg).
        """
        import pvlib

        out = np.zeros((len(times), self._cols.size))
        solpos = pvlib.solarposition.get_solarposition(
            times, self.latitude, self.longitude, altitude=self.altitude_m
        )
        apparent_zenith = solpos["apparent_zenith"].to_numpy(dtype=np.float64)
        up = apparent_zenith < 90.0
        if not np.any(up):
            return out
        times = times[up]
        apparent_zenith = apparent_zenith[up]
        zenith = solpos["zenith"].to_numpy(dtype=np.float64)[up]
        sun_azimuth = solpos["azimuth"].to_numpy(dtype=np.float64)[up]
        doy = np.asarray(times.dayofyear, dtype=np.int64)
        dni_extra = np.asarray(pvlib.irradiance.get_extra_radiation(doy), dtype=np.float64)
        am_rel = pvlib.atmosphere.get_relative_airmass(apparent_zenith)
        am_abs = pvlib.atmosphere.get_absolute_airmass(am_rel, self._pressure_pa)
        clear = pvlib.clearsky.ineichen(
            apparent_zenith,
            am_abs,
            self._linke_by_doy[doy - 1],
            altitude=self.altitude_m,
            dni_extra=dni_extra,
        )
        ghi = np.nan_to_num(np.asarray(clear["ghi"], dtype=np.float64), nan=0.0)
        ghi = ghi * np.asarray(clear_sky_index, dtype=np.float64)[up]
        split = pvlib.irradiance.erbs(ghi, zenith, doy)
        poa = plane_of_array_w_m2(
            zenith,
            sun_azimuth,
            np.asarray(split["dni"], dtype=np.float64),
            ghi,
            np.asarray(split["dhi"], dtype=np.float64),
            dni_extra,
            self._tilt[0],
            self._azimuth[0],
        )
        temp_air = (
            self.air.at(times)
            if self.air is not None
            else ambient_temperature_c(times, self.longitude, self.latitude)
        )[:, np.newaxis]
        temp_cell = pvlib.temperature.faiman(poa, temp_air, WIND_SPEED_M_S)
        dc_kw = pvlib.pvsystem.pvwatts_dc(poa, temp_cell, self._kwp, GAMMA_PDC_PER_K)
        dc_kw = dc_kw * (1.0 - _system_losses_percent() / 100.0)
        out[up] = pvlib.inverter.pvwatts(dc_kw, self._kwp, eta_inv_nom=INVERTER_ETA_NOM)
        return out


def plane_of_array_w_m2(
    solar_zenith: np.ndarray,
    solar_azimuth: np.ndarray,
    dni: np.ndarray,
    ghi: np.ndarray,
    dhi: np.ndarray,
    dni_extra: np.ndarray,
    tilt_deg: np.ndarray,
    azimuth_deg: np.ndarray,
    albedo: float = ALBEDO,
) -> np.ndarray:
    """Plane-of-array global irradiance for every (instant, orientation) pair.

    Beam + Hay & Davies (1980) sky diffuse + isotropic ground reflection, the same sum
    as :func:`pvlib.irradiance.get_total_irradiance` with ``model="haydavies"``. The
    cosine of the angle of incidence is factorised as
    ``cos z cos b + sin z sin b (cos A cos a + sin A sin a)`` so that trigonometry runs
    on the ``(S,)`` sun and the ``(N,)`` orientations only and the ``(S, N)`` work is
    multiply-adds.

    Parameters
    ----------
    solar_zenith, solar_azimuth : numpy.ndarray
        ``(S,)`` true solar zenith and azimuth [deg].
    dni, ghi, dhi : numpy.ndarray
        ``(S,)`` direct normal, global and diffuse horizontal irradiance [W/m2].
    dni_extra : numpy.ndarray
        ``(S,)`` extraterrestrial normal irradiance [W/m2].
    tilt_deg, azimuth_deg : numpy.ndarray
        ``(N,)`` surface tilt and azimuth [deg] (180 = south).
    albedo : float, optional
        Ground albedo [-].

    Returns
    -------
    numpy.ndarray
        ``(S, N)`` plane-of-array global irradiance [W/m2], >= 0.
    """
    import pvlib

    tilt_deg = np.asarray(tilt_deg, dtype=np.float64)[np.newaxis, :]
    azimuth_deg = np.asarray(azimuth_deg, dtype=np.float64)[np.newaxis, :]
    zen = np.radians(solar_zenith)
    sun_az = np.radians(solar_azimuth)
    tilt = np.radians(tilt_deg)
    surf_az = np.radians(azimuth_deg)
    cos_zen = np.cos(zen)[:, np.newaxis]
    sin_zen = np.sin(zen)
    cos_aoi = (
        cos_zen * np.cos(tilt)
        + (sin_zen * np.cos(sun_az))[:, np.newaxis] * (np.sin(tilt) * np.cos(surf_az))
        + (sin_zen * np.sin(sun_az))[:, np.newaxis] * (np.sin(tilt) * np.sin(surf_az))
    )
    cos_aoi = np.clip(cos_aoi, 0.0, 1.0)  # pvlib: projection clipped, beam >= 0
    beam = dni[:, np.newaxis] * cos_aoi
    ratio = cos_aoi / np.maximum(cos_zen, 0.01745)  # pvlib GH 432
    sky = pvlib.irradiance.haydavies(
        tilt_deg,
        azimuth_deg,
        dhi[:, np.newaxis],
        dni[:, np.newaxis],
        dni_extra[:, np.newaxis],
        projection_ratio=ratio,
    )
    ground = pvlib.irradiance.get_ground_diffuse(tilt_deg, ghi[:, np.newaxis], albedo)
    return np.maximum(beam + sky + ground, 0.0)
