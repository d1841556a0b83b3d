"""The page in Debian's chromium (Playwright, headless): replay of a finished run, a live
MQTT market on a real Mosquitto, sorting, offline loading and a screenshot."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from live.dashboard import MqttSource, RunSource, read_run, start_dashboard
from scenarios import read_results

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:playwright")


def screenshot(page: Any, path: Path, record_property: Any) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    record_property("screenshot", str(path))
    print(f"screenshot: {path}")


def offline_and_clean(p: Any) -> None:
    assert p.requests, "the page made no request at all"
    assert not p.blocked, f"requests outside 127.0.0.1: {p.blocked}"
    bad = [m for m in p.console if m.startswith(("pageerror", "error")) and "api/events" not in m]
    assert not bad, bad


class GatedReplay(RunSource):
    """A replay that begins when the test opens ``gate``, not when the server starts: on a
    loaded machine the page took up to 11 s to be ready, longer than the whole replay."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()

    def start(self) -> None:
        def begin() -> None:
            if self.gate.wait(60):
                RunSource.start(self)

        threading.Thread(target=begin, daemon=True).start()


def test_replay_pushes_every_interval(
    run_dir: Path, page: Any, tmp_path: Path, record_property: Any, wait_js: Any
) -> None:
    files = read_results(run_dir)
    n = len(files["intervals"])
    source = GatedReplay(read_run(run_dir), replay_speed=20)
    server = start_dashboard(source, port=0)
    try:
        pg = page.page
        began = time.perf_counter()
        pg.goto(server.url)
        wait_js(pg, "!!(window.__p2p && window.__p2p.ready)")
        print(f"page ready after {time.perf_counter() - began:.2f} s")
        source.gate.set()
        wait_js(pg, "__p2p.latestT >= 3")
        # a dropped connection catches up with what it missed (since = last seen event)
        pg.evaluate("__p2p.es.close()")
        missed_from = pg.evaluate("__p2p.latestT")
        time.sleep(0.4)
        pg.evaluate("connect(__p2p.lastSeq)")
        # at least N updates pushed over SSE and drawn while the replay runs
        wait_js(pg, "__p2p.updates >= 20")
        # the supply/demand chart follows the current interval
        wait_js(
            pg,
            "document.getElementById('chart-book').dataset.t === String(__p2p.latestT)"
            " && __p2p.latestT > 0",
        )
        wait_js(pg, "document.getElementById('status').dataset.state === 'finished'", 20)
        wait_js(
            pg,
            f"__p2p.latestT === {n - 1} && "
            f"document.getElementById('chart-book').dataset.t === '{n - 1}'",
        )
        assert missed_from < n - 1
        ts = pg.evaluate("__p2p.rows.map(r => r.t)")
        assert ts == list(range(n)), "rows missing after the reconnect"
        updates = pg.evaluate("__p2p.updates")
        assert updates >= 20

        # the replayed charts and KPIs show the files' numbers
        drawn = pg.evaluate("""() => { const d = document.getElementById('chart-price').data;
            return {price: d[0].y, volume: d[1].y}; }""")
        iv = files["intervals"]
        assert len(drawn["price"]) == n
        for got, want in zip(drawn["price"], iv["clearing_price_per_kwh"], strict=True):
            assert (got is None and math.isnan(want)) or math.isclose(got, want, rel_tol=1e-12)
        for got, want in zip(drawn["volume"], iv["p2p_kwh"], strict=True):
            assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-15)
        kpis = files["kpis"]
        for key in ("self_sufficiency", "p2p_share", "p2p_kwh", "community_savings"):
            shown = pg.get_attribute(f"#kpi-{key}", "data-value")
            assert math.isclose(float(shown), kpis[key], rel_tol=1e-12), key
        assert pg.inner_text("#kpi-p2p_share .v") == f"{100 * kpis['p2p_share']:.1f} %"

        # the household table sorts and searches
        wait_js(
            pg,
            f"__p2p.hhT === {n - 1} && "
            "document.querySelectorAll('#hh-table tbody tr').length === 16",
        )
        headers = pg.eval_on_selector_all("#hh-table th", "ths => ths.map(th => th.dataset.col)")
        col = headers.index("bill")
        # the static columns of households.parquet are shown (bus, devices, V2G)
        for c in ("bus", "pv_kwp", "battery_kwh_capacity", "ev_kwh_capacity", "ev_v2g"):
            assert c in headers, headers
        assert "heat_pump_kw" not in headers  # no heat pump in this run

        def bills() -> list[float]:
            return [
                float(v)
                for v in pg.eval_on_selector_all(
                    f"#hh-table tbody tr td:nth-child({col + 1})",
                    "tds => tds.map(td => td.dataset.value)",
                )
            ]

        pg.click("#hh-table th[data-col=bill]")
        assert (
            bills() == sorted(bills())
            and pg.get_attribute("#hh-table th[data-col=bill]", "data-sort") == "asc"
        )
        pg.click("#hh-table th[data-col=bill]")
        assert bills() == sorted(bills(), reverse=True)
        agents = files["agents"]
        want = sorted(agents.groupby("agent_id", observed=True)["cost"].sum(), reverse=True)
        assert all(math.isclose(a, b, rel_tol=1e-9) for a, b in zip(bills(), want, strict=True))
        pg.fill("#hh-search", "h0007")
        assert pg.eval_on_selector_all(
            "#hh-table tbody tr td:first-child", "tds => tds.map(td => td.textContent)"
        ) == ["h0007"]
        pg.fill("#hh-search", "")
        screenshot(pg, tmp_path / "dashboard-replay.png", record_property)
        offline_and_clean(page)
    finally:
        server.stop()


