"""The feeder map in Debian's chromium (Playwright): report.html, the dashboard browsing,
replaying and watching a live market, and a sweep page; every page offline (no request
leaves its origin) and every figure with data."""

from __future__ import annotations

import functools
import http.server
import itertools
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import paho.mqtt.client as mqtt
import pandas as pd
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from grid import load_feeder
from live.dashboard import MqttSource, RunSource, read_run, start_dashboard
from scenarios import load_scenario, run
from scenarios.reports.feeder_map import VIOLATION_COLOR, grid_stress, loading_colors
from scenarios.reports.sweep import write_sweep
from scenarios.studies.sweep_file import load_sweep

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:playwright")

FEEDERS = {
    # v_min 0.97: the far end of ieee33 sags below it in the evening (a bus to colour)
    "ieee33": {"households": 20, "grid": {"v_min_pu": 0.97}},
    "radial:60": {"households": 60, "grid": {}},
    "simbench:1-LV-rural1--0-sw": {"households": 13, "grid": {}},
}

#: the title of each figure none of whose traces holds a value (y or z, a histogram's x,
#: all null; read from plotly's full data, where base64 arrays are decoded)
BLANK_PLOTS = """() => {
  const points = (v) => (Array.isArray(v) || ArrayBuffer.isView(v)) &&
    Array.from(v).flat().some(x => x !== null && x !== undefined && !Number.isNaN(x));
  return [...document.querySelectorAll('.js-plotly-plot')].filter(gd =>
    !(gd._fullData || []).some(tr => tr.visible !== false &&
      (tr.type === 'histogram' ? ['x'] : ['y', 'z']).some(k => points(tr[k])))).map(gd =>
    (gd.layout.title && gd.layout.title.text) || gd.id); }"""

#: the map's drawn elements: edges (one trace each), and the buses' trace
MAP_COUNTS = """(id) => { const gd = id ? document.getElementById(id) :
  [...document.querySelectorAll('.js-plotly-plot')].find(g => g.data.some(t => t.meta === 'bus'));
  const bus = gd.data.find(t => t.meta === 'bus');
  return {edges: gd.data.filter(t => t.meta === 'edge').length, nodes: bus.x.length,
          colors: bus.marker.color, names: gd.data.filter(t => t.meta === 'edge')
            .map(t => t.name), edge_colors: gd.data.filter(t => t.meta === 'edge')
            .map(t => t.line.color)}; }"""


def _scenario(spec: str) -> dict[str, Any]:
    cfg = FEEDERS[spec]
    return {
        "name": spec.replace(":", "-"),
        "simulation": {"start": "2026-06-15", "days": 2, "seed": 4},
        "community": {
            "households": cfg["households"],
            "pv_share": 0.6,
            "battery_share": 0.3,
            "ev_share": 0.3,
            "profiles": "synthetic",
        },
        "grid": {"feeder": spec, "check": "pyomo", **cfg["grid"]},
    }


@pytest.fixture(scope="module")
def map_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A two-day run on each feeder."""
    pytest.importorskip("simbench")
    out = {}
    for spec in FEEDERS:
        path = tmp_path_factory.mktemp(spec.replace(":", "-"))
        run(load_scenario(_scenario(spec)), path)
        out[spec] = path
    return out


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def serve_dir() -> Iterator[Any]:
    """``serve_dir(path)``: a static HTTP server of ``path`` on 127.0.0.1; its URL."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def serve(path: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(path))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def same_origin_only(page: Any, origin: str) -> None:
    """Every request the page made went to ``origin`` (Playwright's request log)."""
    assert page.requests, "the page made no request at all"
    want = urlsplit(origin).netloc
    away = [
        u
        for u in page.requests
        if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != want
    ]
    assert not away and not page.blocked, f"requests off {origin}: {away or page.blocked}"
    bad = [m for m in page.console if m.startswith(("pageerror", "error"))]
    assert not bad, bad


