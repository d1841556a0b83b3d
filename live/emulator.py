"""Smart-meter emulator (``p2pgrid meters emulate``): native payloads of every registered
format (:mod:`agents.meters.formats`: each format encodes its own) from the same profile
generators the simulator uses.

Each emulated meter measures the grid connection of the household the scenario maps it
to (``[[live.meters]]``), so its interval energies are exactly what the batch engine
uses for that household. On each ``clock`` for interval ``t`` it publishes
``samples_per_interval`` samples spread over ``t`` (simulated timestamps; the last one
at the end of ``t``) with cumulative import and export counters that start at a random
reading, and the power of the interval. ``power_only`` meters publish power alone, so
the market integrates power over time.

A ``clock`` for an interval already served (a market restarted while collecting it, or
asking again after a reconnect) is answered with the same samples again, with the same
timestamps and counter readings: the counters advance once per interval, and the market
ignores the samples it already has. Only the clock of its run drives it
(:mod:`live.runfilter`): never a retained clock an earlier run left on the broker.

On its own clock (``own_clock_s``, as a real meter): from the first ``clock`` it sees,
every meter publishes a sample every ``own_clock_s`` simulated seconds, paced at
``speed`` simulated seconds per wall second, whatever the market's gates do; the
counters are the interval energies accumulated up to the sample's time. ``unstamped``
formats leave out the samples' time (``("shelly",)``: a real Gen2 device's ``em:0`` and
``emdata:0`` carry no ``ts``): the market stamps them on arrival.

With keys (``keys``: ``--keys DIR``, else the folder of the scenario's ``[live] keys``)
each meter signs every sample with its own key, ``DIR/<meter_id>.key``, by wrapping: the
native JSON object with ``"sig"`` added (:mod:`live.signatures`); an OCMF meter signs its
records with its own ECDSA key, ``DIR/<meter_id>.pem`` (:mod:`agents.meters.ocmf`).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

from agents.meters.formats import Sample, meter_format
from live.bus import BrokerConfig, Bus
from live.clock import read_clock
from live.protocol import topics_for
from live.runfilter import RunFilter
from live.signatures import native_signers, signers_for
from scenarios.config.schema import Scenario
from scenarios.config.schema_live import Meter, household_ids
from scenarios.engine.inputs import CommunityInputs

STREAM_METERS = 707
RESEND_INTERVALS = 8
"""How many of the last served intervals can be sent again when the clock repeats."""


def emulated_scenario(scenario: Scenario, fmt: str, count: int) -> Scenario:
    """The scenario with ``count`` meters of ``fmt`` on its first households, unless it
    already maps meters of that format (then those are used)."""
    if any(m.format == fmt for m in scenario.live.meters):
        return scenario
    if meter_format(fmt).verify is not None:
        raise ValueError(
            f"{fmt} meters sign their records with their own keys: declare them in the "
            "scenario's [[live.meters]] with their public_key"
        )
    n = scenario.community.households
    if count > n:
        raise ValueError(f"--count {count} is above the community's {n} households")
    taken = {m.household for m in scenario.live.meters}
    free = [h for h in household_ids(n) if h not in taken][:count]
    meters = (
        *scenario.live.meters,
        *(Meter(id=f"{fmt}-{h}", format=fmt, household=h) for h in free),
    )
    live = scenario.live.model_copy(update={"meters": meters})
    return scenario.model_copy(update={"live": live})


class MeterEmulator:
    """The scenario's meters of the given formats, publishing on the scenario's clock."""

    def __init__(
        self,
        scenario: Scenario,
        broker: BrokerConfig,
        formats: tuple[str, ...] | None = None,
        samples_per_interval: int = 3,
        power_only: tuple[str, ...] = (),
        run: str | None = None,
        bus: Bus | None = None,
        own_clock_s: float | None = None,
        speed: float = 900.0,
        unstamped: tuple[str, ...] = (),
        keys: Path | None = None,
    ) -> None:
        """``bus``: publish through that (started and stopped by its owner) instead of a
        connection of the emulator's own: the market's, in the market's process.
        ``power_only``: ids of meters that send power alone; ``unstamped``: formats
        whose samples carry no time (the market stamps them on arrival). ``keys``: the
        folder of every meter's private key (each must be there); default: the keys
        found beside the scenario's ``[live] keys``."""
        self.scenario = scenario
        self.topics = topics_for(scenario)
        self.meters = [m for m in scenario.live.meters if formats is None or m.format in formats]
        self.power_only = set(power_only)
        wrapping = [m.id for m in self.meters if meter_format(m.format).sign is None]
        self.signers = signers_for(scenario.live, wrapping, keys)
        """The meters' private keys by meter id (none: samples go unsigned)."""
        self.native = native_signers(self.meters, scenario.live, keys)
        """The keys of the meters that sign natively (OCMF: ``DIR/<meter_id>.pem``)."""
        self.samples = samples_per_interval
        if own_clock_s is not None and (own_clock_s <= 0 or speed <= 0):
            raise ValueError("own_clock_s and speed must be positive")
        self.own_clock_s, self.speed, self.unstamped = own_clock_s, speed, set(unstamped)
        self._anchor: tuple[float, int] | None = None
        """Own clock: (wall time, interval) of the first clock seen."""
        self.inputs = CommunityInputs(scenario)
        sim = scenario.simulation
        self.tz = ZoneInfo(sim.timezone)
        self.interval_s = sim.interval_minutes * 60.0
        ids = [str(a) for a in self.inputs.hh.agent_id]
        self.rows = [ids.index(m.household) for m in self.meters]
        rng = np.random.default_rng([sim.seed, STREAM_METERS])
        self.import_kwh = rng.uniform(1000.0, 5000.0, len(self.meters))
        self.export_kwh = rng.uniform(0.0, 2000.0, len(self.meters))
        self.published = 0
        self.resent = 0
        """Intervals sent again because their clock repeated."""
        self.last_t = -1
        self.first_t = -1
        # counters before each recently served interval: what a repeat is rebuilt from
        self._served: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.done = threading.Event()
        self._lock = threading.Lock()
        self._queue: list[int] = []
        self._wake = threading.Event()
        self._own_bus = bus is None
        self.bus = bus if bus is not None else Bus(broker, "meters", self.topics.root)
        self.runs = RunFilter(run)
        """Only the clock of this run (given, or adopted: :mod:`live.runfilter`)."""
        self.bus.subscribe(self.topics.clock, self._on_clock, retained=True)
        self._thread = threading.Thread(target=self._work, name="meters", daemon=True)

    def start(self, timeout: float = 30.0) -> MeterEmulator:
        self._thread.start()
        if self._own_bus:
            self.bus.start(timeout)
        return self

    def stop(self) -> None:
        self.done.set()
        self._wake.set()
        self._thread.join(10)
        if self._own_bus:
            self.bus.drain(10)
            self.bus.stop()

    def _on_clock(self, topic: str, payload: bytes, retained: bool) -> None:
        clock = read_clock(payload)
        if clock is None or not self.runs.accept(clock, retained):
            return
        if clock.get("done"):
            self.done.set()
        elif isinstance(clock.get("t"), int):
            with self._lock:
                if self.own_clock_s is None:
                    self._queue.append(clock["t"])
                elif self._anchor is None:
                    self._anchor = (time.time(), clock["t"])
        self._wake.set()

    def _work(self) -> None:
        if self.own_clock_s is not None:
            self._own_clock(self.own_clock_s)
            return
        while not self.done.is_set():
            self._wake.wait(0.2)
            self._wake.clear()
            with self._lock:
                todo, self._queue = self._queue, []
            for t in dict.fromkeys(todo):  # a clock repeated meanwhile is answered once
                if 0 <= t < self.scenario.simulation.n_intervals:
                    self.publish_interval(t)

    def _own_clock(self, period_s: float) -> None:
        """Publish every ``period_s`` simulated seconds from the first clock on."""
        while self._anchor is None and not self.done.is_set():
            self._wake.wait(0.2)
        if self._anchor is None:
            return
        wall0, t = self._anchor
        stamps, n = self.inputs.stamps, self.scenario.simulation.n_intervals
        sim0 = stamps[t].timestamp()
        k = 0
        while not self.done.is_set():
            time_s = sim0 + k * period_s
            while t < n and time_s >= stamps[t].timestamp() + self.interval_s:
                imp, exp = self._energy(t)
                self.import_kwh, self.export_kwh = self.import_kwh + imp, self.export_kwh + exp
                t += 1
            if t >= n:
                return
            imp, exp = self._energy(t)
            frac = (time_s - stamps[t].timestamp()) / self.interval_s
            power = (imp - exp) * 3600.0 / self.interval_s
            for i, meter in enumerate(self.meters):
                self._publish(
                    meter,
                    time_s,
                    float(self.import_kwh[i] + frac * imp[i]),
                    float(self.export_kwh[i] + frac * exp[i]),
                    float(power[i]),
                )
            k += 1
            self.done.wait(max(wall0 + k * period_s / self.speed - time.time(), 0.0))

    def _energy(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Every meter's ``(import, export)`` [kWh] in interval ``t``."""
        win = self.inputs.at(t)
        i = t - win.t0
        return win.demand_kwh[i, self.rows], win.generation_kwh[i, self.rows]

    def publish_interval(self, t: int) -> None:
        """Every meter's samples of interval ``t`` (and, in the first interval served, a
        first sample at its start).

        An interval already served is sent again with the same samples (timestamps and
        counter readings) while it is among the last :data:`RESEND_INTERVALS` served;
        the counters do not advance twice. Older ones are ignored.
        """
        if t <= self.last_t:
            base = self._served.get(t)
            if base is not None:
                self.resent += 1
                self._send(t, base[0], base[1], first=t == self.first_t)
            return
        if self.last_t < 0:  # the first interval served also has a sample at its start
            self.first_t = t
        self._served[t] = (self.import_kwh.copy(), self.export_kwh.copy())
        for old in [k for k in self._served if k <= t - RESEND_INTERVALS]:
            del self._served[old]
        self.last_t = t
        self.import_kwh, self.export_kwh = self._send(
            t, self.import_kwh, self.export_kwh, first=t == self.first_t
        )

    def _send(
        self, t: int, import_kwh: np.ndarray, export_kwh: np.ndarray, first: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Publish interval ``t`` from the counters at its start; returns the counters
        at its end."""
        demand, generation = self._energy(t)
        start_s = self.inputs.stamps[t].timestamp()
        end_imp, end_exp = import_kwh.copy(), export_kwh.copy()
        for k, meter in enumerate(self.meters):
            export, imp = float(generation[k]), float(demand[k])
            power_kw = (imp - export) * 3600.0 / self.interval_s
            steps = range(0 if first else 1, self.samples + 1)
            base_imp, base_exp = float(import_kwh[k]), float(export_kwh[k])
            for s in steps:
                frac = s / self.samples
                self._publish(
                    meter,
                    start_s + frac * self.interval_s,
                    base_imp + frac * imp,
                    base_exp + frac * export,
                    power_kw,
                )
            end_imp[k] = base_imp + imp
            end_exp[k] = base_exp + export
        return end_imp, end_exp

    def _publish(
        self, meter: Meter, time_s: float, imp: float, exp: float, power_kw: float
    ) -> None:
        power_only = meter.id in self.power_only
        sample = Sample(
            None if meter.format in self.unstamped else time_s,
            None if power_only else imp,
            None if power_only else exp,
            power_kw,
        )
        fmt = meter_format(meter.format)
        encoded = fmt.encode(sample, self.tz)
        pair = self.signers.get(meter.id)
        if fmt.sign is not None:
            encoded = fmt.sign(encoded, self.native[meter.id])
        elif pair is not None:
            encoded = {k: pair.sign(v) for k, v in encoded.items()}
        out = {self.topics.meter(meter.format, meter.id, k): v for k, v in encoded.items()}
        for name, payload in out.items():
            self.bus.publish(name, payload, qos=1)
            self.published += 1
