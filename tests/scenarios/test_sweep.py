"""Sweeps on a local Dask cluster: same results as alone, failures, resuming, outputs."""

import json
import re
from pathlib import Path

import pandas as pd
import plotly
import pytest
from distributed import Client
from typer.testing import CliRunner

from p2pgrid.cli import app
from scenarios import run
from scenarios.studies.sweep import KPI_TABLE, SWEEP_REPORT, VARIANTS_DIR, open_kpis, run_sweep
from scenarios.studies.sweep_file import load_sweep
from scenarios.studies.sweep_worker import DONE_FILE, ERROR_FILE, SCENARIO_FILE

TABLES = ("intervals", "agents", "trades", "buses", "lines", "households")

SWEEP = {
    "name": "tiny-sweep",
    "base": {
        "simulation": {"start": "2026-06-18", "days": 1, "seed": 3},
        "community": {"households": 10, "battery_share": 0.4, "ev_share": 0.3},
        "grid": {"feeder": "radial:10", "check": "pyomo"},
    },
    "parameters": {
        "community.pv_share": [0.3, 0.8, 1.5],  # 1.5 is not a valid share: fails up front
        "grid.feeder": ["radial:10", "no-such-feeder"],  # fails in the worker, at run time
    },
}


@pytest.fixture(scope="module")
def swept(client: Client, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("sweep")
    spec = load_sweep(SWEEP)
    seen: list[tuple[str, str]] = []
    result = run_sweep(
        spec,
        out,
        client=client,
        progress=lambda done, total, vid, status: seen.append((vid, status)),
    )
    return {"spec": spec, "out": out, "result": result, "progress": seen}


def test_good_variants_finish_and_bad_ones_are_reported(swept: dict) -> None:
    result, table = swept["result"], swept["result"].table
    assert list(table["variant"]) == [f"v{i:04d}" for i in range(6)]
    ok = table[table["status"] == "ok"]
    assert list(ok["variant"]) == ["v0000", "v0002"]
    assert set(result.failed) == {"v0001", "v0003", "v0004", "v0005"}
    assert "community.pv_share" in result.failed["v0004"]  # validated up front
    assert "grid.feeder" in result.failed["v0001"]  # raised in the worker
    assert "no-such-feeder" in (swept["out"] / VARIANTS_DIR / "v0001" / ERROR_FILE).read_text()
    assert table.loc[table["status"] == "failed", "error"].notna().all()
    assert ok["self_sufficiency"].notna().all() and ok["wall_time_s"].gt(0).all()
    assert result.ran == 2 and result.reused == 0
    assert sorted(v for v, _ in swept["progress"]) == list(table["variant"])


def test_each_variant_matches_its_run_alone(swept: dict, tmp_path: Path) -> None:
    out: Path = swept["out"]
    for variant in swept["spec"].variants():
        if variant.id not in ("v0000", "v0002"):
            continue
        alone = tmp_path / variant.id
        run(variant.scenario, alone)
        swept_dir = out / VARIANTS_DIR / variant.id
        for name in TABLES:
            pd.testing.assert_frame_equal(
                pd.read_parquet(swept_dir / f"{name}.parquet"),
                pd.read_parquet(alone / f"{name}.parquet"),
                check_exact=True,
            )
        assert json.loads((swept_dir / "kpis.json").read_text()) == json.loads(
            (alone / "kpis.json").read_text()
        )
        in_sweep = json.loads((swept_dir / "manifest.json").read_text())
        by_itself = json.loads((alone / "manifest.json").read_text())
        for manifest in (in_sweep, by_itself):
            manifest.pop("wall_time_s")
        assert in_sweep == by_itself
        # the variant's scenario file reproduces it from the command line
        cli_dir = tmp_path / f"{variant.id}-cli"
        res = CliRunner().invoke(
            app, ["run", str(swept_dir / SCENARIO_FILE), "--out", str(cli_dir), "-q"]
        )
        assert res.exit_code == 0, res.output
        pd.testing.assert_frame_equal(
            pd.read_parquet(swept_dir / "agents.parquet"),
            pd.read_parquet(cli_dir / "agents.parquet"),
        )


def test_variants_differ_by_their_parameters(swept: dict) -> None:
    table = swept["result"].table.set_index("variant")
    assert table.loc["v0002", "generation_kwh"] > table.loc["v0000", "generation_kwh"]
    # common random numbers: same seed and the same demand in both
    assert table.loc["v0000", "seed"] == table.loc["v0002", "seed"] == 3
    assert table.loc["v0000", "demand_kwh"] == table.loc["v0002", "demand_kwh"]


def test_rerun_skips_finished_variants_and_redoes_unfinished(swept: dict, client: Client) -> None:
    out: Path = swept["out"]
    marker = out / VARIANTS_DIR / "v0000" / DONE_FILE
    stamp = marker.stat().st_mtime_ns
    again = run_sweep(swept["spec"], out, client=client)
    assert again.ran == 0 and again.reused == 2
    assert marker.stat().st_mtime_ns == stamp
    assert set(again.failed) == set(swept["result"].failed)  # failures are retried
    run_info = ["reused", "wall_time_s", "peak_rss_mb", "worker"]  # failures ran again
    pd.testing.assert_frame_equal(
        again.table.drop(columns=run_info), swept["result"].table.drop(columns=run_info)
    )
    ok = again.table["status"] == "ok"
    assert again.table.loc[ok, "wall_time_s"].tolist() == (
        swept["result"].table.loc[ok, "wall_time_s"].tolist()
    )  # read from done.json
    assert again.table["reused"].sum() == 2

    # a variant cut off before its marker was written runs again, from scratch
    (out / VARIANTS_DIR / "v0002" / DONE_FILE).unlink()
    (out / VARIANTS_DIR / "v0002" / "leftover.tmp").write_text("partial")
    third = run_sweep(swept["spec"], out, client=client)
    assert third.ran == 1 and third.reused == 1
    assert not (out / VARIANTS_DIR / "v0002" / "leftover.tmp").exists()
    assert (out / VARIANTS_DIR / "v0002" / DONE_FILE).is_file()


def test_kpi_table_opens_in_duckdb(swept: dict) -> None:
    con = open_kpis(swept["out"])
    rows = con.sql(
        'SELECT "community.pv_share" AS pv, "grid.feeder" AS feeder, self_sufficiency '
        "FROM kpis WHERE status = 'ok' ORDER BY pv"
    ).fetchall()
    assert [(r[0], r[1]) for r in rows] == [(0.3, "radial:10"), (0.8, "radial:10")]
    assert rows[1][2] > rows[0][2]
    on_disk = pd.read_parquet(swept["out"] / KPI_TABLE)
    assert len(on_disk) == 6
    assert {
        "variant",
        "status",
        "error",
        "seed",
        "community.pv_share",
        "grid.feeder",
        "community_savings",
        "violation_hours",
        "peak_rss_mb",
    } <= set(on_disk.columns)
    assert on_disk["community_savings"].dtype == "float64"


def test_report_is_offline_and_has_the_comparisons(swept: dict) -> None:
    page = (swept["out"] / SWEEP_REPORT).read_text(encoding="utf-8")
    # plotly.js is embedded once, from the installed package; nothing is fetched
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)
    assert page.count(plotly.offline.get_plotlyjs()[:200]) == 1
    for title in (
        "Community savings",
        "Self-sufficiency",
        "Violation hours",
        "PV curtailed",
        "P2P clearing price",
    ):
        assert title in page, title
    assert "Failed variants (4)" in page and "no-such-feeder" in page


