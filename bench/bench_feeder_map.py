"""Feeder map speed: the layout once per feeder, and one interval's restyle arrays (what
the dashboard computes for every pushed interval) on the feeders a scenario can name.

Prints, per feeder: buses and lines, the layout's source (geodata or tree) and its time
(pandapower's generic coordinates, or the SimBench geodata; the feeder's own loading not
counted), and the mean time of one interval's colours, sizes and hover texts
(:func:`scenarios.reports.feeder_map.map_style`) and of its JSON, with its size. Target:
well under the 200 ms budget of a pushed interval (bench/bench_dashboard.py).

Run: ``python bench/bench_feeder_map.py [--repeat 50]``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from grid import load_feeder
from grid.layout import feeder_layout
from scenarios.reports.feeder_map import map_base, map_style, restyle_arrays

FEEDERS = ("ieee33", "radial:60", "radial:300", "simbench:1-LV-urban6--0-sw")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    opts = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'feeder':30} {'buses':>6} {'lines':>6} {'layout':>8} {'[s]':>7} "
          f"{'style [ms]':>11} {'json [kB]':>10}")  # fmt: skip
    for spec in FEEDERS:
        try:
            feeder = load_feeder(spec, households=int(spec.split(":")[1]) if "radial" in spec
                                 else 40)  # fmt: skip
        except Exception as exc:  # simbench not installed
            print(f"{spec:30} skipped: {exc}")
            continue
        began = time.perf_counter()
        layout = feeder_layout(feeder)
        layout_s = time.perf_counter() - began
        hh = {f"h{i:04d}": b for i, b in enumerate(np.resize(feeder.buses["bus"], 200))}
        base = map_base(layout, hh, (0.95, 1.05))
        n_b, n_l = feeder.n_bus, feeder.n_line
        began = time.perf_counter()
        for _ in range(opts.repeat):
            style = map_style(
                base,
                rng.uniform(0.93, 1.07, n_b),
                rng.normal(0, 5, n_b),
                np.full(n_b, np.nan),
                rng.uniform(0, 1.2, n_l),
                rng.normal(0, 50, n_l),
            )
            payload = json.dumps(restyle_arrays(base, style))
        style_ms = 1000 * (time.perf_counter() - began) / opts.repeat
        print(f"{spec:30} {n_b:6d} {n_l:6d} {layout.source:>8} {layout_s:7.2f} "
              f"{style_ms:11.2f} {len(payload) / 1000:10.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