def screenshot(pg: Any, path: Path, record_property: Any) -> None:
    pg.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 20_000
    record_property("screenshot", str(path))
    print(f"screenshot: {path}")


def no_blank_plots(pg: Any, allowed: tuple[str, ...] = ()) -> int:
    """Assert every plot has data, except those whose title says why (``allowed``
    phrases); returns how many plots the page has."""
    blank = pg.evaluate(BLANK_PLOTS)
    unexplained = [t for t in blank if not any(a in t for a in allowed)]
    assert not unexplained, f"plots without data: {unexplained}"
    return int(pg.evaluate("document.querySelectorAll('.js-plotly-plot').length"))


# ---------------------------------------------------------------- report and browse
@pytest.mark.parametrize("spec", list(FEEDERS))
def test_the_map_draws_every_bus_and_line(
    spec: str,
    map_runs: dict[str, Path],
    page: Any,
    serve_dir: Any,
    wait_js: Any,
    tmp_path: Path,
    record_property: Any,
) -> None:
    """The report's two maps and the dashboard's draw the feeder's buses and lines."""
    out = map_runs[spec]
    feeder = load_feeder(spec, households=FEEDERS[spec]["households"])
    pg = page.page
    origin = serve_dir(out)
    pg.goto(origin + "report.html")
    wait_js(pg, "document.querySelectorAll('.js-plotly-plot').length > 8")
    maps = pg.evaluate(
        """() => [...document.querySelectorAll('.js-plotly-plot')]
             .filter(gd => gd.data.some(t => t.meta === 'bus')).map(gd => ({
               edges: gd.data.filter(t => t.meta === 'edge').length,
               nodes: gd.data.find(t => t.meta === 'bus').x.length,
               frames: (gd._transitionData._frames || []).length}))"""
    )
    assert [(m["edges"], m["nodes"]) for m in maps] == [(feeder.n_line, feeder.n_bus)] * 2
    assert maps[0]["frames"] == 0 and maps[1]["frames"] == 2  # one frame per day
    no_blank_plots(pg, ("Nodal prices where the market was re-cleared with the feeder (none",))
    if spec == "ieee33":
        screenshot(pg, tmp_path / "report.png", record_property)
    same_origin_only(page, origin)

    run_data = read_run(out)
    server = start_dashboard(RunSource(run_data), port=0)
    try:
        page.requests.clear()
        pg.goto(server.url)
        wait_js(pg, "!!(window.__p2p && window.__p2p.ready)")
        t = pg.evaluate("__p2p.meta.opening_t")
        wait_js(pg, f"document.getElementById('chart-map').dataset.t === '{t}'", 60)
        drawn = pg.evaluate(MAP_COUNTS, "chart-map")
        assert (drawn["edges"], drawn["nodes"]) == (feeder.n_line, feeder.n_bus)
        assert drawn["names"] == feeder.lines["line"].astype(str).tolist()
        same_origin_only(page, server.url)
    finally:
        server.stop()


