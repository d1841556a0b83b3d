"""The MQTT contract (DESIGN.md "MQTT contract"): topic names and payload checks.

The machine-readable contract is ``live/asyncapi.yaml`` (AsyncAPI 3.0, JSON Schemas of every
payload, checked by :mod:`live.contract` in the tests); this docstring is its prose.

Topic root ``p2pgrid/<community>/``; JSON, UTF-8, ``"v": 1``. Our additions to the
table in DESIGN.md, all optional for a third-party agent:

- a reading may carry ``ev_deferrable_kwh`` (EV charging the feeder may postpone) and
  the energy its storage drew on its own in the interval, ``battery_kwh`` and ``ev_kwh``
  (signed, charging positive; 0 when absent), and its heat pump's, ``heat_pump_kwh``
  (thermostat and backup, >= 0; 0 when absent), apart from what its flexible orders are
  filled for (dispatched by the market, so added by it). The market bills the metered net
  ``generation − demand − battery − ev − heat_pump`` (:mod:`market.settlement`): what it
  differs by from the household's orders is imbalance. A household that sends no
  reading is metered at zero. It may also carry ``ev_soc_kwh``, the car's state of
  charge (shown on the dashboard, like ``soc_kwh``);
- an order may carry ``kind``: ``net`` (default: the household's inflexible position,
  what is not matched goes to the utility), ``battery``, ``ev`` or ``heat_pump``
  (flexible device orders — storage, pre-heating —, which happen only as far as they
  are filled);
- a reading or an orders message may carry ``sig``, its signature, and ``run``, the run
  it is meant for (checked by :mod:`live.signatures`; the exact bytes signed are there);
- ``status/<username>`` (``status/<client_id>`` for a connection without a username;
  retained): ``{"v": 1, "status": "online" | "offline" | "done"}``.

What the market publishes (``"v": 1``; fields are only ever added, never renamed):

``clock`` (retained), one per interval: ``run`` (the run's id: a client follows only
    its run's clock, :mod:`live.runfilter`), ``t``, ``interval_start``,
    ``interval_minutes``, ``gate_closes_at`` (null when asked again after a reconnect);
    after the last interval ``{run, t, done: true}``.

``market/result``, one per interval ``t`` (written to the ledger first), anonymous (every
account reads it; no household ids):
    ``t``, ``interval_start`` (ISO, tz-aware), ``price_per_kwh`` (null when nothing
    trades), ``volume_kwh``, ``grid_import_kwh``, ``grid_export_kwh``, ``imbalance_kwh``
    (community totals);
    ``book``: the aggregated curves, ``{"buy": [[energy_kwh, price_per_kwh], …],
    "sell": […]}``, steps of at least five orders at their marginal price, bids by
    falling and asks by rising price (:mod:`live.book`: no single order is visible);
    ``grid`` (null when the scenario's grid check is off): ``v_min_pu``, ``v_max_pu``,
    ``violations``, ``violations_before_reclear``, ``max_line_loading_frac``,
    ``losses_kwh``, ``recleared``, ``curtailed_kwh``, and the feeder state as the rows of
    buses.parquet and lines.parquet: ``buses: [{bus, p_kw, q_kvar, v_pu,
    nodal_price_per_kwh}]``, ``lines: [{line, from_bus, to_bus, p_kw, q_kvar,
    loading_frac}]`` (NaN as null);
    ``counts``: ``readings``, ``order_messages``, ``orders``, ``meter_readings``,
    ``meters_incomplete`` (meters short of the interval's end at its gate: their
    households are settled with an estimate), ``meter_corrections`` (settlements of
    earlier intervals re-issued at this gate with their meters' true energy),
    ``missing_agents``.

``market/book``, one per interval (the ``market`` and ``operator`` accounts only):
    ``t``, ``interval_start``, ``orders`` as columns ``{agent, side, kind, energy_kwh,
    price_per_kwh, filled_kwh}`` in the market's canonical order (kind, household,
    order in message), ``trades``: ``[{buyer, seller, energy_kwh, price_per_kwh (the
    buyer's), seller_price_per_kwh, grid_fee}]``.

``agents/<agent_id>/settlement``, one per household and interval:
    ``t``, ``version`` (1; re-issued as k+1 when a late meter's true energy arrives, see
    :mod:`live.corrections`: the last version counts), ``estimated`` (true when the
    household's meter was late at the gate and its energy is a substitute value),
    ``price_per_kwh``, ``filled_kwh`` (per order, in the order sent),
    ``bought_kwh``, ``sold_kwh``, ``grid_import_kwh``, ``grid_export_kwh`` (metered,
    imbalance included), ``committed_net_kwh`` (what the orders and the feeder's
    instructions committed the household to inject), ``imbalance_kwh`` (metered minus
    committed net, positive: surplus), ``imbalance_cost`` (at the imbalance prices),
    ``paid``,
    ``received``, ``fees``, ``cost`` (positive when the household pays),
    ``ev_deferred_kwh``, ``curtailed_kwh``, ``dimmed_kwh`` (§14a: the draw the operator
    cut; energies and fills are as dimmed), ``generation_kwh`` (after curtailment),
    ``demand_kwh``, ``battery_kwh``, ``ev_kwh`` and ``heat_pump_kwh`` (devices as
    metered: the reading's plus the flexible fills less postponed EV charging, positive
    when charging; ``generation − demand − battery − ev − heat_pump = sold − bought +
    export − import``),
    ``trades``: ``[{side, counterparty, energy_kwh, price_per_kwh, grid_fee}]``. The
    dashboard reads them back through :func:`live.payloads.decode_settlement`.

``errors``: ``{topic, reason}`` for a rejected message; a flood (more than
``[live] max_messages_per_interval`` messages from one sender in an interval) is reported
when it starts and, with ``count``, when the gate closes; rejections beyond
``[live] max_error_reports_per_interval`` in an interval are reported once, with
``count`` and ``by_category``, when the gate closes.

The checks return the reason a payload is rejected; the market reports it on ``errors``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from agents.devices import kind_names
from market.orders import OrderKind

if TYPE_CHECKING:
    from scenarios.config.schema import Scenario

VERSION = 1
_SLUG = re.compile(r"[^A-Za-z0-9_.-]+")


def community_slug(name: str) -> str:
    """The topic-root level for a scenario name."""
    return _SLUG.sub("-", name).strip("-")[:64] or "community"


def topics_for(scenario: Scenario) -> Topics:
    """The topics of a scenario's community (``[live] community``, else its name)."""
    return Topics(scenario.live.community or community_slug(scenario.name))