def test_cli_sweep_on_an_existing_scheduler(client: Client, tmp_path: Path) -> None:
    file = tmp_path / "s.yaml"
    file.write_text(
        "name: cli-sweep\n"
        "base: {simulation: {days: 1, start: '2026-06-18'}, community: {households: 6},"
        " grid: {feeder: 'radial:6'}}\n"
        "parameters:\n  community.pv_share: [0.2, 0.6]\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    address = client.scheduler.address
    args = ["sweep", str(file), "--out", str(out), "--scheduler", address, "-q"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "ran 2, reused 0, failed 0" in first.output
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0 and "ran 0, reused 2, failed 0" in second.output


def test_cli_exits_1_when_a_variant_failed(client: Client, tmp_path: Path) -> None:
    file = tmp_path / "s.toml"
    file.write_text(
        '[set]\n"simulation.days" = 1\n"community.households" = 4\n'
        '"grid.feeder" = "radial:4"\n[parameters]\n"community.pv_share" = [0.5, 2.0]\n',
        encoding="utf-8",
    )
    res = CliRunner().invoke(
        app,
        [
            "sweep",
            str(file),
            "--out",
            str(tmp_path / "o"),
            "--scheduler",
            client.scheduler.address,
            "-q",
        ],
    )
    assert res.exit_code == 1
    assert "failed v0001" in res.output and "Traceback" not in res.output
    assert (tmp_path / "o" / KPI_TABLE).is_file()


def test_local_cluster_does_not_need_port_8787() -> None:
    # Dask's HTTP server defaults to 8787 and warns (an error under pytest's filters)
    # when another cluster or program holds it
    import socket

    from scenarios.studies.dask_cluster import local_cluster_client

    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8787))
        holder.listen()
    except OSError:
        pass  # taken already: the case to survive
    try:
        c = local_cluster_client(1)
        try:
            assert c.submit(sum, [1, 2, 3]).result() == 6
            assert ":8787/" not in (c.dashboard_link or "")
        finally:
            cluster = c.cluster
            c.close()
            cluster.close()
    finally:
        holder.close()


README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_sweep_snippet_runs_as_a_script(tmp_path: Path) -> None:
    import subprocess
    import sys

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    snippet = next(b for b in blocks if "run_sweep(" in b)
    (tmp_path / "sweep.toml").write_text(
        f'name = "readme"\nbase = "{Path(__file__).resolve().parents[2]}/scenarios/library/'
        'demo.toml"\n[set]\n"simulation.days" = 1\n"community.households" = 6\n'
        '"grid.feeder" = "radial:6"\n[parameters]\n"community.pv_share" = [0.2, 0.8]\n',
        encoding="utf-8",
    )
    (tmp_path / "snippet.py").write_text(snippet, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "snippet.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    kpis = pd.read_parquet(tmp_path / "results" / "sweep" / KPI_TABLE)
    assert sorted(kpis["community.pv_share"]) == [0.2, 0.8]
    assert (kpis["status"] == "ok").all()
    assert "community.pv_share" in proc.stdout  # the DuckDB query's frame, printed
