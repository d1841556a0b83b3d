"""The results schema: one declarative table of every column a run writes and every
field the live market publishes about an interval (after PyPSA's component-attribute
tables).

Each :class:`Column` names its file, dtype, unit, sign convention, when it is present,
where :class:`scenarios.engine.interval.IntervalResult` holds its value (``source``) and the
field it is published as on MQTT (``live``: ``market/result`` for ``intervals.parquet``,
``agents/<id>/settlement`` for ``agents.parquet``; a dotted name nests, ``grid.x``).
The batch writers, the engine's recording, the live codec (:mod:`live.payloads`), the
readers and the README's table of results columns (:mod:`scenarios.results.schema_docs`)
all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow as pa

INTERVALS_FILE = "intervals.parquet"
AGENTS_FILE = "agents.parquet"
AGENTS_DAILY_FILE = "agents_daily.parquet"
TRADES_FILE = "trades.parquet"
BUSES_FILE = "buses.parquet"
LINES_FILE = "lines.parquet"
HOUSEHOLDS_FILE = "households.parquet"
BOOKS_FILE = "books.parquet"
SETTLEMENT = "agents/<id>/settlement"
"""The live settlement's fields that no results file has (the rest are agents.parquet's)."""

WHEN = {
    "": "always",
    "grid": 'with the grid check (`grid.check != "off"`)',
    "grid_or_null": "always; null without the grid check",
    "ac": 'with `grid.check = "pyomo+ac"`',
    "books": "with `[output] order_books = true`",
    "p2p": 'with `market.mechanism = "p2p"`',
    "dso": 'with `market.mechanism = "p2p"` and `[market.p2p] dso = true`',
    "daily": 'with `[output] agents = "daily"` (instead of agents.parquet)',
}
"""When a column is present (the README's wording)."""

ARROW = {
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "id": pa.dictionary(pa.int32(), pa.string()),
}


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a results file (or one field of a live payload)."""

    file: str
    name: str
    dtype: str
    unit: str
    sign: str
    description: str
    when: str = ""
    source: str = ""
    """Attribute path on the interval's :class:`~scenarios.engine.interval.IntervalResult`
    (``baseline.…``: on the baseline's); ``sum:`` sums it over the households. Empty: the
    engine or writer fills it (keys, timestamps, the AC check, end states)."""
    live: str = ""
    """The field's name in the live payload; empty: not published."""
    quantum: float = 0.0
    """Written rounded to a multiple of this (0: as computed)."""

    @property
    def required(self) -> bool:
        return self.when == ""


QUANTUM = 2.0**-24
"""agents.parquet's step of energies and money (README "The outputs": why not float32)."""
STATE_COLUMNS = ("indoor_temp_c", "soc_kwh", "ev_soc_kwh", "baseline_stored_kwh")
"""agents.parquet's end states; agents_daily.parquet sums its other value columns."""


C = Column
Q = partial(Column, quantum=QUANTUM)
IV, A, S = INTERVALS_FILE, AGENTS_FILE, SETTLEMENT
KWH, MONEY, PRICE = "kWh", "currency", "currency/kWh"
CHARGE = "+ charging"
PAYS = "+ household pays"
GRID, GRID_OR_NULL, AC, P2P, DSO = "grid", "grid_or_null", "ac", "p2p", "dso"
RELIABILITY = (
    (
        "delivery_ratio",
        "frac",
        "of the export its orders committed it to, the share its meter delivered",
    ),
    ("take_ratio", "frac", "of the import its orders committed it to, the share it took"),
    ("estimated_share", "frac", "share of intervals settled on a substitute (late) reading"),
    ("rejected_per_interval", "1/interval", "messages of it the market rejected, per interval"),
)
"""The reliability scores over the last ``[market] reliability_window`` intervals
(:mod:`market.reliability`): in households.parquet the run's final window, in every
settlement the window up to that interval."""

# A table, one column a line: the formatter's layout would spread it over 600 lines.
# fmt: off
COLUMNS: tuple[Column, ...] = (
    # intervals.parquet: one row per interval
    C(IV, "t", "int32", "", "", "interval index, 0 at the start"),
    C(IV, "timestamp", "timestamp", "", "", "interval start, tz-aware in the scenario's timezone"),
    C(IV, "clearing_price_per_kwh", "float64", PRICE, "",
      "clearing price (traded-volume weighted when re-cleared); null without trades",
      source="price_per_kwh", live="price_per_kwh"),
    C(IV, "seller_price_per_kwh", "float64", PRICE, "",
      "volume-weighted price the sellers receive; null without trades",
      source="seller_price_per_kwh", live="seller_price_per_kwh"),
    C(IV, "p2p_kwh", "float64", KWH, "", "energy traded peer to peer",
      source="volume_kwh", live="volume_kwh"),
    C(IV, "grid_import_kwh", "float64", KWH, "", "metered import from the utility",
      source="sum:bill.grid_import_kwh", live="grid_import_kwh"),
    C(IV, "grid_export_kwh", "float64", KWH, "", "metered export to the utility",
      source="sum:bill.grid_export_kwh", live="grid_export_kwh"),
    C(IV, "imbalance_kwh", "float64", KWH, "+ surplus", "metered minus committed net injection",
      source="sum:bill.imbalance_kwh", live="imbalance_kwh"),
    C(IV, "imbalance_cost", "float64", MONEY, PAYS, "money of the imbalance",
      source="sum:bill.imbalance_cost", live="imbalance_cost"),
    C(IV, "generation_kwh", "float64", KWH, "", "community PV generation after curtailment",
      source="sum:generation_kwh"),
    C(IV, "demand_kwh", "float64", KWH, "", "community demand", source="sum:plan.demand_kwh"),
    C(IV, "battery_kwh", "float64", KWH, CHARGE, "community battery energy",
      source="sum:flows.battery_kwh"),
    C(IV, "ev_kwh", "float64", KWH, CHARGE, "community EV energy", source="sum:flows.ev_kwh"),
    C(IV, "battery_soc_kwh", "float64", KWH, "", "energy in the batteries at the end",
      source="sum:flows.battery_soc_kwh"),
    C(IV, "ev_soc_kwh", "float64", KWH, "", "energy in the EVs at the end",
      source="sum:flows.ev_soc_kwh"),
    C(IV, "heat_pump_kwh", "float64", KWH, CHARGE, "community heat-pump energy, backup included",
      source="sum:flows.device_kwh.heat_pump", live="heat_pump_kwh"),
    C(IV, "unmet_heat_kwh", "float64", KWH, "", "heat the heat pumps and backups did not deliver",
      source="sum:flows.results.unmet_heat_kwh"),
    C(IV, "outdoor_temp_c", "float64", "°C", "", "outdoor air temperature at the interval start",
      source="plan.inputs.outdoor_temp_c"),
    C(IV, "cost", "float64", MONEY, PAYS, "the households' bills", source="sum:bill.cost",
      live="cost"),
    C(IV, "baseline_cost", "float64", MONEY, PAYS, "the no-P2P baseline's bills",
      source="baseline.sum:bill.cost"),
    C(IV, "grid_fees", "float64", MONEY, "", "grid fees on P2P trades", source="sum:bill.fees",
      live="grid_fees"),
    C(IV, "market_surplus", "float64", MONEY, "",
      "what buyers pay minus what sellers receive (pay-as-bid, McAfee)",
      source="market_surplus", live="market_surplus"),
    C(IV, "welfare", "float64", MONEY, "",
      "welfare of the mechanism's clearing at the limit prices, before re-clearing",
      source="cleared.welfare", live="welfare"),
    C(IV, "optimal_welfare", "float64", MONEY, "", "the welfare optimum of the same book",
      source="cleared.optimal_welfare", live="optimal_welfare"),
    C(IV, "curtailed_kwh", "float64", KWH, "", "PV curtailed by the feeder's re-clearing",
      source="sum:curtailed_kwh", live="grid.curtailed_kwh"),
    C(IV, "baseline_curtailed_kwh", "float64", KWH, "", "PV the baseline curtails",
      source="baseline.sum:curtailed_kwh"),
    C(IV, "dimmed_kwh", "float64", KWH, "",
      "controllable devices' planned draw the grid operator dimmed (§14a EnWG)",
      source="sum:dimmed_or_zero_kwh", live="dimmed_kwh"),
    C(IV, "ev_shortfall_kwh", "float64", KWH, "",
      "least-laxity EV charging dimmed: missing at departure",
      source="sum:ev_shortfall_or_zero_kwh"),
    C(IV, "baseline_dimmed_kwh", "float64", KWH, "", "what the baseline dims",
      source="baseline.sum:dimmed_or_zero_kwh"),
    C(IV, "admm_iterations", "int64", "count", "", "ADMM iterations of the bilateral negotiation",
      P2P, source="match.convergence.iterations"),
    C(IV, "admm_primal_residual_kwh", "float64", KWH, "",
      "root-mean-square disagreement of two partners' last proposals", P2P,
      source="match.convergence.primal_residual_kwh"),
    C(IV, "admm_dual_residual_per_kwh", "float64", PRICE, "",
      "rho times the root-mean-square last change of the pairs' consensus", P2P,
      source="match.convergence.dual_residual_per_kwh"),
    C(IV, "admm_primal_tol_kwh", "float64", KWH, "",
      "the primal residual's threshold (absolute + relative part, market.p2p)", P2P,
      source="match.convergence.primal_tol_kwh"),
    C(IV, "admm_dual_tol_per_kwh", "float64", PRICE, "",
      "the dual residual's threshold (absolute + relative part, market.p2p)", P2P,
      source="match.convergence.dual_tol_per_kwh"),
    C(IV, "admm_converged", "bool", "", "", "both residuals within [market.p2p]'s tolerances",
      P2P, source="match.convergence.converged"),
    C(IV, "admm_messages", "int64", "count", "",
      "proposals the decentralised protocol sends: 2 per pair and iteration", P2P,
      source="match.convergence.messages"),
    C(IV, "differentiation_cost", "float64", MONEY, "",
      "the trades' product-differentiation costs (the buyers' preferences)", P2P,
      source="match.convergence.differentiation_cost"),
    C(IV, "central_welfare", "float64", MONEY, "",
      "[market.p2p] central_check: the central LP's optimum of the same pairs, net of the "
      "differentiation costs; null without it", P2P, source="match.convergence.central_welfare"),
    C(IV, "dso_outer_iterations", "int64", "count", "",
      "negotiations of the interval, the DSO's re-negotiations included (1: none, as no limit "
      "broke or no trade loads what broke; 0: no pair could trade)", DSO,
      source="dso.outer_iterations"),
    C(IV, "dso_revenue", "float64", MONEY, "",
      "the DSO's network charges: Σ charge × energy of the trades settled", DSO,
      source="dso.revenue"),
    C(IV, "dso_restored", "bool", "", "",
      "every limit of the linear feeder check holds after the DSO's charges (also where none "
      "broke)", DSO,
      source="dso.restored"),
    C(IV, "dso_fallback", "bool", "", "",
      "a limit was still broken: the grid stage re-cleared the interval, its trades carry "
      "no network charge", DSO, source="dso.fallback"),
    C(IV, "losses_kwh", "float64", KWH, "", "feeder losses", GRID_OR_NULL,
      source="losses_kwh", live="grid.losses_kwh"),
    C(IV, "v_min_pu", "float64", "pu", "", "lowest bus voltage", GRID_OR_NULL,
      source="outcome.check.v_min_pu", live="grid.v_min_pu"),
    C(IV, "v_max_pu", "float64", "pu", "", "highest bus voltage", GRID_OR_NULL,
      source="outcome.check.v_max_pu", live="grid.v_max_pu"),
    C(IV, "max_line_loading_frac", "float64", "frac", "", "largest line loading", GRID_OR_NULL,
      source="outcome.check.max_line_loading_frac", live="grid.max_line_loading_frac"),
    C(IV, "violations", "int64", "count", "", "limit violations after re-clearing",
      GRID_OR_NULL, source="outcome.check.violations", live="grid.violations"),
    C(IV, "violations_before_reclear", "int64", "count", "",
      "limit violations of the market's clearing", GRID,
      source="violations_before_reclear", live="grid.violations_before_reclear"),
    C(IV, "violations_background", "int64", "count", "",
      "violations of the background load alone", GRID),
    C(IV, "recleared", "bool", "", "", "re-cleared with the feeder in the model", GRID,
      source="outcome.recleared", live="grid.recleared"),
    C(IV, "solved_with_pyomo", "bool", "", "", "the check solved the Pyomo model", GRID,
      source="solved_with_pyomo"),
    C(IV, "baseline_violations", "int64", "count", "", "the baseline's violations", GRID,
      source="baseline.outcome.check.violations"),
    *(
        C(IV, f"{who}ac_{name}", "float64", unit, "", f"AC check{of}: {what}", AC)
        for who, of in (("", ""), ("baseline_", " of the baseline"))
        for name, unit, what in (
            ("v_min_pu", "pu", "lowest voltage"),
            ("v_max_pu", "pu", "highest voltage"),
            ("max_v_error_pu", "pu", "largest voltage difference to the linear model"),
            ("max_line_loading_frac", "frac", "largest line loading"),
        )
    ),
    # agents.parquet: one row per household and interval
    C(A, "t", "int32", "", "", "interval index"),
    C(A, "agent_id", "id", "", "", "household id"),
    C(A, "bus", "id", "", "", "the household's bus; null without the grid check"),
    Q(A, "generation_kwh", "float64", KWH, "", "PV generation after curtailment (metered)",
      source="generation_kwh", live="generation_kwh"),
    Q(A, "demand_kwh", "float64", KWH, "", "demand (metered)", source="plan.demand_kwh",
      live="demand_kwh"),
    Q(A, "curtailed_kwh", "float64", KWH, "", "PV curtailed by the feeder",
      source="curtailed_kwh", live="curtailed_kwh"),
    Q(A, "battery_kwh", "float64", KWH, CHARGE, "home battery energy",
      source="flows.battery_kwh", live="battery_kwh"),
    Q(A, "ev_kwh", "float64", KWH, CHARGE, "EV energy", source="flows.ev_kwh", live="ev_kwh"),
    Q(A, "heat_pump_kwh", "float64", KWH, CHARGE,
      "heat-pump energy, backup heater included (0 without one)",
      source="flows.device_kwh.heat_pump", live="heat_pump_kwh"),
    C(A, "indoor_temp_c", "float32", "°C", "",
      "indoor temperature at the end; NaN without a heat pump",
      source="flows.results.indoor_temp_c"),
    Q(A, "unmet_heat_kwh", "float64", KWH, "",
      "heat the band needed in the interval and did not get (not counted again as it recovers)",
      source="flows.results.unmet_heat_kwh"),
    Q(A, "soc_kwh", "float64", KWH, "", "battery state of charge at the end",
      source="flows.battery_soc_kwh"),
    Q(A, "ev_soc_kwh", "float64", KWH, "", "EV state of charge at the end",
      source="flows.ev_soc_kwh"),
    Q(A, "bought_p2p_kwh", "float64", KWH, "", "bought peer to peer", source="flows.bought_kwh",
      live="bought_kwh"),
    Q(A, "sold_p2p_kwh", "float64", KWH, "", "sold peer to peer", source="flows.sold_kwh",
      live="sold_kwh"),
    Q(A, "grid_import_kwh", "float64", KWH, "", "metered import (imbalance included)",
      source="bill.grid_import_kwh", live="grid_import_kwh"),
    Q(A, "grid_export_kwh", "float64", KWH, "", "metered export (imbalance included)",
      source="bill.grid_export_kwh", live="grid_export_kwh"),
    Q(A, "imbalance_kwh", "float64", KWH, "+ surplus", "metered minus committed net injection",
      source="bill.imbalance_kwh", live="imbalance_kwh"),
    Q(A, "imbalance_cost", "float64", MONEY, PAYS, "money of the imbalance",
      source="bill.imbalance_cost", live="imbalance_cost"),
    Q(A, "cost", "float64", MONEY, PAYS, "the bill", source="bill.cost", live="cost"),
    Q(A, "baseline_cost", "float64", MONEY, PAYS, "the no-P2P baseline's bill",
      source="baseline.bill.cost"),
    Q(A, "baseline_stored_kwh", "float64", KWH, "",
      "energy the baseline holds in battery and EV at the end"),
    Q(A, "dimmed_kwh", "float64", KWH, "",
      "planned draw of its controllable devices (own charging, flexible buy orders) the grid "
      "operator dimmed to the guaranteed minimum (§14a EnWG)", source="dimmed_or_zero_kwh",
      live="dimmed_kwh"),
    Q(A, "ev_shortfall_kwh", "float64", KWH, "",
      "least-laxity EV charging dimmed: the car leaves with this much less (× efficiency)",
      source="ev_shortfall_or_zero_kwh"),
    # the live settlement's own fields
    C(S, "committed_net_kwh", "float64", KWH, "+ injection",
      "net injection the orders and the feeder's instructions committed to",
      source="committed_net_kwh", live="committed_net_kwh"),
    C(S, "paid", "float64", MONEY, "", "paid for P2P purchases", source="bill.p2p_paid",
      live="paid"),
    C(S, "received", "float64", MONEY, "", "received for P2P sales",
      source="bill.p2p_received", live="received"),
    C(S, "fees", "float64", MONEY, "", "grid fees paid", source="bill.fees", live="fees"),
    C(S, "ev_deferred_kwh", "float64", KWH, "", "EV charging the feeder postponed",
      source="ev_deferred_or_zero_kwh", live="ev_deferred_kwh"),
    *(C(S, name, "float64", unit, "", f"{what} (window up to this interval)",
        source=f"reliability.{name}", live=name) for name, unit, what in RELIABILITY),
    # trades.parquet: one row per trade
    C(TRADES_FILE, "t", "int32", "", "", "interval index"),
    C(TRADES_FILE, "buyer_id", "id", "", "", "buyer household"),
    C(TRADES_FILE, "seller_id", "id", "", "", "seller household"),
    C(TRADES_FILE, "energy_kwh", "float64", KWH, "", "traded energy"),
    C(TRADES_FILE, "price_per_kwh", "float64", PRICE, "", "what the buyer pays"),
    C(TRADES_FILE, "seller_price_per_kwh", "float64", PRICE, "", "what the seller receives"),
    C(TRADES_FILE, "grid_fee", "float64", MONEY, "", "grid fee, paid by the buyer"),
    C(TRADES_FILE, "network_charge_per_kwh", "float64", PRICE, "",
      "the DSO's network charge, included in `price_per_kwh`", DSO),
    C(TRADES_FILE, "buy_kind", "id", "", "", "the buyer's order filled: net, battery, ev"),
    C(TRADES_FILE, "sell_kind", "id", "", "", "the seller's order filled: net, battery, ev"),
    # books.parquet: one row per order as submitted
    C(BOOKS_FILE, "t", "int32", "", "", "interval index", "books"),
    C(BOOKS_FILE, "agent_id", "id", "", "", "household", "books"),
    C(BOOKS_FILE, "side", "id", "", "", "buy or sell", "books"),
    C(BOOKS_FILE, "kind", "id", "", "", "net, battery or ev", "books"),
    C(BOOKS_FILE, "energy_kwh", "float64", KWH, "", "ordered energy", "books"),
    C(BOOKS_FILE, "price_per_kwh", "float64", PRICE, "", "limit price", "books"),
    # buses.parquet and lines.parquet: one row per bus (line) and interval
    C(BUSES_FILE, "t", "int32", "", "", "interval index", GRID),
    C(BUSES_FILE, "bus", "id", "", "", "bus", GRID),
    C(BUSES_FILE, "p_kw", "float64", "kW", "+ export", "net injection, background included",
      GRID),
    C(BUSES_FILE, "q_kvar", "float64", "kvar", "+ export", "reactive injection", GRID),
    C(BUSES_FILE, "v_pu", "float64", "pu", "", "voltage", GRID),
    C(BUSES_FILE, "nodal_price_per_kwh", "float64", PRICE, "",
      "nodal price where re-cleared, else null", GRID),
    C(LINES_FILE, "t", "int32", "", "", "interval index", GRID),
    C(LINES_FILE, "line", "id", "", "", "line", GRID),
    C(LINES_FILE, "from_bus", "id", "", "", "sending bus", GRID),
    C(LINES_FILE, "to_bus", "id", "", "", "receiving bus", GRID),
    C(LINES_FILE, "p_kw", "float64", "kW", "+ from → to", "active flow", GRID),
    C(LINES_FILE, "q_kvar", "float64", "kvar", "+ from → to", "reactive flow", GRID),
    C(LINES_FILE, "loading_frac", "float64", "frac", "", "current over rated current", GRID),
    # households.parquet: one row per household (after the static household
    # table's columns, Households.to_frame)
    *(C(HOUSEHOLDS_FILE, name, "float64", unit, "", f"{what} (the run's final window)",
        source=f"reliability.{name}") for name, unit, what in RELIABILITY),
)
# fmt: on


def _daily(c: Column) -> Column:
    what = ("at the day's end: " if c.name in STATE_COLUMNS else "summed over the day: ") * bool(
        c.unit) + c.description  # fmt: skip
    name, what = ("day", "day index, 0 at the start") if c.name == "t" else (c.name, what)
    return Column(AGENTS_DAILY_FILE, name, c.dtype, c.unit, c.sign, what, "daily",
                  quantum=c.quantum)  # fmt: skip


COLUMNS += tuple(_daily(c) for c in COLUMNS if c.file == AGENTS_FILE)

FILES = tuple(dict.fromkeys(c.file for c in COLUMNS if c.file.endswith(".parquet")))


def columns(file: str) -> tuple[Column, ...]:
    """The columns of ``file`` in the order written."""
    found = tuple(c for c in COLUMNS if c.file == file)
    if not found:
        raise KeyError(f"no results file {file!r} in the schema; known: {', '.join(FILES)}")
    return found


def names(file: str, *whens: str) -> tuple[str, ...]:
    """The names of ``file``'s columns present under the conditions ``whens`` (and always)."""
    return tuple(c.name for c in columns(file) if c.when in ("", *whens))


def device_energy_columns(file: str) -> tuple[str, ...]:
    """The columns of ``file`` holding a device's energy (sign "+ charging"): battery,
    EV, heat pump, … (the Σ devices of the energy balance)."""
    return tuple(c.name for c in columns(file) if c.sign == CHARGE)


def metered_net_kwh(frame: Any, file: str = AGENTS_FILE) -> Any:
    """The energy balance's left side per row: generation − demand − Σ device energy
    [kWh]; it equals sold − bought + export − import (DESIGN.md)."""
    net = frame["generation_kwh"] - frame["demand_kwh"]
    for name in device_energy_columns(file):
        net = net - frame[name]
    return net


def arrow_schema(file: str) -> pa.Schema:
    """The Arrow schema of a streamed file (every column has an Arrow dtype)."""
    return pa.schema([pa.field(c.name, ARROW[c.dtype]) for c in columns(file)])
