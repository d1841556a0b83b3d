"""A district run's report.html (issue 18): the KPIs of kpis.json per level, the feeder
table (checked by hand on the two-feeder case of test_district.py), envelopes that keep
the extremes, streamed files only, and a real browser opening it without errors."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from grid.district_networks import load_district
from scenarios import load_scenario
from scenarios.engine.district import run_district
from scenarios.engine.district_feeder import apply_district, feeder_dir, run_feeder
from scenarios.engine.district_kpis import level_kpis
from scenarios.engine.district_market import clear_levels
from scenarios.engine.district_mv import check_mv
from scenarios.engine.grid_stage import scenario_limits
from scenarios.kpis.format import format_kpi
from scenarios.reports.district_figures import Buckets
from scenarios.reports.district_report import LEVEL_CARDS, write_district_report
from scenarios.results.files import write_json, write_table

CHROMIUM = "/usr/bin/chromium"
COMMON = {
    "simulation": {"start": "2026-06-19", "days": 1, "seed": 3},
    "grid": {"feeder": "district:2x3", "check": "pyomo"},
    "market": {"levels": ["feeder", "district"], "district_grid_fee_per_kwh": 0.02},
}


def _cells(page: str, feeder: str) -> list[str]:
    """The feeder table's cells of row ``feeder``."""
    row = re.search(rf"<tr><td>{feeder}</td>(.*?)</tr>", page)
    assert row is not None, feeder
    return re.findall(r"<td>(.*?)</td>", row.group(1))


@pytest.fixture(scope="module")
def hand_case(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object, object]:
    """test_district.py's hand-checked district: lv1's households all with 10 kWp PV,
    lv2's none, truthful bids (0.29) and asks (0.08); its district files and kpis.json
    as run_district writes them."""
    out = tmp_path_factory.mktemp("hand")
    sunny = load_scenario({**COMMON, "community": {
        "households": 6, "profiles": "synthetic", "strategy": "truthful", "pv_share": 1.0,
        "pv_kwp": [10.0, 10.0], "battery_share": 0.0, "ev_share": 0.0}})  # fmt: skip
    dark = load_scenario({**COMMON, "community": {
        "households": 6, "profiles": "synthetic", "strategy": "truthful", "pv_share": 0.0,
        "battery_share": 0.0, "ev_share": 0.0}})  # fmt: skip
    parts = [run_feeder(sunny, 0, out), run_feeder(dark, 1, out)]
    district = load_district("district:2x3")
    slack_p = np.stack([p.slack_p_kw for p in parts], axis=1)
    slack_q = np.stack([p.slack_q_kvar for p in parts], axis=1)
    mv = check_mv(district, slack_p, slack_q, scenario_limits(sunny))
    level = clear_levels(parts, mv, 96, 0.02)
    for p, f, pr in zip(parts, level.filled_kwh, level.price_per_kwh, strict=True):
        apply_district(p.feeder_id, f, pr, 0.02, out)
    (out / "district").mkdir()
    iv = level.intervals
    iv.insert(
        1, "timestamp", pd.read_parquet(feeder_dir(out, "lv1") / "intervals.parquet").timestamp
    )
    write_table(iv, out / "district" / "intervals.parquet")
    write_table(level.trades, out / "district" / "trades.parquet")
    flows = pd.DataFrame({"t": np.repeat(np.arange(96, dtype=np.int32), 2),
                          "feeder": pd.Categorical(np.tile(["lv1", "lv2"], 96)),
                          "p_kw": slack_p.reshape(-1), "q_kvar": slack_q.reshape(-1)})  # fmt: skip
    write_table(flows, out / "district" / "transformers.parquet")
    kpis = level_kpis(out, district.feeder_ids, sunny, True)
    write_json(kpis, out / "kpis.json")
    return out, sunny, district