def test_a_bus_under_the_limit_has_the_violation_colour(
    map_runs: dict[str, Path], page: Any, wait_js: Any, serve_dir: Any
) -> None:
    """ieee33 with v_min 0.97: the run opens on its worst grid state, where the buses
    below 0.97 p.u. (and only they) are magenta, in the dashboard and in the report."""
    out = map_runs["ieee33"]
    data = read_run(out)
    iv = data.intervals
    stress = grid_stress(iv["v_min_pu"], iv["v_max_pu"], iv["max_line_loading_frac"], (0.97, 1.05))
    worst = int(np.nanargmax(stress))
    assert (iv["violations_before_reclear"] > 0).any() and iv["v_min_pu"][worst] < 0.97
    v = data.feeder.v_pu[worst]
    under = v < 0.97
    assert 0 < under.sum() < len(v)
    server = start_dashboard(RunSource(data), port=0)
    try:
        pg = page.page
        pg.goto(server.url)
        wait_js(pg, "!!(window.__p2p && window.__p2p.ready)")
        assert pg.evaluate("__p2p.meta.opening_t") == worst  # limits broken: the worst state
        wait_js(pg, f"document.getElementById('chart-map').dataset.t === '{worst}'", 60)
        assert pg.evaluate("document.getElementById('t-slider').value") == str(worst)
        colors = np.array(pg.evaluate(MAP_COUNTS, "chart-map")["colors"])
        np.testing.assert_array_equal(colors == VIOLATION_COLOR, under)
    finally:
        server.stop()
    # the report's first map is the same worst interval
    pg.goto(serve_dir(out) + "report.html")
    wait_js(pg, "document.querySelectorAll('.js-plotly-plot').length > 8")
    drawn = pg.evaluate(MAP_COUNTS, "")
    np.testing.assert_array_equal(np.array(drawn["colors"]) == VIOLATION_COLOR, under)
    assert drawn["edge_colors"] == loading_colors(data.feeder.loading_frac[worst])


def test_a_run_without_broken_limits_opens_on_its_most_trade(
    map_runs: dict[str, Path], page: Any, wait_js: Any
) -> None:
    data = read_run(map_runs["radial:60"])
    assert not (data.intervals["violations_before_reclear"] > 0).any()
    most = int(data.intervals["p2p_kwh"].idxmax())
    assert data.intervals["p2p_kwh"][most] > 0
    server = start_dashboard(RunSource(data), port=0)
    try:
        pg = page.page
        pg.goto(server.url)
        wait_js(pg, "!!(window.__p2p && window.__p2p.ready)")
        wait_js(pg, f"document.getElementById('chart-book').dataset.t === '{most}'")
        # the KPI cards are still the whole run's
        assert pg.get_attribute("#kpi-intervals", "data-value") == str(data.n_intervals)
    finally:
        server.stop()


# ---------------------------------------------------------------- replay
def test_replay_map_follows_the_slider(
    map_runs: dict[str, Path], page: Any, wait_js: Any, tmp_path: Path, record_property: Any
) -> None:
    data = read_run(map_runs["radial:60"])
    server = start_dashboard(RunSource(data, replay_speed=40), port=0)
    try:
        pg = page.page
        pg.goto(server.url)
        wait_js(pg, "!!(window.__p2p && window.__p2p.ready)")
        last = data.n_intervals - 1
        wait_js(pg, "document.getElementById('status').dataset.state === 'finished'", 60)
        wait_js(pg, f"document.getElementById('chart-map').dataset.t === '{last}'")
        # restyled, not redrawn: once for the replay's last interval at least (a slow
        # browser may see the whole replay in one update), and once for the slider
        assert pg.evaluate("__p2p.map.restyles") >= 1
        t = 50
        pg.evaluate(f"""() => {{ const s = document.getElementById('t-slider');
            s.value = '{t}'; s.dispatchEvent(new Event('input')); }}""")
        wait_js(pg, f"document.getElementById('chart-map').dataset.t === '{t}'")
        assert pg.evaluate("__p2p.map.restyles") >= 2
        sizes = pg.evaluate(
            "document.getElementById('chart-map').data.find(t => t.meta === 'bus').marker.size"
        )
        p = np.abs(data.feeder.p_kw[t])
        assert int(np.argmax(sizes)) == int(np.argmax(p))  # the largest injection, largest
        no_blank_plots(pg, ("none at interval",))
        screenshot(pg, tmp_path / "dashboard-replay.png", record_property)
        same_origin_only(page, server.url)
    finally:
        server.stop()


# ---------------------------------------------------------------- live
COMMUNITY = "maptest"
BUSES = ("mv", "lv", "b1", "b2", "b3")
LINES = (("trafo", "mv", "lv"), ("l1", "lv", "b1"), ("l2", "b1", "b2"), ("l3", "lv", "b3"))
AGENTS = {"a1": "b1", "a2": "b2", "a3": "b3"}