@dataclass(frozen=True)
class Topics:
    """Every topic of one community."""

    community: str

    @property
    def root(self) -> str:
        return f"p2pgrid/{self.community}"

    @property
    def clock(self) -> str:
        return f"{self.root}/clock"

    @property
    def result(self) -> str:
        return f"{self.root}/market/result"

    @property
    def book(self) -> str:
        return f"{self.root}/market/book"

    @property
    def errors(self) -> str:
        return f"{self.root}/errors"

    @property
    def meters(self) -> str:
        """Every meter's topics (the market's subscription)."""
        return f"{self.root}/meters/#"

    def meter_of(self, topic: str) -> tuple[str, str, str]:
        """``(format, meter id, suffix)`` of a :meth:`meter` topic (empty when missing)."""
        fmt, _, tail = topic[len(self.root) + len("/meters/") :].partition("/")
        meter_id, _, suffix = tail.partition("/")
        return fmt, meter_id, suffix

    def reading(self, agent: str) -> str:
        return f"{self.root}/agents/{agent}/reading"

    def orders(self, agent: str) -> str:
        return f"{self.root}/agents/{agent}/orders"

    def settlement(self, agent: str) -> str:
        return f"{self.root}/agents/{agent}/settlement"

    def meter(self, fmt: str, meter_id: str, suffix: str) -> str:
        return f"{self.root}/meters/{fmt}/{meter_id}/{suffix}"

    def status(self, client_id: str) -> str:
        return f"{self.root}/status/{client_id}"

    @staticmethod
    def agent_of(topic: str) -> str:
        """The agent id of an ``agents/<agent_id>/…`` topic (reading, orders, settlement)."""
        return topic.split("/")[-2]


class Rejected(ValueError):
    """A message the market refuses; ``str(exc)`` is the reason."""