def test_report_holds_the_hand_checked_numbers(hand_case: tuple) -> None:
    out, scenario, district = hand_case
    kpis = json.loads((out / "kpis.json").read_text())
    iv = pd.read_parquet(out / "district" / "intervals.parquet")
    # by hand (test_district.py): every bid 0.29, every ask 0.08, so all of the smaller
    # side trades, at (0.29 + 0.08) / 2 = 0.185, and the buyers pay 0.02 per kWh on top
    both = (iv.offered_buy_kwh > 0) & (iv.offered_sell_kwh > 0)
    by_hand = float(np.minimum(iv.offered_buy_kwh, iv.offered_sell_kwh)[both].sum())
    assert by_hand > 1.0
    assert kpis["district_kwh"] == pytest.approx(by_hand, abs=1e-9)
    assert kpis["district_mean_price_per_kwh"] == pytest.approx(0.185, abs=1e-12)
    assert kpis["district_grid_fee_cost"] == pytest.approx(0.02 * by_hand, abs=1e-9)
    # nothing left lv2's curve for the district but bids, nothing lv1's but asks (at noon)
    page = write_district_report(out, scenario, district).read_text(encoding="utf-8")
    assert "0.1850 EUR/kWh" in page
    assert format_kpi("district_kwh", by_hand, "EUR") in page
    assert format_kpi("district_grid_fee_cost", 0.02 * by_hand, "EUR") in page
    # feeder table: lv1 sold all of it to the district, lv2 bought all of it
    lv1, lv2 = _cells(page, "lv1"), _cells(page, "lv2")
    shown = format_kpi("district_kwh", by_hand, "EUR")
    assert lv1[0] == "3" and lv2[0] == "3"
    assert lv1[2] == shown and lv1[3] == "0.0 kWh"
    assert lv2[2] == "0.0 kWh" and lv2[3] == shown
    # lv2 has no PV: its own market leaves it 0 % self-sufficient; lv1's is its kpis.json's
    assert lv2[1] == "0.0 %"
    own = json.loads((feeder_dir(out, "lv1") / "kpis.json").read_text())["self_sufficiency"]
    assert lv1[1] == format_kpi("self_sufficiency", own, "EUR") and own > 0.3
    # transformer peak loading: lv1's transformer's highest loading in its lines.parquet
    lines = pd.read_parquet(feeder_dir(out, "lv1") / "lines.parquet")
    trafo = district.feeders[0].lines.query("kind == 'trafo'").line.iloc[0]
    peak = lines[lines.line == trafo].loading_frac.max()
    assert lv1[4] == format_kpi("transformer_peak_loading_frac", peak, "EUR") and peak > 0.05


def test_report_reads_no_agents_nor_buses_file(hand_case: tuple, tmp_path: Path) -> None:
    """The same page with every feeder's agents.parquet and buses.parquet gone."""
    import shutil

    out, scenario, district = hand_case
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    for f in [*copy.glob("feeder=*/agents.parquet"), *copy.glob("feeder=*/buses.parquet")]:
        f.unlink()
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    pages = [
        uuid.sub("id", write_district_report(d, scenario, district).read_text(encoding="utf-8"))
        for d in (copy, out)
    ]
    assert pages[0] == pages[1]


def test_buckets_keep_the_extremes() -> None:
    """Ten intervals in buckets of 4: a lowest and highest per bucket, never a mean (the
    one interval at 0.93 p.u. shows), and sums of energy."""
    b = Buckets(np.arange(10) // 4, 4, np.arange(3))
    v = np.array([1.0, 0.99, 0.93, 1.0, 1.01, 1.02, np.nan, 1.0, 1.04, 1.0])
    t = np.arange(10)
    np.testing.assert_array_equal(b.reduce(t, v, "min"), [0.93, 1.0, 1.0])
    np.testing.assert_array_equal(b.reduce(t, v, "max"), [1.0, 1.02, 1.04])
    np.testing.assert_allclose(b.reduce(t, np.ones(10), "sum"), [4.0, 4.0, 2.0])
    empty = b.reduce(np.array([0]), np.array([np.nan]), "max")
    assert np.isnan(empty).all()


@pytest.fixture(scope="module")
def district_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("district-report")
    scenario = load_scenario({**COMMON, "community": {
        "households": 6, "profiles": "synthetic", "pv_share": 0.5, "battery_share": 0.3,
        "ev_share": 0.3}})  # fmt: skip
    return run_district(scenario, out)


def test_run_district_writes_the_report_with_every_kpi(district_run) -> None:
    result = district_run
    assert result.report_path == result.out_dir / "report.html"
    page = result.report_path.read_text(encoding="utf-8")
    for _, cards in LEVEL_CARDS:
        for key, label in cards:
            assert (
                f'{format_kpi(key, result.kpis.get(key), "EUR")}</div><div class="l">{label}'
                in page
            )
    assert page.count("<tr><td>lv") == 2
    assert "<script src=" not in page  # plotly.js embedded: the page loads nothing


@pytest.mark.filterwarnings("ignore::DeprecationWarning:playwright")
def test_a_browser_opens_the_report_without_errors(district_run) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-gpu"])  # fmt: skip
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            fetched: list[str] = []
            context.route("**/*", lambda r: (fetched.append(r.request.url), r.continue_()))
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(district_run.report_path.as_uri())
            page.wait_for_function("document.querySelectorAll('.main-svg').length >= 5")
            plots = page.evaluate("document.querySelectorAll('.js-plotly-plot').length")
        finally:
            browser.close()
    assert errors == []
    assert plots == 5  # energy per level, price, voltage band, loading, transformers
    assert all(u.startswith("file://") for u in fetched), fetched