def _publish(client: mqtt.Client, t: int, v_b2: float) -> None:
    root = f"p2pgrid/{COMMUNITY}/"
    start = f"2026-06-15T12:{15 * t:02d}:00+02:00"
    clock = {"v": 1, "t": t, "interval_start": start, "interval_minutes": 15,
             "gate_closes_at": start}  # fmt: skip
    client.publish(root + "clock", json.dumps(clock), qos=1, retain=True)
    volts = {"mv": 1.0, "lv": 0.995, "b1": 0.985, "b2": v_b2, "b3": 0.99}
    result = {
        "v": 1,
        "t": t,
        "price_per_kwh": 0.2,
        "volume_kwh": 1.0,
        "grid": {
            "v_min_pu": min(volts.values()),
            "v_max_pu": 1.0,
            "violations": int(v_b2 < 0.95),
            "buses": [{"bus": b, "v_pu": volts[b], "p_kw": -2.0 * (b in AGENTS.values())}
                      for b in BUSES],
            "lines": [{"line": n, "from_bus": a, "to_bus": b, "loading_frac": 0.3 + 0.1 * t,
                       "p_kw": 4.0} for n, a, b in LINES],
        },
    }  # fmt: skip
    for i, agent in enumerate(AGENTS):
        client.publish(
            root + f"agents/{agent}/reading",
            json.dumps({"v": 1, "t": t, "generation_kwh": 0.5 * i, "demand_kwh": 1.0,
                        "soc_kwh": 2.0 + i, "ev_soc_kwh": 10.0}),
            qos=1,
        )  # fmt: skip
        client.publish(
            root + f"agents/{agent}/settlement",
            json.dumps({"v": 1, "t": t, "bought_kwh": 0.5, "sold_kwh": 0.5 * (i == 2),
                        "grid_import_kwh": 0.5, "grid_export_kwh": 0.0, "generation_kwh":
                        0.5 * i, "demand_kwh": 1.0, "battery_kwh": 0.0, "ev_kwh": 0.0,
                        "fees": 0.0, "cost": 0.25}),
            qos=1,
        )  # fmt: skip
    client.publish(root + "market/result", json.dumps(result), qos=1)


