"""Signed readings, orders and meter samples: what the market checks at its door, and
the private keys the emulators sign with.

The signature (:mod:`scenarios.audit.keys`) is a ``"sig"`` field of the JSON object,
``{"alg": "Ed25519", "key": <id>, "value": <base64>}``, over the RFC 8785 canonical bytes
of the object *without* ``"sig"`` (:mod:`scenarios.audit.canonical`): sorted keys, no
whitespace, ECMAScript number forms, so the sender's key order and spacing do not
matter.

Whose key: the identity the topic names, never the one the payload claims —
``agents/<agent_id>/reading`` and ``…/orders`` are verified with the key registered for
``<agent_id>``, ``meters/<format>/<meter_id>/…`` with the key registered for
``<meter_id>``. A signature of h0001 on h0002's topic is rejected ("signed by key
'h0001', expected 'h0002'"), as is one by the right id that does not verify.

Meters sign by wrapping: a meter whose native payload is a JSON object (Tasmota's
``tele/SENSOR``, Shelly's ``status/…``, DSMR-reader's ``json``, our ``generic``) adds
``"sig"`` at the object's top level, over the canonical bytes of the native object as
it would send it unsigned; the market verifies it and hands the format's decoder the
object without ``"sig"``. A payload that is not a JSON object (Tasmota's plain-text
``LWT``) cannot be wrapped. Companion messages (STATE, LWT, …: no energy) are not
checked. A meter format that signs natively (OCMF, :mod:`agents.meters.ocmf`) is checked
by its own rule, always, with the meter's ``[[live.meters]] public_key``.

The rules (:class:`Signatures`):

- a message that carries ``"sig"`` is accepted only if the signature verifies under
  the expected key; a bad, malformed or foreign signature, or one by an id the
  scenario's ``[live] keys`` does not register (none registered: any), is rejected;
- ``[live] require_signatures = true``: an unsigned reading, order message or meter
  sample is rejected too;
- every rejection is reported on ``errors`` as ``signature: <why>`` (category
  ``signature`` in the flood and report-budget summaries) and changes nobody's book.

Replay: a signed message is bound to its interval (``t``, checked as for any message)
and, when it carries ``run`` (the run id of the ``clock``; the simulated households
always send it), to its run: a reading or orders message naming another run is
rejected (``run: …``), so a signature recorded in one run cannot be played into another.

Verification runs on the ingest path as each message arrives (the MQTT network thread,
while the gate is open), outside the book's lock, so the gate's clearing does not wait
for it; or, with ``[live] verify_workers``, in the verifier pool's processes
(:mod:`live.verify_worker`, the same calls).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agents.meters.base import MeterSignatureError
from agents.meters.formats import meter_format
from live.protocol import Rejected
from scenarios.audit.canonical import SIGNATURE_FIELD, unsigned
from scenarios.audit.keys import KeyError_, KeyPair, Registry, SignatureError
from scenarios.config.schema_live import LiveSection, Meter


class SignatureRejected(Rejected):
    """A message refused for its signature; ``str(exc)`` is the reason (``signature: …``)."""


class Signatures:
    """The market's signature check (see the module's rules).

    registry : the public keys by id (empty: none registered)
    required : reject unsigned messages too
    """

    def __init__(self, registry: Registry | None = None, required: bool = False) -> None:
        self.registry = registry if registry is not None else Registry()
        self.required = required

    @classmethod
    def for_live(cls, live: LiveSection) -> Signatures:
        """The check a scenario's ``[live] keys`` and ``require_signatures`` ask for."""
        registry = Registry.load(Path(live.keys)) if live.keys else None
        return cls(registry, live.require_signatures)

    def check(self, data: dict[str, Any], key_id: str) -> bool:
        """Whether ``data`` is signed (True) or unsigned and accepted (False); raises
        :class:`SignatureRejected` otherwise. ``key_id``: the identity of the topic."""
        if SIGNATURE_FIELD not in data:
            if self.required:
                raise SignatureRejected("signature: unsigned, and [live] require_signatures")
            return False
        try:
            self.registry.verify(data, key_id)
        except SignatureError as exc:
            raise SignatureRejected(f"signature: {exc}") from None
        return True

    def meter_payload(self, payload: bytes, meter: Meter, suffix: str) -> tuple[bytes, bool]:
        """A meter's native payload to decode (its ``"sig"`` checked and removed) and
        whether it was signed; raises :class:`SignatureRejected`.

        A format that signs natively (OCMF) is checked by its own rule, with the meter's
        ``public_key``, always. Else a payload that is not a JSON object is passed on as
        it is (its decoder says what is wrong with it), unless signatures are required:
        it cannot carry one."""
        fmt = meter_format(meter.format)
        if fmt.verify is not None:
            try:
                fmt.verify(suffix, payload, meter.public_key)
            except MeterSignatureError as exc:  # not of the format at all: the decoder's
                raise SignatureRejected(f"signature: {meter.format}: {exc}") from None
            return payload, True
        data = _json_object(payload)
        if data is None:
            if self.required:
                raise SignatureRejected(
                    "signature: unsigned (not a JSON object that could carry a sig), and "
                    "[live] require_signatures"
                )
            return payload, False
        if not self.check(data, meter.id):
            return payload, False
        return json.dumps(unsigned(data)).encode("utf-8"), True


