"""The ``[live]`` scenario section: the live market's topic root, gate and limits, and the
smart meters that back households.

A meter-backed household is what its meter sees at the grid connection: no battery and
no EV of its own, ``generation_kwh`` = energy exported and ``demand_kwh`` = energy
imported in the interval (:func:`agents.meters.connection.as_metered`). Its orders are placed by
the market from its readings, as a price taker (bids at ``retail − fee``, asks at
``feed_in``) unless the meter names a strategy. The batch engine models the same
households the same way, so that a batch run and a live run of one scenario agree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from scenarios.config.section import Section as _Section

_TOPIC_LEVEL = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class Meter(_Section):
    """One smart meter and the household it backs."""

    id: str = Field(pattern=_TOPIC_LEVEL.pattern)
    """Meter id as it appears in its topic (``meters/<format>/<id>/…``)."""
    format: str
    """A registered meter format (:data:`agents.meters.formats.FORMATS`)."""
    household: str = Field(pattern=_TOPIC_LEVEL.pattern)
    """Agent id of the household (``h0001`` …) whose grid connection the meter measures."""
    strategy: Literal["price_taker", "zic", "truthful"] = "price_taker"
    public_key: str = ""
    """For a meter that signs its readings itself (``ocmf``): its public key, the hex of
    the DER SubjectPublicKeyInfo (an ECDSA key on the curve its records name). Meters of
    the other formats sign by wrapping, with the key ``[live] keys`` registers."""

    @model_validator(mode="after")
    def _key(self) -> Meter:
        from agents.meters.formats import meter_format  # the meters, only for a meter

        native = meter_format(self.format).verify is not None
        if native and not self.public_key:
            raise ValueError(
                f"meter {self.id!r}: a {self.format} meter signs its records itself, so it "
                "needs its public_key (hex of the DER SubjectPublicKeyInfo)"
            )
        if self.public_key and not native:
            raise ValueError(
                f"meter {self.id!r}: public_key is for meters that sign natively (ocmf); a "
                f"{self.format} meter signs with its key in [live] keys"
            )
        if self.public_key:
            from agents.meters.ocmf import load_public_key  # cryptography

            try:
                load_public_key(self.public_key)
            except ValueError as exc:
                raise ValueError(f"meter {self.id!r}: public_key is {exc}") from None
        return self

    @field_validator("format")
    @classmethod
    def _registered(cls, value: str) -> str:
        from agents.meters.formats import format_names

        names = format_names()
        if value not in names:
            raise ValueError(f"{value!r} is not one of {', '.join(names)} (the meter formats)")
        return value


class LiveSection(_Section):
    """The live market over MQTT (``p2pgrid live``)."""

    community: str = Field("", pattern=r"^([A-Za-z0-9_.-]{1,64})?$")
    """Topic root ``p2pgrid/<community>/``; empty means the scenario's name, slugified."""
    gate_fraction: float = Field(0.8, gt=0, le=1)
    """Share of an interval's wall time after which its gate closes."""
    close_when_complete: bool | None = None
    """Close the gate before ``gate_closes_at`` once every household and meter is in.
    Default (null): only at ``--speed 0``; at ``--speed > 0`` the gate closes at the time
    the clock announced. Either way the next interval's clock comes on the simulated
    clock (``--speed X``: X times real time), never earlier."""
    complete_timeout_s: float = Field(30.0, gt=0, le=86_400)
    """At ``--speed 0`` (no wall-clock gate), the longest a gate waits for every
    household and meter [s]: then it closes anyway and the interval is cleared without
    what is missing (counted in ``counts.missing_agents`` and
    ``counts.meters_incomplete``), so a meter that never reports cannot stall the market."""
    reconnect_grace_s: float = Field(2.0, ge=0, le=600)
    """A gate never closes while the market is cut off from the broker; after it
    reconnects the gate stays open at least this long [s] for re-sent orders."""
    max_payload_bytes: int = Field(16_384, ge=256, le=1_048_576)
    max_orders_per_message: int = Field(16, ge=1, le=1000)
    max_messages_per_interval: int = Field(12, ge=2, le=10_000)
    """Messages one agent may send per interval (a meter four times as many); more are
    dropped as a flood: reported once when it starts and once, with the count, when the
    gate closes."""
    max_error_reports_per_interval: int = Field(1000, ge=10, le=1_000_000)
    """Rejections reported one by one on ``errors`` per interval; beyond it they are
    counted and reported in one summary when the gate closes (a stream of junk never
    doubles itself on the broker)."""
    max_power_kw: float = Field(1000.0, gt=0, le=1e6)
    """Readings and orders above this power over the interval are rejected as absurd."""
    max_price_per_kwh: float = Field(10.0, gt=0, le=1e4)
    meters: tuple[Meter, ...] = ()
    external: tuple[str, ...] = ()
    """Agent ids of households run by third-party clients (``["h0003", ...]``): the
    simulated households of ``p2pgrid live`` / ``p2pgrid agents`` do not speak for them,
    and the market waits for their reading and orders like any other household's."""
    checkpoint_every: int = Field(96, ge=1, le=1_000_000)
    """Interval entries of the audit ledger per signed checkpoint (``<state>/ledger/``,
    :mod:`scenarios.audit`): every this many the market publishes the checkpoint
    (retained, ``ledger/checkpoint``) and every household's bill (``agents/<id>/bill``);
    also after the last interval."""
    market_key: str = ""
    """The market's Ed25519 key file (a path relative to the scenario file's folder),
    which signs the audit ledger's checkpoints; empty: the market generates one in
    ``<state>/ledger/market.key`` on its first start and reuses it."""
    keys: str = ""
    """The public key registry (``keys.json`` of ``p2pgrid keys new``; a path relative
    to the scenario file's folder): whose signature the market checks on a reading, an
    order message or a meter sample (:mod:`live.signatures`). Empty: none registered,
    and any signed message is rejected (its signature cannot be checked)."""
    require_signatures: bool = False
    """Reject every unsigned reading, order message and meter sample too (a message
    whose signature does not verify is rejected either way)."""
    verify_workers: int | Literal["auto"] = "auto"
    """Processes that check the signatures of readings, orders and meter samples (and
    decode readings and orders) off the market's network thread (:mod:`live.verifier`);
    ``"auto"``: ``max(1, cpu_count - 1)`` when ``keys`` are set, else 0; 0: checked in the
    market's own process as each arrives."""

    @field_validator("verify_workers")
    @classmethod
    def _workers(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 0 <= value <= 256:
            raise ValueError(f'{value} is not between 0 and 256 (or "auto")')
        return value

    @field_validator("keys")
    @classmethod
    def _registry(cls, value: str) -> str:
        if value and not Path(value).is_file():
            raise ValueError(f"no file at {value!r} (the keys.json of `p2pgrid keys new`)")
        if value:
            from scenarios.audit.keys import KeyError_, Registry  # cryptography

            try:
                Registry.load(Path(value))
            except KeyError_ as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _unique(self) -> LiveSection:
        problems = []
        ids = [m.id for m in self.meters]
        for dup in sorted({i for i in ids if ids.count(i) > 1}):
            problems.append(f"meters: meter id {dup!r} appears more than once")
        homes = [m.household for m in self.meters]
        for dup in sorted({h for h in homes if homes.count(h) > 1}):
            problems.append(f"meters: household {dup!r} has more than one meter")
        for dup in sorted({h for h in self.external if self.external.count(h) > 1}):
            problems.append(f"external: household {dup!r} appears more than once")
        for both in sorted(set(self.external) & set(homes)):
            problems.append(f"external: household {both!r} is backed by a meter (live.meters)")
        if self.require_signatures and not self.keys:
            problems.append(
                "require_signatures: true needs the public keys to check them by "
                "(live.keys = the keys.json of `p2pgrid keys new`)"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def household_ids(n: int) -> list[str]:
    """The agent ids of a community of ``n`` households (as :mod:`agents.households.table`)."""
    width = max(4, len(str(n)))
    return [f"h{i + 1:0{width}d}" for i in range(n)]


def check_meter_households(live: LiveSection, n_households: int) -> list[str]:
    """Problems with meters and external households that name households the community
    does not have."""
    known = set(household_ids(n_households))
    first = household_ids(n_households)[0]
    return (
        _check_keys(live, n_households)
        + [
            f"live.meters: meter {m.id!r} names household {m.household!r}, which is not one of "
            f"the {n_households} households ({first} …)"
            for m in live.meters
            if m.household not in known
        ]
        + [
            f"live.external: {h!r} is not one of the {n_households} households ({first} …)"
            for h in live.external
            if h not in known
        ]
    )


def _check_keys(live: LiveSection, n_households: int) -> list[str]:
    """With ``require_signatures``: every household that signs (not meter-backed) and
    every meter has a key in the registry (else it could never take part)."""
    if not (live.require_signatures and live.keys):
        return []
    from scenarios.audit.keys import Registry

    registered = set(Registry.load(Path(live.keys)).ids())
    metered = {m.household for m in live.meters}
    signers = [h for h in household_ids(n_households) if h not in metered]
    wrapping = [m.id for m in live.meters if not m.public_key]  # ocmf: its own key
    missing = [i for i in (*signers, *wrapping) if i not in registered]
    if not missing:
        return []
    more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
    return [
        f"live.require_signatures: {', '.join(missing[:5])}{more} have no public key in "
        f"{live.keys} (live.keys): their messages would all be rejected"
    ]
