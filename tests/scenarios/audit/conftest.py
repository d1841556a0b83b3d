"""Ledgers to verify: a batch run's (``run --ledger``), and one written interval by
interval through the writer the live market uses, with signed readings, an estimate
corrected by late meter data, and a market killed mid-line and restarted."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.households.community import Community
from market.reliability import Conduct
from scenarios import load_scenario, read_results, run
from scenarios.audit import merkle
from scenarios.audit.canonical import digest
from scenarios.audit.keys import KeyPair, Registry
from scenarios.audit.leaves import (
    leaf_hex,
    leaves_root,
    order_where,
    rng_to_json,
    settlement_leaves,
)
from scenarios.audit.ledger import (
    CHAIN_FILE,
    CHECKPOINTS_FILE,
    MARKET_KEY_FILE,
    AuditWriter,
    correction_input,
)
from scenarios.audit.rebill import rebill
from scenarios.config.schema_live import household_ids
from scenarios.engine.grid_stage import GridStage
from scenarios.engine.inputs import CommunityInputs, timeline
from scenarios.engine.interval import MarketStep
from scenarios.results.payloads import book_curve, result_payload, settlement_payloads

from ..conftest import feeder_scenario

# 12 households with PV, batteries and EVs on their own LV feeder, two days: two
# checkpoints (one per day), the feeder checked by the Pyomo model.
SMALL = feeder_scenario(
    "2026-06-19", 12, name="audited", days=2, seed=5,
    pv_share=0.6, battery_share=0.5, ev_share=0.5, v2g_share=0.6,
)  # fmt: skip

SIGNED = {
    "name": "signed",
    "simulation": {"start": "2026-06-19", "days": 1, "seed": 7},
    "community": {"households": 6, "pv_share": 0.7, "battery_share": 0.5},
    "market": {"mechanism": "cda"},
    "grid": {"check": "off"},
}
SIGNED_EVERY = 32
ESTIMATED_T, CORRECTED_AT, RESTART_AT = 10, 12, 40
LATE_IMPORT_KWH = 0.25
"""What the late meter adds to the estimated household's import of ``ESTIMATED_T``."""


@pytest.fixture(scope="session")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("audited")
    scenario = load_scenario(SMALL)
    run(scenario, out, ledger=True)
    tables = read_results(out)
    tables["out"] = Path(out)
    tables["scenario"] = scenario
    return tables


def copy_ledger(src: Path, dst: Path) -> Path:
    """A copy of ``src``'s ledger folder at ``dst`` (to tamper with)."""
    shutil.copytree(src, dst)
    return dst


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def entry_line(directory: Path, t: int) -> int:
    """The line number of interval ``t``'s entry in the chain."""
    for i, line in enumerate(lines(directory / CHAIN_FILE)):
        header = orjson.loads(line)["header"]
        if header["kind"] == "interval" and header["t"] == t:
            return i
    raise LookupError(t)


def flip_byte(path: Path, line_no: int, *anchors: bytes) -> None:
    """Change one byte of line ``line_no``: the first digit (or hex digit) of the value
    after the last of ``anchors``, each found after the one before."""
    data = lines(path)
    line = data[line_no]
    at = 0
    for anchor in anchors:
        at = line.index(anchor, at) + len(anchor)
    while chr(line[at]) not in "0123456789abcdef":
        at += 1
    c = chr(line[at])
    new = {"9": "8", "f": "e"}.get(c, chr(line[at] + 1) if c not in "9f" else c)
    data[line_no] = line[:at] + new.encode() + line[at + 1 :]
    path.write_bytes(b"".join(data))


def reforge(directory: Path, mutate: Any, key: KeyPair | None = None) -> None:
    """Rewrite a ledger as a forger holding a market key would: ``mutate(entry)``
    changes entries, then every leaf root, header hash, prev link and checkpoint is
    recomputed and re-signed (with ``key``; default the run's own ``market.key``)."""
    key = key or KeyPair.load(directory / MARKET_KEY_FILE)
    entries = [orjson.loads(line) for line in lines(directory / CHAIN_FILE)]
    prev = None
    for e in entries:
        mutate(e)
        h = e["header"]
        h["prev"] = prev
        if h["kind"] == "genesis":
            h["market_key"] = key.public_b64
        else:
            h["inputs_root"], _ = leaves_root(e["inputs"])
            h["settlements_root"], _ = leaves_root(e["settlements"])
        e["hash"] = prev = digest(h)
    (directory / CHAIN_FILE).write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in entries))
    cps, prev_cp = [], None
    for cp in [orjson.loads(line) for line in lines(directory / CHECKPOINTS_FILE)]:
        span = entries[cp["first_entry"] : cp["last_entry"] + 1]
        leaves = [merkle.leaf_hash(bytes.fromhex(e["hash"])) for e in span]
        body = {k: v for k, v in cp.items() if k != "sig"}
        body |= {"root": merkle.root(leaves).hex(), "prev": prev_cp, "market_key": key.public_b64}
        signed = key.sign(body)
        cps.append(signed)
        prev_cp = digest(signed)
    (directory / CHECKPOINTS_FILE).write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in cps))


