"""The decentralised p2p market over a real Mosquitto (``p2pgrid live --decentralised``):
20 households negotiate their bilateral trades with no market process; only the clock
and the recorder of signed trades are central.

The scenario: 20 households, each with four partners (a ring, ``±1`` and ``±3``: the
partner graph's diameter is 4, so the termination flood runs 4 iterations past the final
one), the grid check off (the batch run then clears exactly the negotiated trades),
storage for self-consumption (its plans do not read the market price), the ``pairwise``
stopping rule the live peers use (so the batch run stops where they do), a time zone
whose midnight is the early afternoon at the PV's location (every interval trades).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from live.acl import write_acl
from live.bus import BrokerConfig
from live.contract import contract
from live.p2p_codec import proposal_payload
from live.p2p_peers import PeerFleet
from live.p2p_run import run_decentralised
from live.p2p_topics import peers_topic
from live.protocol import topics_for
from p2pgrid.cli import app
from p2pgrid.cli_keys import key_ids
from scenarios.config.loader import load_scenario
from scenarios.engine.runner import run as run_batch

from .test_acl import _client, _subscribed

N = 20
RING = {f"h{i + 1:04d}": [f"h{(i + 1) % N + 1:04d}", f"h{(i + 3) % N + 1:04d}"] for i in range(N)}
TOML = f"""
name = "p2p-live"
[simulation]
start = "2026-06-01"
days = 1
interval_minutes = 15
timezone = "Pacific/Auckland"
seed = 11
[community]
households = {N}
storage_strategy = "self_consumption"
[grid]
check = "off"
[market]
mechanism = "p2p"
[market.p2p]
primal_tol_kwh = 1e-4
dual_tol_per_kwh = 1e-4
max_iterations = 300
stopping = "pairwise"
[market.p2p.partners]
{chr(10).join(f"{a} = {json.dumps(b)}" for a, b in RING.items())}
"""
TOL_KWH = 1e-4
"""The ADMM primal tolerance of the scenario: the live trades are the batch's iterates
(the same local updates, the same final iterate), so they agree far closer; this is
what the test allows."""
TOL_PRICE = 1e-4
"""The dual tolerance [currency/kWh], for the per-pair prices."""
SPEED = 450.0  # a 15-minute interval every 2 s
EXACT_SPEED = 150.0
"""Every 6 s: room for the batch's iterations plus the flood's 4 (about 60 rounds of 80
messages) on a busy machine; at 90 % of the gate time a negotiation that has not ended stops
at its last iterate, which would not be the batch's."""
INTERVALS = 3


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "p2p.toml"
    path.write_text(TOML, encoding="utf-8")
    return path


def _by_pair(frame: pd.DataFrame) -> pd.DataFrame:
    key = ["t", "buyer_id", "seller_id", "buy_kind", "sell_kind"]
    frame = frame.astype({k: str for k in key[1:]})
    return frame.groupby(key)[["energy_kwh", "price_per_kwh"]].sum()


def test_live_trades_equal_the_batch_run(scenario_file: Path, mosquitto, tmp_path: Path) -> None:
    scenario = load_scenario(scenario_file)
    live = run_decentralised(scenario, mosquitto.config, tmp_path / "live", EXACT_SPEED, INTERVALS)
    batch_dir = tmp_path / "batch"
    run_batch(scenario, batch_dir)
    batch = pd.read_parquet(batch_dir / "trades.parquet")
    batch = batch[batch.t < INTERVALS]
    got = pd.read_parquet(tmp_path / "live" / "trades.parquet")
    assert live.peers is not None and live.recorder is not None
    assert live.peers.intervals == INTERVALS
    assert live.peers.dropped == 0 and live.peers.rejected == 0
    # every interval trades, and the negotiation stopped at the batch's iteration
    iv = pd.read_parquet(batch_dir / "intervals.parquet")
    assert live.peers.iterations == iv.admm_iterations[:INTERVALS].tolist()
    assert set(batch.t) == set(range(INTERVALS))
    a, b = _by_pair(got), _by_pair(batch)
    assert sorted(a.index) == sorted(b.index)
    joined = a.join(b, rsuffix="_batch")
    assert (joined.energy_kwh - joined.energy_kwh_batch).abs().max() <= TOL_KWH
    assert (joined.price_per_kwh - joined.price_per_kwh_batch).abs().max() <= TOL_PRICE
    # two signatures-worth of agreement per record: both households reported it
    assert live.recorder.records > 0 and live.recorder.unverified == 0