@dataclass(frozen=True, slots=True)
class Reading:
    generation_kwh: float
    demand_kwh: float
    soc_kwh: float | None
    ev_deferrable_kwh: float
    battery_kwh: float = 0.0
    ev_kwh: float = 0.0
    ev_soc_kwh: float | None = None
    heat_pump_kwh: float = 0.0


@dataclass(frozen=True, slots=True)
class Order:
    is_buy: bool
    energy_kwh: float
    price_per_kwh: float
    kind: int  # 0 net, else a device's code (agents.devices.kind_names)


def reading_payload(t: int, r: Reading) -> dict[str, Any]:
    """A household's ``agents/<id>/reading`` of interval ``t`` (the states of charge only
    when known)."""
    return {
        "v": VERSION,
        "t": t,
        "generation_kwh": r.generation_kwh,
        "demand_kwh": r.demand_kwh,
        **({} if r.soc_kwh is None else {"soc_kwh": r.soc_kwh}),
        "ev_deferrable_kwh": r.ev_deferrable_kwh,
        "battery_kwh": r.battery_kwh,
        "ev_kwh": r.ev_kwh,
        **({} if r.ev_soc_kwh is None else {"ev_soc_kwh": r.ev_soc_kwh}),
        "heat_pump_kwh": r.heat_pump_kwh,
    }


def orders_payload(t: int, orders: list[Order]) -> dict[str, Any]:
    """A household's ``agents/<id>/orders`` of interval ``t`` (``kind`` only when not
    ``net``, the default)."""
    kinds = kind_names()
    return {
        "v": VERSION,
        "t": t,
        "orders": [
            {
                "side": "buy" if o.is_buy else "sell",
                "energy_kwh": o.energy_kwh,
                "price_per_kwh": o.price_per_kwh,
                **({} if o.kind == OrderKind.NET else {"kind": kinds[o.kind]}),
            }
            for o in orders
        ],
    }


def encode(payload: dict[str, Any]) -> bytes:
    """A payload as compact UTF-8 JSON (numpy scalars and arrays allowed; NaN as null).

    orjson: six times faster than :func:`json.dumps` on a settlement, which the market
    writes for every household every interval.
    """
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