def test_browse_selects_an_interval(run_dir: Path, page: Any, wait_js: Any) -> None:
    run = read_run(run_dir)
    server = start_dashboard(RunSource(run), port=0)
    try:
        pg = page.page
        pg.goto(server.url)
        wait_js(pg, "!!(window.__p2p && window.__p2p.ready)")
        assert pg.get_attribute("#status", "data-state") == "browsing"
        t = int(run.intervals["p2p_kwh"].idxmax())
        pg.evaluate(f"""() => {{ const s = document.getElementById('t-slider');
            s.value = '{t}'; s.dispatchEvent(new Event('input')); }}""")
        wait_js(
            pg,
            f"document.getElementById('chart-book').dataset.t === '{t}' && "
            f"document.getElementById('chart-voltage').dataset.t === '{t}' && "
            # the KPIs come by their own request: wait for those of intervals 0..t
            f"document.getElementById('kpi-intervals')?.dataset.value === '{t + 1}'",
        )
        shown = float(pg.get_attribute("#kpi-p2p_kwh", "data-value"))
        assert math.isclose(shown, run.intervals["p2p_kwh"].iloc[: t + 1].sum(), rel_tol=1e-12)
        volts = pg.evaluate("document.getElementById('chart-voltage').data[1].y")
        assert volts == pytest.approx(list(run.feeder.v_pu[t]), rel=1e-12)
        offline_and_clean(page)
    finally:
        server.stop()


# ---------------------------------------------------------------- live over MQTT
COMMUNITY = "dashtest"
AGENTS = ("a1", "a2", "a3", "a4")


def _publisher(url_port: int) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-market-{time.time_ns()}")
    client.connect("127.0.0.1", url_port)
    client.loop_start()
    return client