def test_live_map_recolours_when_a_new_interval_arrives(
    mosquitto: Any, page: Any, wait_js: Any, tmp_path: Path, record_property: Any
) -> None:
    """Two intervals through the push channel: bus b2 at 0.99, then at 0.93 p.u.; the
    drawn map is restyled (its trace objects stay), b2 turns magenta, the rest do not."""
    households = pd.DataFrame(
        {"agent_id": list(AGENTS), "bus": list(AGENTS.values()), "pv_kwp": [0.0, 4.0, 6.0],
         "battery_kwh": [0.0, 5.0, 10.0], "ev_kwh": [40.0, 0.0, 0.0],
         "ev_v2g": [True, False, False], "hp_power_kw": [0.0, 0.0, 3.0]}
    )  # fmt: skip
    market = {"currency": "EUR", "retail_price_per_kwh": 0.32, "feed_in_price_per_kwh": 0.08,
              "v_min_pu": 0.95, "v_max_pu": 1.05}  # fmt: skip
    source = MqttSource(mosquitto.url, COMMUNITY, market, 15, households)
    server = start_dashboard(source, port=0)
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"map-{time.time_ns()}")
    pub.connect("127.0.0.1", mosquitto.port)
    pub.loop_start()
    try:
        pg = page.page
        pg.goto(server.url)
        wait_js(pg, "document.getElementById('status').dataset.state === 'connected'")
        _publish(pub, 0, 0.99)
        wait_js(pg, "document.getElementById('chart-map').dataset.t === '0'")
        first = pg.evaluate(MAP_COUNTS, "chart-map")
        assert (first["edges"], first["nodes"]) == (len(LINES), len(BUSES))
        assert VIOLATION_COLOR not in first["colors"]
        pg.evaluate("document.getElementById('chart-map').data.forEach(t => t._probe = 1)")
        restyles = pg.evaluate("__p2p.map.restyles")
        _publish(pub, 1, 0.93)
        wait_js(pg, "document.getElementById('chart-map').dataset.t === '1'")
        second = pg.evaluate(MAP_COUNTS, "chart-map")
        b2 = BUSES.index("b2")
        assert second["colors"][b2] == VIOLATION_COLOR != first["colors"][b2]
        assert [c for i, c in enumerate(second["colors"]) if i != b2] == [
            c for i, c in enumerate(first["colors"]) if i != b2
        ]
        # restyled in place: the same trace objects, one more restyle, no second figure
        assert pg.evaluate("document.getElementById('chart-map').data.every(t => t._probe)")
        assert pg.evaluate("__p2p.map.restyles") > restyles
        # the household table: bus, devices and savings so far, as for a run
        wait_js(pg, "__p2p.hhT === 1 && __p2p.hh.length === 3", 10)
        row = pg.evaluate("__p2p.hh.find(h => h.agent_id === 'a3')")
        assert row["bus"] == "b3" and row["pv_kwp"] == 6.0 and row["heat_pump_kw"] == 3.0
        assert row["savings"] is not None and row["net_kwh"] == pytest.approx(0.0)
        cells = pg.eval_on_selector_all(
            "#hh-table tbody tr:first-child td", "tds => tds.map(td => td.textContent)"
        )
        headers = pg.eval_on_selector_all("#hh-table th", "ths => ths.map(th => th.dataset.col)")
        assert "heat_pump_kw" in headers and "—" not in cells, dict(
            zip(headers, cells, strict=True)
        )
        no_blank_plots(pg, ("none at interval",))
        screenshot(pg, tmp_path / "dashboard-live.png", record_property)
        same_origin_only(page, server.url)
    finally:
        pub.loop_stop()
        pub.disconnect()
        server.stop()


# ---------------------------------------------------------------- sweep page
def test_sweep_page_has_data_in_every_plot(
    page: Any, serve_dir: Any, wait_js: Any, tmp_path: Path, record_property: Any
) -> None:
    battery, pv = [0.0, 0.3, 0.6], [0.2, 0.8]
    spec = load_sweep(
        {
            "name": "page",
            "base": {"simulation": {"days": 1}, "community": {"households": 4}},
            "parameters": {"community.battery_share": battery, "community.pv_share": pv},
        }
    )
    rows = []
    for i, (b, p) in enumerate(itertools.product(battery, pv)):
        vid = f"v{i:04d}"
        (tmp_path / "variants" / vid).mkdir(parents=True)
        pd.DataFrame(
            {"clearing_price_per_kwh": [0.1 + b / 10, 0.2, np.nan], "p2p_kwh": [1.0, p, 0.0]}
        ).to_parquet(tmp_path / "variants" / vid / "intervals.parquet")
        rows.append({"variant": vid, "status": "ok", "error": None, "seed": 1,
                     "currency": "EUR", "community.battery_share": b, "community.pv_share": p,
                     "community_savings": 10 * b - 4 * p, "self_sufficiency": 0.1 + b * p,
                     "violation_hours": 0.0, "curtailed_kwh": 2 * b})  # fmt: skip
    write_sweep(tmp_path / "sweep.html", spec, pd.DataFrame(rows), tmp_path / "variants")
    pg = page.page
    origin = serve_dir(tmp_path)
    pg.goto(origin + "sweep.html")
    wait_js(pg, "document.querySelectorAll('.js-plotly-plot').length === 4")
    assert no_blank_plots(pg) == 4
    assert "Violation hours after clearing [h]: 0.00 h in every variant" in pg.inner_text(
        "p.constant"
    )
    screenshot(pg, tmp_path / "sweep.png", record_property)
    same_origin_only(page, origin)
