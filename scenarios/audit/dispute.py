"""``p2pgrid ledger dispute DIR --household h0007 --interval 412``: everything in a ledger
that bears on one household's bill for one interval.

- the household's input leaf of the interval (reading, orders, estimated flag, rejected
  messages) and every raw signed message it references, from ``private/`` (or that it
  has been erased), with whether its signature holds (its meter's OCMF records with the
  time and the registers read from them, :mod:`scenarios.audit.messages`);
- the interval's clearing (the anonymous ``market/result``) and the household's trades;
- every version of its settlement, in ledger order, with the reason of each correction
  and the metered energy (import / export) that produced it;
- the checks: the whole ledger is verified (:func:`scenarios.audit.verify.verify`) and
  the problems that concern this interval are listed; the household's bill under the
  checkpoint that covers the interval's last version is built and checked from its
  proofs alone (:func:`scenarios.audit.bills.verify_bill`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from agents.meters.base import Sample
from scenarios.audit.bills import bills_of, verify_bill
from scenarios.audit.chain import (
    KEYS_FILE,
    PRIVATE_DIR,
    SCENARIO_FILE,
    ledger_dir,
    read_chain,
    read_checkpoints,
)
from scenarios.audit.keys import Registry, SignatureError
from scenarios.audit.messages import Messages
from scenarios.audit.verify import verify
from scenarios.config.schema import Scenario

MONEY_KEYS = ("cost", "paid", "received", "fees", "imbalance_cost")
ENERGY_KEYS = (
    "generation_kwh",
    "demand_kwh",
    "bought_kwh",
    "sold_kwh",
    "grid_import_kwh",
    "grid_export_kwh",
    "imbalance_kwh",
    "committed_net_kwh",
)


class DisputeError(ValueError):
    """The ledger holds nothing for that household and interval."""


@dataclass
class Dispute:
    """What bears on ``agent``'s bill of interval ``t``."""

    agent: str
    t: int
    entry: int = -1
    interval_start: str = ""
    inputs: dict[str, Any] | None = None
    signed: list[dict[str, Any]] = field(default_factory=list)
    """``{hash, status ("ok" | "erased" | the failure), key, message}`` per raw message,
    and ``registers`` (its time and registers, as text) for a meter's natively signed
    (OCMF) record whose signature holds."""
    clearing: dict[str, Any] = field(default_factory=dict)
    versions: list[dict[str, Any]] = field(default_factory=list)
    """``{entry, kind, reason, version, settlement, metered}`` in ledger order."""
    problems: list[str] = field(default_factory=list)
    ledger_ok: bool = False
    bill: dict[str, Any] = field(default_factory=dict)
    """``{checkpoint, ok, problems, total_cost, fingerprint}`` or empty (not yet
    checkpointed)."""

    @property
    def last(self) -> dict[str, Any]:
        """The last version's settlement (what the bill counts)."""
        return self.versions[-1]["settlement"]

    def lines(self) -> list[str]:
        """The dispute as text, one fact a line."""
        out = [
            f"dispute: {self.agent}, interval {self.t} ({self.interval_start}), entry {self.entry}"
        ]
        inp = self.inputs
        if inp is None:
            out.append("inputs: none (no reading, no order in this interval)")
        else:
            reading = inp.get("reading")
            values = (
                "null" if reading is None else ", ".join(f"{k}={v:.6f}" for k, v in reading.items())
            )
            out.append(f"inputs: reading {values}")
            for o in inp.get("orders", []):
                out.append(
                    f"  order #{o[0]}: {o[1]} {o[2]:.6f} kWh at {o[3]:.6f} /kWh (kind {o[4]})"
                )
            out.append(
                f"  estimated: {'yes' if inp.get('estimated') else 'no'}; "
                f"rejected messages: {inp.get('rejected', 0)}; signed messages: {len(self.signed)}"
            )
        for s in self.signed:
            out.append(
                f"  signed {s['hash']}: {s['status']}" + (f" (key {s['key']})" if s["key"] else "")
            )
            if s["message"] is not None:
                out.append(f"    {s['message']}")
            if s.get("registers") is not None:
                out.append(f"    {s['registers']}")
        c = self.clearing
        out.append(
            "clearing: "
            + ", ".join(
                f"{k}={c.get(k)}" for k in ("price_per_kwh", "seller_price_per_kwh", "volume_kwh")
            )
            + (f", counts {c.get('counts')}" if c.get("counts") else "")
        )
        grid = c.get("grid")
        if isinstance(grid, dict):
            out.append(
                "  grid: "
                + ", ".join(
                    f"{k}={grid.get(k)}"
                    for k in ("v_min_pu", "v_max_pu", "violations", "recleared", "curtailed_kwh")
                )
            )
        first = self.versions[0]["settlement"] if self.versions else {}
        for tr in first.get("trades", []):
            out.append(
                f"trade: {tr['side']} {tr['energy_kwh']:.6f} kWh with {tr['counterparty']} at "
                f"{tr['price_per_kwh']:.6f} /kWh, grid fee {tr['grid_fee']:.6f}"
            )
        for v in self.versions:
            s = v["settlement"]
            why = v["reason"] or "as cleared"
            out.append(
                f"version {v['version']} (entry {v['entry']}, {v['kind']}: {why}): "
                f"estimated={'yes' if s.get('estimated') else 'no'}, "
                + ", ".join(f"{k}={s.get(k, 0.0):.6f}" for k in MONEY_KEYS + ENERGY_KEYS)
            )
            if v["metered"] is not None:
                r = v["metered"]
                imp, exp = r["demand_kwh"], r["generation_kwh"]
                out.append(f"  meter: import {imp:.6f} kWh, export {exp:.6f} kWh")
        out.append(f"checks: ledger {'verifies' if self.ledger_ok else 'FAILS'}")
        out.extend(f"  {p}" for p in self.problems)
        if self.bill:
            b = self.bill
            out.append(
                f"bill under checkpoint {b['checkpoint']}: {'verifies' if b['ok'] else 'FAILS'}, "
                f"total_cost {b['total_cost']:.6f} (market key {b['fingerprint']})"
            )
            out.extend(f"  {p}" for p in b["problems"])
        else:
            out.append("bill: the interval is not yet under a checkpoint")
        return out