def _publish_interval(client: mqtt.Client, t: int) -> None:
    root = f"p2pgrid/{COMMUNITY}/"
    start = f"2026-06-15T{t // 4:02d}:{15 * (t % 4):02d}:00+02:00"
    client.publish(
        root + "clock",
        json.dumps(
            {
                "v": 1,
                "t": t,
                "interval_start": start,
                "interval_minutes": 15,
                "gate_closes_at": start,
            }
        ),
        qos=1,
        retain=True,
    )
    price = 0.1 + 0.01 * (t % 5)
    result = {
        "v": 1,
        "t": t,
        "price_per_kwh": price,
        "volume_kwh": 1.5,
        "book": {
            "buy": [[1.0, 0.3], [0.5, 0.2], [0.4, 0.05]],
            "sell": [
                {"energy_kwh": 1.0, "price_per_kwh": 0.09},
                {"energy_kwh": 0.5, "price_per_kwh": price},
            ],
        },
        "grid": {
            "v_min_pu": 0.97,
            "v_max_pu": 1.02,
            "violations": 0,
            "buses": [
                {"bus": "mv", "v_pu": 1.0},
                {"bus": "b1", "v_pu": 0.99},
                {"bus": "b2", "v_pu": 0.98},
            ],
            "lines": [
                {"line": "l1", "from_bus": "mv", "to_bus": "b1", "loading_frac": 0.4},
                {"line": "l2", "from_bus": "b1", "to_bus": "b2", "loading_frac": 0.2},
            ],
        },
    }
    book = {  # the operator's view: the trades with household ids
        "v": 1,
        "t": t,
        "trades": [
            {"buyer": "a1", "seller": "a3", "energy_kwh": 1.0, "price_per_kwh": price},
            {"buyer": "a2", "seller": "a4", "energy_kwh": 0.5, "price_per_kwh": price},
        ],
    }
    client.publish(root + "market/book", json.dumps(book), qos=1)
    client.publish(root + "market/result", json.dumps(result), qos=1)
    for i, agent in enumerate(AGENTS):
        client.publish(
            root + f"agents/{agent}/settlement",
            json.dumps(
                {
                    "v": 1,
                    "t": t,
                    "bought_kwh": 1.0 if i == 0 else 0.0,
                    "grid_import_kwh": 0.1 * i,
                    "cost": 0.1 * (i + 1),
                }
            ),
            qos=1,
        )


def test_live_mqtt_market(
    mosquitto: Any, page: Any, tmp_path: Path, record_property: Any, wait_js: Any
) -> None:
    source = MqttSource(
        mosquitto.url,
        COMMUNITY,
        market={
            "currency": "EUR",
            "retail_price_per_kwh": 0.32,
            "feed_in_price_per_kwh": 0.08,
            "v_min_pu": 0.95,
            "v_max_pu": 1.05,
        },
    )
    server = start_dashboard(source, port=0)
    pub = _publisher(mosquitto.port)
    try:
        pg = page.page
        pg.goto(server.url)
        wait_js(pg, "!!(window.__p2p && window.__p2p.ready)")
        wait_js(pg, "document.getElementById('status').dataset.state === 'connected'")
        n = 12
        for t in range(n):
            _publish_interval(pub, t)
            time.sleep(0.05)
        wait_js(pg, f"__p2p.latestT === {n - 1} && __p2p.updates >= {n}")
        wait_js(pg, f"document.getElementById('chart-book').dataset.t === '{n - 1}'")
        wait_js(pg, f"document.getElementById('chart-voltage').dataset.t === '{n - 1}'")
        prices = pg.evaluate("document.getElementById('chart-price').data[0].y")
        assert prices[-1] == pytest.approx(0.1 + 0.01 * ((n - 1) % 5))
        # the settlements revise the households table: 4 households, sortable by bill
        # (the table is refreshed at most once a second while the market runs)
        wait_js(
            pg,
            f"__p2p.hhT === {n - 1} && __p2p.hh.length === 4 && "
            f"__p2p.hh.every(h => h.cost !== null)",
            10,
        )
        pg.click("#hh-table th[data-col=bill]")
        pg.click("#hh-table th[data-col=bill]")
        wait_js(pg, "document.querySelector('#hh-table tbody td').textContent === 'a4'")
        col = pg.eval_on_selector_all("#hh-table th", "ths => ths.map(th => th.dataset.col)").index(
            "bill"
        )
        bill = float(
            pg.eval_on_selector(
                f"#hh-table tbody tr td:nth-child({col + 1})", "td => td.dataset.value"
            )
        )
        assert bill == pytest.approx(0.4 * n)
        screenshot(pg, tmp_path / "dashboard-live.png", record_property)

        # the broker goes down: the page says so, and recovers when it is back
        pub.loop_stop()
        pub.disconnect()
        mosquitto.stop()
        wait_js(pg, "document.getElementById('status').dataset.state === 'disconnected'", 20)
        assert "unreachable" in pg.inner_text("#banner")
        assert pg.is_visible("#banner")
        mosquitto.start()
        wait_js(pg, "document.getElementById('status').dataset.state === 'connected'", 20)
        assert not pg.is_visible("#banner")
        pub = _publisher(mosquitto.port)
        _publish_interval(pub, n)
        wait_js(pg, f"__p2p.latestT === {n}")
        offline_and_clean(page)
    finally:
        pub.loop_stop()
        pub.disconnect()
        server.stop()