def write_signed_ledger(directory: Path, data: dict[str, Any] = SIGNED) -> dict[str, Any]:
    """A market's ledger written through :class:`AuditWriter` as the live market does:
    every household signs its reading (kept in ``private/``), household 0 is settled on
    an estimate in interval ``ESTIMATED_T`` and corrected by late meter data in
    ``CORRECTED_AT``; at ``RESTART_AT`` the process dies mid-line and a new one resumes
    the ledger (``AuditWriter.open``) with a new market step."""
    scenario = load_scenario(data)
    sim = scenario.simulation
    inputs = CommunityInputs(scenario)
    n = inputs.hh.n
    ids = household_ids(n)
    stamps = timeline(scenario)
    community = Community(inputs.hh, sim.interval_hours, None)
    keys = {a: KeyPair.new(a) for a in ids}
    market = KeyPair.new("market")
    writer = AuditWriter(
        directory,
        scenario,
        Registry({a: k.public_b64 for a, k in keys.items()}),
        market,
        run="signed-run",
        every=SIGNED_EVERY,
        fsync=True,
        origin="live",
    )
    scratch = directory.parent / "grid"

    def new_grid() -> GridStage | None:
        """A market process's feeder stage, solved once before its first gate."""
        if scenario.grid.check == "off":
            return None
        stage = GridStage(scenario, n, scratch)
        stage.prepare()
        return stage

    grid = new_grid()
    step = MarketStep(scenario, n, grid)
    win = inputs.window(0, 1)
    held: dict[str, Any] = {}
    bills: dict[int, Any] = {}
    raw_of: dict[int, list[str]] = {}
    for t in range(sim.n_intervals):
        if t == RESTART_AT:  # kill -9 mid-line, then a new process resumes
            with (directory / CHAIN_FILE).open("ab") as fh:
                fh.write(b'{"hash": "0123')
            writer._chain.close()  # the dead process's files (every line was synced)
            writer._cps.close()
            state, window = step.rng.bit_generator.state, step.reliability
            writer = AuditWriter.open(directory, market)
            grid = new_grid()
            step = MarketStep(scenario, n, grid)
            step.rng.bit_generator.state = state
            step.reliability = window  # the live market rebuilds it from its state ledger
        plan = community.plan(*win.observed(t, sim.intervals_per_day))
        signed = {}
        for row, a in enumerate(ids):
            reading = {
                "v": 1,
                "t": t,
                "generation_kwh": float(plan.generation_kwh[row]),
                "demand_kwh": float(plan.demand_kwh[row]),
            }
            signed[a] = [writer.private(orjson.dumps(keys[a].sign(reading)))]
        raw_of[t] = [h for a in ids for h in signed[a]]
        rng = rng_to_json(step.rng.bit_generator.state)
        estimated = {0} if t == ESTIMATED_T else set()
        conduct = Conduct.of(n, estimated)
        if grid is not None:
            bg_p, bg_q = grid.background(stamps[t : t + 1])
            res = step.run(plan, community.outcome, bg_p[0], bg_q[0], t=t, conduct=conduct)
        else:
            res = step.run(plan, community.outcome, t=t, conduct=conduct)
        community.commit(res.flows)
        settlements = settlement_payloads(t, ids, res, order_where(plan), estimated)
        rows = grid.rows(res.outcome) if grid is not None and res.outcome is not None else None
        clearing = result_payload(
            t, stamps[t].isoformat(), res, rows, {"readings": n}, book_curve(plan)
        )
        writer.interval(
            t,
            plan,
            settlements,
            clearing,
            rng,
            signed=signed,
            estimated=[ids[r] for r in estimated],
            where=order_where(plan),
        )
        if t == ESTIMATED_T:
            held = settlements[ids[0]]
        if t == CORRECTED_AT:
            old = settlement_leaves(ESTIMATED_T, [ids[0]], {ids[0]: held})[0]
            imp = held["demand_kwh"] + LATE_IMPORT_KWH
            exp = held["generation_kwh"]
            new = rebill(held, imp, exp, step.fees.tariffs(ESTIMATED_T))
            sample = keys[ids[0]].sign({"v": 1, "t": ESTIMATED_T, "import_kwh": imp})
            writer.correction(
                ESTIMATED_T,
                "late meter data",
                [
                    correction_input(
                        ids[0], ESTIMATED_T, imp, exp, [writer.private(orjson.dumps(sample))]
                    )
                ],
                settlement_leaves(ESTIMATED_T, [ids[0]], {ids[0]: new}),
                [{"agent": ids[0], "version": 1, "leaf": leaf_hex(old)}],
            )
        cp = writer.checkpoint()
        if cp is not None:
            bills[cp["seq"]] = writer.bills(cp)
    writer.close()
    if grid is not None:
        grid.close()
    return {
        "ids": ids,
        "keys": keys,
        "market": market,
        "held": held,
        "raw_of": raw_of,
        "bills": bills,
    }


@pytest.fixture(scope="session")
def signed_ledger(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("signed") / "ledger"
    found = write_signed_ledger(directory)
    found["dir"] = directory
    return found
