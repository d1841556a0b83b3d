"""Dashboard speed: a week of 15-min intervals of 1,000 households in Debian's chromium.

Prints
- loading the run directory, time to first render of the page (all charts and the
  household table drawn) and interactions (sorting the table, selecting an interval);
- pushed-update latency: from the market publishing ``market/result`` on a real Mosquitto
  (1,000 settlements per interval alongside) to the browser receiving the event, and
  from a replay source producing an event to the browser receiving it. Target < 200 ms.

Run: ``python bench/bench_dashboard.py [--run DIR]``. Without ``--run`` the run is
simulated once (1,000 households, 7 days, IEEE 33-bus feeder) into a cache directory.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import sync_playwright

from live.dashboard import MqttSource, RunSource, read_run, start_dashboard
from scenarios import load_scenario, run

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CACHE = Path(tempfile.gettempdir()) / "p2pgrid-bench-dashboard-1000x7"
SCENARIO = {
    "name": "bench-1000x7",
    "simulation": {"start": "2026-06-15", "days": 7, "seed": 1},
    "community": {"households": 1000, "profiles": "synthetic"},
    "grid": {"feeder": "ieee33", "check": "pyomo"},
}


def pct(values: list[float]) -> str:
    a = np.asarray(values) * 1000
    return (
        f"n={len(a)}  p50={np.percentile(a, 50):.1f}  p90={np.percentile(a, 90):.1f}  "
        f"p99={np.percentile(a, 99):.1f}  max={a.max():.1f} ms"
    )


def wait_js(page: Any, expr: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expr):
        if time.monotonic() > deadline:
            raise TimeoutError(expr)
        time.sleep(0.005)


def ensure_run(path: Path | None) -> Path:
    if path is not None:
        return path
    if not (CACHE / "manifest.json").exists():
        print(
            f"simulating {SCENARIO['community']['households']} households × 7 days "
            f"into {CACHE} (once) …"
        )
        began = time.perf_counter()
        run(load_scenario(SCENARIO), CACHE)
        print(f"  {time.perf_counter() - began:.0f} s")
    return CACHE


def bench_page(browser: Any, run_dir: Path) -> None:
    began = time.perf_counter()
    data = read_run(run_dir)
    print(
        f"run: {data.n_households} households × {data.n_intervals} intervals, "
        f"{len(data.trades):,} trades; read_run {time.perf_counter() - began:.2f} s"
    )
    server = start_dashboard(RunSource(data), port=0)
    try:
        renders, sorts, selects, searches = [], [], [], []
        for _ in range(3):
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = ctx.new_page()
            t0 = time.perf_counter()
            page.goto(server.url)
            wait_js(
                page,
                "!!(window.__p2p && window.__p2p.ready) && __p2p.hh.length === "
                f"{data.n_households} && document.querySelectorAll("
                "'#hh-table tbody tr').length > 0",
            )
            renders.append(time.perf_counter() - t0)
            for col in ("bill", "savings", "net_kwh"):
                sorts.append(
                    page.evaluate(f"""() => {{ const t0 = performance.now();
                    document.querySelector('#hh-table th[data-col={col}]').click();
                    return (performance.now() - t0) / 1000; }}""")
                )
            searches.append(
                page.evaluate("""() => { const t0 = performance.now();
                const s = document.getElementById('hh-search'); s.value = 'h05';
                s.dispatchEvent(new Event('input')); s.value = '';
                s.dispatchEvent(new Event('input'));
                return (performance.now() - t0) / 1000; }""")
            )
            for t in (100, 350, 600):
                t0 = time.perf_counter()
                page.evaluate(f"""() => {{ const s = document.getElementById('t-slider');
                    s.value = '{t}'; s.dispatchEvent(new Event('input')); }}""")
                wait_js(
                    page,
                    f"document.getElementById('chart-book').dataset.t === '{t}' && "
                    f"document.getElementById('chart-voltage').dataset.t === '{t}'"
                    f" && __p2p.hhT === {t}",
                )
                selects.append(time.perf_counter() - t0)
            ctx.close()
        print(f"time to first render (page, charts, 1,000-row table): {pct(renders)}")
        print(f"sort the household table (click → rendered):          {pct(sorts)}")
        print(f"search the household table (type → rendered):         {pct(searches)}")
        print(f"select an interval (book, feeder, KPIs, households):  {pct(selects)}")
    finally:
        server.stop()


def bench_replay_latency(browser: Any, run_dir: Path) -> None:
    data = read_run(run_dir)
    server = start_dashboard(RunSource(data, replay_speed=20), port=0)
    try:
        page = browser.new_page()
        page.goto(server.url)
        wait_js(page, "!!(window.__p2p && window.__p2p.ready)")
        page.evaluate("__p2p.latencies.length = 0")
        wait_js(page, "__p2p.latencies.length >= 150", 60)
        time.sleep(0.3)
        lat = page.evaluate("__p2p.latencies")
        got = page.evaluate("[__p2p.receipts, __p2p.drawn]")
        print(f"replay, 1,000 households, 20 intervals/s — source event → browser: {pct(lat)}")
        print(
            f"  … → drawn on the charts:                              "
            f"{pct(drawn_after(got, [r[1] / 1000 - x for r, x in zip(got[0], lat, strict=False)]))}"
        )
        page.close()
    finally:
        server.stop()


def drawn_after(got: list[Any], produced: list[float]) -> list[float]:
    """Seconds from ``produced`` to the first chart redraw at or after each receipt."""
    receipts, drawn = got
    drawn = np.asarray(drawn, float) / 1000
    out = []
    for (_t, ms), start in zip(receipts, produced, strict=False):
        i = np.searchsorted(drawn, ms / 1000 - 1e-3)
        if i < len(drawn):
            out.append(drawn[i] - start)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_mqtt_latency(browser: Any, households: int = 1000, intervals: int = 30) -> None:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        print("MQTT latency: skipped (apt-get install mosquitto)")
        return
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "m.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n", encoding="utf-8")
        broker = subprocess.Popen(
            [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(0.3)
        server = start_dashboard(MqttSource(f"mqtt://127.0.0.1:{port}", "bench"), port=0)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-market")
        pub.max_queued_messages_set(0)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        try:
            page = browser.new_page()
            page.goto(server.url)
            wait_js(
                page,
                "!!(window.__p2p && window.__p2p.ready) && "
                "document.getElementById('status').dataset.state === 'connected'",
            )
            agents = [f"h{i:04d}" for i in range(households)]
            sent: dict[int, float] = {}
            for t in range(intervals):
                trades = [
                    {
                        "buyer_id": agents[i],
                        "seller_id": agents[-1 - i],
                        "energy_kwh": 0.1,
                        "price_per_kwh": 0.2,
                    }
                    for i in range(200)
                ]
                payload = json.dumps(
                    {
                        "v": 1,
                        "t": t,
                        "price_per_kwh": 0.2,
                        "volume_kwh": 20.0,
                        "trades": trades,
                        "grid": {"v_min_pu": 0.97, "v_max_pu": 1.01, "violations": 0},
                    }
                )
                sent[t] = time.time()
                pub.publish("p2pgrid/bench/market/result", payload, qos=1)
                for a in agents:
                    pub.publish(
                        f"p2pgrid/bench/agents/{a}/settlement",
                        json.dumps({"v": 1, "t": t, "cost": 0.05, "grid_import_kwh": 0.1}),
                        qos=1,
                    )
                time.sleep(max(0.0, sent[t] + 1.0 - time.time()))
            wait_js(page, f"__p2p.latestT === {intervals - 1}", 30)
            receipts = page.evaluate("__p2p.receipts")
            first: dict[int, float] = {}
            for t, ms in receipts:
                first.setdefault(t, ms / 1000)
            lat = [first[t] - sent[t] for t in sent if t in first]
            print(
                f"live MQTT (Mosquitto), {households:,} settlements + 200 trades per "
                f"interval, 1 interval/s — market publish → browser: {pct(lat)}"
            )
            drawn = page.evaluate("__p2p.drawn")
            firsts = [[t, first[t] * 1000] for t in sent if t in first]
            print(
                f"  … → drawn on the charts:                              "
                f"{pct(drawn_after([firsts, drawn], [sent[t] for t in sent if t in first]))}"
            )
            page.close()
        finally:
            pub.loop_stop()
            pub.disconnect()
            server.stop()
            broker.terminate()
            broker.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a results directory (default: simulate)")
    args = parser.parse_args()
    run_dir = ensure_run(args.run)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        bench_page(browser, run_dir)
        bench_replay_latency(browser, run_dir)
        bench_mqtt_latency(browser)
        browser.close()
    print("target: updates in the browser < 200 ms after the market publishes them")


if __name__ == "__main__":
    main()