def _registers(sample: Sample, tz: ZoneInfo) -> str:
    """What a meter's signed record says: its time (in the scenario's zone) and its
    registers."""
    when = (
        "no time (stamped by the market)"
        if sample.time_s is None
        else datetime.fromtimestamp(sample.time_s, tz).isoformat(timespec="seconds")
    )
    imp, exp = sample.import_kwh, sample.export_kwh
    return (
        f"meter record at {when}: import register "
        + ("-" if imp is None else f"{imp:.6f} kWh")
        + ", export register "
        + ("-" if exp is None else f"{exp:.6f} kWh")
    )


def dispute(path: Path, agent: str, t: int) -> Dispute:
    """Gather what bears on ``agent``'s bill of interval ``t`` (and run the checks)."""
    directory = ledger_dir(path)
    scenario = Scenario.model_validate_json((directory / SCENARIO_FILE).read_bytes())
    messages = Messages(scenario, Registry.load(directory / KEYS_FILE))
    d = Dispute(agent, t)
    last_seq = -1
    for entry in read_chain(directory):
        header = entry["header"]
        if header.get("t") != t:
            continue
        kind, seq = header.get("kind"), header["seq"]
        leaf = next((x for x in entry["settlements"] if x.get("agent") == agent), None)
        metered = next((x for x in entry["inputs"] if x.get("agent") == agent), None)
        if kind == "interval":
            d.entry, d.inputs = seq, metered
            d.clearing = entry.get("clearing") or {}
            d.interval_start = str(d.clearing.get("interval_start", ""))
        if leaf is None:
            continue
        last_seq = seq
        d.versions.append(
            {
                "entry": seq,
                "kind": kind,
                "reason": header.get("reason", ""),
                "version": leaf["version"],
                "settlement": leaf["settlement"],
                "metered": None
                if kind == "interval" or metered is None
                else metered.get("reading"),
            }
        )
    if not d.versions:
        raise DisputeError(f"{directory}: no settlement of {agent} in interval {t}")
    for name in (d.inputs or {}).get("signed", []):
        raw_path = directory / PRIVATE_DIR / f"{name}.json"
        item: dict[str, Any] = {"hash": name, "status": "erased", "key": "", "message": None}
        if raw_path.exists():
            raw = raw_path.read_bytes()
            item["message"] = raw.decode("utf-8", "replace")
            try:
                checked = messages.check(agent, raw)
                item["key"], item["status"] = checked.key, "signature ok"
                if checked.sample is not None:
                    item["registers"] = _registers(checked.sample, messages.tz)
            except SignatureError as exc:
                item["status"] = f"signature FAILS: {exc}"
        d.signed.append(item)
    report = verify(directory)
    d.ledger_ok = report.ok
    d.problems = [p.line() for p in report.problems if p.t == t][:20]
    for cp in read_checkpoints(directory):
        if cp.get("first_entry", 0) <= last_seq <= cp.get("last_entry", -1):
            bill = bills_of(directory, cp).get(agent)
            if bill is not None:
                check = verify_bill(bill)
                d.bill = {
                    "checkpoint": cp.get("seq"),
                    "ok": check.ok,
                    "problems": check.problems,
                    "total_cost": check.total_cost,
                    "fingerprint": check.fingerprint,
                }
    return d