def check_run(data: dict[str, Any], run: str | None) -> None:
    """Raise :class:`Rejected` when ``data`` names a ``run`` other than ``run`` (the
    market's; None: not known, nothing checked)."""
    if run is not None and "run" in data and data["run"] != run:
        raise Rejected(f"run: the message is for run {data['run']!r}, this market runs {run!r}")


def _json_object(payload: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


# --- the signers' side -------------------------------------------------------------------


def key_dir(live: LiveSection, given: Path | None) -> tuple[Path | None, bool]:
    """Where the emulators' private keys are: ``given`` (``--keys DIR``: every key must
    be there), else the folder of the scenario's ``[live] keys`` (the keys found there
    are used); ``(None, False)`` when neither. The flag: whether every key is required."""
    if given is not None:
        return given, True
    if live.keys:
        return Path(live.keys).parent, False
    return None, False


def load_signers(
    ids: Iterable[str], directory: Path | None, strict: bool, registry: Registry | None = None
) -> dict[str, KeyPair]:
    """The private keys ``directory/<id>.key`` of ``ids`` (empty without a directory).

    ``strict``: a missing key file is an error (:class:`KeyError_` naming them); else
    an id without one signs nothing. With ``registry``: a key that is not the one the
    registry holds for its id is an error (every message signed with it would be
    rejected)."""
    if directory is None:
        return {}
    out: dict[str, KeyPair] = {}
    missing: list[str] = []
    for key_id in ids:
        path = directory / f"{key_id}.key"
        if not path.is_file():
            missing.append(key_id)
            continue
        pair = KeyPair.load(path)
        if pair.id != key_id:
            raise KeyError_(f"{path}: holds the key of {pair.id!r}, not {key_id!r}")
        if registry is not None and key_id in registry:
            if registry.public_b64(key_id) != pair.public_b64:
                raise KeyError_(
                    f"{path}: not the key the scenario's [live] keys registers for {key_id!r}"
                )
        out[key_id] = pair
    if strict and missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise KeyError_(f"{directory}: no key file for {', '.join(missing[:5])}{more}")
    return out


def signers_for(live: LiveSection, ids: Iterable[str], given: Path | None) -> dict[str, KeyPair]:
    """:func:`load_signers` for the scenario's keys folder or ``--keys DIR`` (checked
    against the scenario's registry when it has one)."""
    directory, strict = key_dir(live, given)
    registry = Registry.load(Path(live.keys)) if live.keys else None
    return load_signers(ids, directory, strict, registry)


def native_signers(
    meters: Iterable[Meter], live: LiveSection, given: Path | None
) -> dict[str, Any]:
    """The private keys of the meters whose format signs natively (OCMF), to emulate
    them: ``DIR/<meter_id>.pem`` (PKCS#8 PEM, unencrypted) in ``--keys DIR`` or beside the
    scenario's ``[live] keys``. Every such meter needs one: its records are worthless
    unsigned (:class:`KeyError_` naming it)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    native = [m for m in meters if meter_format(m.format).sign is not None]
    if not native:
        return {}
    directory, _ = key_dir(live, given)
    out: dict[str, Any] = {}
    for m in native:
        path = None if directory is None else directory / f"{m.id}.pem"
        if path is None or not path.is_file():
            raise KeyError_(
                f"meter {m.id!r} is a {m.format} meter and signs its records itself: its "
                f"private key must be at {'<--keys DIR>' if path is None else path}"
            )
        try:
            out[m.id] = load_pem_private_key(path.read_bytes(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeyError_(f"{path}: not an unencrypted PEM private key ({exc})") from None
    return out