def parse_json(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """The payload as a JSON object, or :class:`Rejected`."""
    if len(payload) > max_bytes:
        raise Rejected(f"payload of {len(payload)} bytes is above the limit of {max_bytes}")
    try:
        data = json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise Rejected("payload is not UTF-8") from None
    except (ValueError, RecursionError) as exc:  # ValueError: also an int of 4,300+ digits
        raise Rejected(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Rejected(f"payload must be a JSON object, not {type(data).__name__}")
    return data


def _float(value: int | float) -> float:
    """``float(value)``; an integer beyond the float range is +-inf (then rejected as not
    finite) rather than an OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _finite(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(f"{key} must be a number, got {type(value).__name__}")
    x = _float(value)
    if not math.isfinite(x):
        raise Rejected(f"{key} must be finite, got {value!r}")
    return x


def _energy(
    data: dict[str, Any], key: str, max_kwh: float, required: bool = True, positive: bool = False
) -> float | None:
    if key not in data:
        if required:
            raise Rejected(f"{key} is missing")
        return None
    value = data[key]
    x = _finite(value, key)
    if x < 0 or (positive and x == 0):
        raise Rejected(f"{key} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    if x > max_kwh:
        raise Rejected(f"{key} = {value!r} is absurd (above {max_kwh:g} kWh in one interval)")
    return x


def check_header(data: dict[str, Any], agent: str, t_now: int, allowed: frozenset[str]) -> None:
    """``v``, ``t`` and identity; unknown keys are errors."""
    if not allowed.issuperset(data):
        raise Rejected(f"unknown keys {sorted(set(data) - allowed)}")
    v = data.get("v", VERSION)
    if type(v) is not int or v != VERSION:  # not True, not 1.0: the integer 1
        raise Rejected(f"unsupported version v={data.get('v')!r} (this market speaks v=1)")
    for key in ("agent_id", "agent"):
        if key in data and data[key] != agent:
            raise Rejected(f"payload names agent {data[key]!r} but was sent on {agent!r}'s topic")
    t = data.get("t")
    if isinstance(t, bool) or not isinstance(t, int):
        raise Rejected(f"t must be an integer interval index, got {t!r}")
    if t < t_now:
        raise Rejected(f"stale interval t={t}: the market is collecting t={t_now}")
    if t > t_now:
        raise Rejected(f"future interval t={t}: the market is collecting t={t_now}")


_READING_KEYS = frozenset(
    "v t agent_id agent generation_kwh demand_kwh soc_kwh ev_deferrable_kwh battery_kwh "
    "ev_kwh ev_soc_kwh heat_pump_kwh run sig".split()
)
_ORDERS_KEYS = frozenset(("v", "t", "agent_id", "agent", "orders", "run", "sig"))
_ORDER_KEYS = frozenset(("side", "energy_kwh", "price_per_kwh", "kind"))


def read_reading(data: dict[str, Any], agent: str, t_now: int, max_kwh: float) -> Reading:
    check_header(data, agent, t_now, _READING_KEYS)
    gen = _energy(data, "generation_kwh", max_kwh)
    demand = _energy(data, "demand_kwh", max_kwh)
    soc = _energy(data, "soc_kwh", 1e9, required=False)
    ev_soc = _energy(data, "ev_soc_kwh", 1e9, required=False)
    deferrable = _energy(data, "ev_deferrable_kwh", max_kwh, required=False) or 0.0
    battery = _signed_energy(data, "battery_kwh", max_kwh)
    ev = _signed_energy(data, "ev_kwh", max_kwh)
    heat_pump = _energy(data, "heat_pump_kwh", max_kwh, required=False) or 0.0
    assert gen is not None and demand is not None
    if deferrable > demand + gen + max_kwh:  # pragma: no cover - bounded above already
        raise Rejected("ev_deferrable_kwh is absurd")
    return Reading(gen, demand, soc, deferrable, battery, ev, ev_soc, heat_pump)


def _signed_energy(data: dict[str, Any], key: str, max_kwh: float) -> float:
    """An optional energy of either sign (0 when absent), at most ``max_kwh`` in size."""
    if key not in data:
        return 0.0
    value = data[key]
    x = _finite(value, key)
    if abs(x) > max_kwh:
        raise Rejected(f"{key} = {value!r} is absurd (beyond ±{max_kwh:g} kWh in one interval)")
    return x


def read_orders(
    data: dict[str, Any], agent: str, t_now: int, max_kwh: float, max_price: float, max_orders: int
) -> list[Order]:
    check_header(data, agent, t_now, _ORDERS_KEYS)
    orders = data.get("orders")
    if not isinstance(orders, list):
        raise Rejected("orders must be a list")
    if len(orders) > max_orders:
        raise Rejected(f"{len(orders)} orders in one message, at most {max_orders}")
    out = []
    for i, o in enumerate(orders):
        if not isinstance(o, dict):
            raise Rejected(f"orders[{i}] must be an object")
        if not _ORDER_KEYS.issuperset(o):
            raise Rejected(f"orders[{i}]: unknown keys {sorted(set(o) - _ORDER_KEYS)}")
        side = o.get("side")
        if side not in ("buy", "sell"):
            raise Rejected(f"orders[{i}].side must be 'buy' or 'sell', got {side!r}")
        try:
            energy = _energy(o, "energy_kwh", max_kwh, positive=True)
        except Rejected as exc:
            raise Rejected(f"orders[{i}].{exc}") from None
        price = o.get("price_per_kwh")
        if (
            isinstance(price, bool)
            or not isinstance(price, int | float)
            or not math.isfinite(_float(price))
        ):
            raise Rejected(f"orders[{i}].price_per_kwh must be a finite number, got {price!r}")
        if abs(price) > max_price:
            raise Rejected(
                f"orders[{i}].price_per_kwh = {price!r} is absurd (beyond ±{max_price:g})"
            )
        kind = o.get("kind", "net")
        kinds = kind_names()
        if kind not in kinds:
            raise Rejected(f"orders[{i}].kind must be one of {', '.join(kinds)}")
        assert energy is not None
        out.append(Order(side == "buy", energy, float(price), kinds.index(kind)))
    return out