def test_killing_three_households_leaves_the_others_trading(
    scenario_file: Path, mosquitto, tmp_path: Path
) -> None:
    scenario = load_scenario(scenario_file)
    dead = ["h0002", "h0009", "h0015"]
    fleets: list[PeerFleet] = []

    def at(fleet: PeerFleet, t: int) -> None:
        if t == 0:
            fleets.append(fleet)
            fleet.kill(dead, at=(1, 5))  # at iteration 5 of interval 1: mid-negotiation

    out = tmp_path / "live"
    # every 4 s: each interval loses the 1 s deadline (and the quiet before it) once the
    # dead households are silent, and the rest must still have rounds to negotiate
    live = run_decentralised(scenario, mosquitto.config, out, 225.0, INTERVALS, on_interval=at)
    assert live.peers is not None
    (fleet,) = fleets
    settled = {s.t: s for s in fleet.settled}
    assert sorted(settled) == list(range(INTERVALS))
    links = {(p, d) for d in dead for p in [*RING[d], *(a for a, b in RING.items() if d in b)]}
    # each partner of a dead household dropped it once in each interval it was silent in
    # (12 links, 2 intervals), and nobody else was dropped: the partners stalled behind
    # them waited
    assert len(links) == 12
    assert live.peers.dropped == len(links) * 2
    trades = pd.read_parquet(out / "trades.parquet").astype({"buyer_id": str, "seller_id": str})
    ids = [f"h{i + 1:04d}" for i in range(N)]
    for t in (1, 2):
        s = settled[t]
        assert [ids[r] for r in s.dead] == dead
        at_t = trades[trades.t == t]
        assert len(at_t) > 0, f"nobody traded in interval {t}"
        assert not (at_t.buyer_id.isin(dead) | at_t.seller_id.isin(dead)).any()
        dead_rows = np.isin(s.household, [ids.index(d) for d in dead])
        assert (s.filled_kwh[dead_rows] == 0).all()  # all theirs goes to the utility
        # the rest: no order filled beyond its energy, bought = sold, and every fill a
        # recorded (both sides' signed) trade: nothing lost
        assert (s.filled_kwh <= s.energy_kwh + 1e-12).all()
        bought, sold = s.filled_kwh[s.is_buy].sum(), s.filled_kwh[~s.is_buy].sum()
        assert bought == pytest.approx(sold, abs=1e-9)
        assert bought == pytest.approx(at_t.energy_kwh.sum(), abs=1e-9)
        for r in range(N):
            mine = s.household == r
            got = at_t[at_t.buyer_id == ids[r]].energy_kwh.sum()
            got += at_t[at_t.seller_id == ids[r]].energy_kwh.sum()
            assert s.filled_kwh[mine].sum() == pytest.approx(got, abs=1e-9)


def test_a_forged_proposal_does_not_arrive_under_the_generated_acl(
    scenario_file: Path, acl_broker, tmp_path: Path
) -> None:
    scenario = load_scenario(scenario_file)
    acl_dir = tmp_path / "acl"
    write_acl(scenario, acl_dir)
    creds = json.loads((acl_dir / "credentials.json").read_text())
    broker = acl_broker(acl_dir)
    topics = topics_for(scenario)
    seen: list[tuple[str, bytes]] = []
    observer = _client(broker.port, "operator", creds["operator"], "p2p-operator")
    observer.on_message = lambda _c, _u, m: seen.append((m.topic, m.payload))
    _subscribed(observer, peers_topic(topics, "+", "+"))
    forger = _client(broker.port, "h0005", creds["h0005"], "p2p-h0005")
    marker = 123.456

    def forge(fleet: PeerFleet, t: int) -> None:
        forged = proposal_payload(fleet._run, t + 1000, 1, [marker], [marker], [])  # never t
        # h0005 pretending to be h0003, then (the control) as itself to its partner h0006
        for sender, to in (("h0003", "h0004"), ("h0005", "h0006")):
            forger.publish(peers_topic(topics, sender, to), json.dumps(forged), qos=1)

    def cfg(user: str) -> BrokerConfig:
        return BrokerConfig("127.0.0.1", broker.port, user, creds[user])

    live = run_decentralised(
        scenario, cfg("market"), tmp_path / "live", SPEED, 2, on_interval=forge,
        peers_broker=cfg("fleet"),
    )  # fmt: skip
    for c in (observer, forger):
        c.loop_stop()
        c.disconnect()
    marked = [topic for topic, payload in seen if str(marker).encode() in payload]
    assert marked == [peers_topic(topics, "h0005", "h0006")] * 2  # the control only
    assert live.peers is not None and live.peers.intervals == 2
    # the fleet account may read and write every household's peer topics: nobody dropped
    assert live.peers.dropped == 0 and live.recorder is not None and live.recorder.trades > 0
    assert len(seen) > 1000  # the peers negotiated through the same broker
    # and every offer, proposal, final and trades record follows live/asyncapi.yaml
    assert [e for topic, payload in seen for e in contract().check(topic, payload)] == []
    assert (tmp_path / "live" / "trades.parquet").exists()


def test_decentralised_needs_the_p2p_mechanism_and_a_pace(scenario_file: Path) -> None:
    from typer.testing import CliRunner

    runner = CliRunner()
    got = runner.invoke(app, ["live", str(scenario_file), "--decentralised",
                              "--set", "market.mechanism=uniform"])  # fmt: skip
    assert got.exit_code != 0
    assert "needs market.mechanism = \"p2p\", not 'uniform'" in got.output
    got = runner.invoke(app, ["live", str(scenario_file), "--decentralised", "--speed", "0"])
    assert got.exit_code != 0 and "--speed > 0" in got.output


def test_each_trade_carries_both_households_signatures(tmp_path: Path, mosquitto) -> None:
    from live.p2p_codec import record_bytes
    from scenarios.audit.keys import Registry, SignatureError

    from .conftest import make_keys

    folder = tmp_path / "signed"
    make_keys(folder / "keys", key_ids(N, []))
    path = folder / "p2p.toml"
    path.write_text(TOML + '[live]\nkeys = "keys/keys.json"\n', encoding="utf-8")
    scenario = load_scenario(path)
    run = run_decentralised(scenario, mosquitto.config, tmp_path / "live", SPEED, 1)
    assert run.recorder is not None and run.recorder.unverified == 0
    assert run.recorder.trades > 0 and len(run.records) == run.recorder.records
    registry = Registry.load(folder / "keys" / "keys.json")
    for rec in run.records:
        for who in (rec["a"], rec["b"]):  # both signed the same bytes
            registry.verify_bytes(who, record_bytes(rec), rec["sigs"][who]["value"])
        if rec["trades"]:  # a changed energy no longer verifies
            first = rec["trades"][0]
            forged = {**rec, "trades": [[*first[:5], first[5] + 1.0, first[6]]]}
            with pytest.raises(SignatureError):
                registry.verify_bytes(
                    rec["a"], record_bytes(forged), rec["sigs"][rec["a"]]["value"]
                )
