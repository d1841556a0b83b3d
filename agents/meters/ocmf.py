"""OCMF, the Open Charge Metering Format of the S.A.F.E. e.V. initiative (revision 1.2,
``OCMF-en.md`` of SAFE-eV/OCMF-Open-Charge-Metering-Format): meter readings signed by
the meter itself, as German calibration law wants them, and as OCPP 2.0.1 carries them
in a ``SignedMeterValue`` (``signedMeterData``, base64 of the OCMF string, with
``encodingMethod`` ``"OCMF"``).

On ``meters/ocmf/<meter_id>/record`` the payload is the OCMF string itself, on
``…/signed_meter_value`` an OCPP 2.0.1 ``SignedMeterValue`` JSON object holding it. The
string has three sections separated by ``|`` (which no section may contain)::

    OCMF|<payload data section: a JSON object>|<signature section: a JSON object>

**Signature.** The signature section's ``SD`` (signature data) is the meter's signature
over the payload section's exact bytes as received (UTF-8, its whitespace included:
the spec forbids any rewriting between signing and verifying). ``SA`` names the
algorithm (default ``ECDSA-secp256r1-SHA256``); every ECDSA method of the spec's table 22
is checked with ``cryptography`` (secp192r1, secp256k1, secp256r1, brainpool256r1,
secp384r1, brainpool384r1, each with SHA-256 as the table says), except
``ECDSA-secp192k1-SHA256``, which ``cryptography`` does not implement and is refused by
name. ``SE`` (encoding of ``SD``): ``hex`` (default) or ``base64``; ``SM``:
``application/x-der`` (default, a DER ``ECDSA-Sig-Value``), nothing else. The public key
is the scenario's (``[[live.meters]] public_key``: hex of the DER SubjectPublicKeyInfo),
never one a payload brings (``SignedMeterValue.publicKey`` is ignored); its curve must be
the one ``SA`` names. :func:`verify` checks all of this; the market calls it before
:func:`decode` (a bad signature is rejected and reported, :mod:`live.signatures`).

**Readings.** The payload section's ``RD`` is a list of readings; a field equal to the
previous reading's is left out and carries over (spec: "fields that have an identical
value to the previous reading are omitted"). A record becomes one
:class:`~agents.meters.base.Sample` at the time of its *last* reading (``TM``): the
readings at that time whose ``RI`` (OBIS code, ``1-b:1.8.0``, ``1-0:1.8.0``, ``1.8.0``)
is the total import register ``1.8.0`` (→ import) or total export ``2.8.0``
(→ export), ``RV`` in ``RU`` ``kWh`` or ``Wh``. Other quantities (tariff registers
``1.8.1`` …) are ignored; a reading whose status ``ST`` is not ``G`` (OK) or whose error
flags ``EF`` include ``E`` (energy unusable) makes the record unusable (refused). ``TM``
is ``<ISO 8601 with milliseconds after a comma and a +HHMM offset> <sync status>``;
status ``U`` (unknown, unsynchronised) means the time cannot be trusted: the sample is
treated as carrying no time (the market stamps it on arrival). OCMF carries no power.
Pagination (``PG``) is not checked across records.

The emulator's records (:func:`encode`, then :func:`sign` with the meter's P-256 key):
``FV`` 1.0, ``PG`` ``F<unix seconds>`` (fiscal metering, no transaction), import then
export at one ``TM``, ``RV`` written in full precision.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from agents.meters.base import (
    MeterFormat,
    MeterPayloadError,
    MeterSignatureError,
    Sample,
    iso_time,
    json_object,
    number,
)

RECORD, SIGNED_METER_VALUE = "record", "signed_meter_value"
DEFAULT_SA = "ECDSA-secp256r1-SHA256"
CURVES: dict[str, type[ec.EllipticCurve] | None] = {
    "ECDSA-secp192k1-SHA256": None,  # in the spec, not in cryptography
    "ECDSA-secp256k1-SHA256": ec.SECP256K1,
    "ECDSA-secp192r1-SHA256": ec.SECP192R1,
    "ECDSA-secp256r1-SHA256": ec.SECP256R1,
    "ECDSA-brainpool256r1-SHA256": ec.BrainpoolP256R1,
    "ECDSA-secp384r1-SHA256": ec.SECP384R1,
    "ECDSA-brainpool384r1-SHA256": ec.BrainpoolP384R1,
}
"""The spec's table 22, by ``SA``: the curve (None: not implemented here); SHA-256 for all."""
_OBIS = re.compile(r"^(?:[0-9A-Za-z]+-[0-9A-Za-z]+:)?(\d+)\.(\d+)\.(\d+)(?:\*\d+)?$")
_UNITS = {"kWh": 1.0, "Wh": 1e-3}
_CARRIED = ("TM", "TX", "RI", "RU", "RT", "EF", "ST")


def _ocmf_string(suffix: str, payload: bytes | str) -> str:
    """The OCMF string of a payload on ``suffix`` (unwrapped from a SignedMeterValue)."""
    if suffix == SIGNED_METER_VALUE:
        smv = json_object(payload)
        if smv.get("encodingMethod") != "OCMF":
            raise MeterPayloadError(
                f"SignedMeterValue.encodingMethod is {smv.get('encodingMethod')!r}, not 'OCMF'"
            )
        try:
            raw = base64.b64decode(str(smv.get("signedMeterData", "")), validate=True)
            return raw.decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            raise MeterPayloadError("signedMeterData is not base64 of UTF-8") from None
    try:
        return payload.decode("utf-8") if isinstance(payload, bytes) else payload
    except UnicodeDecodeError:
        raise MeterPayloadError("an OCMF record must be UTF-8") from None


def suffix_of(payload: bytes) -> str:
    """The suffix a payload was sent on: an OCMF string (``OCMF|…``) on ``record``,
    anything else read as a ``signed_meter_value`` (whose reader says what is wrong)."""
    return RECORD if payload.startswith(b"OCMF|") else SIGNED_METER_VALUE


def sections(suffix: str, payload: bytes | str) -> tuple[str, str]:
    """The payload data section and the signature section, as received."""
    parts = _ocmf_string(suffix, payload).split("|")
    if len(parts) != 3 or parts[0] != "OCMF":
        raise MeterPayloadError("not an OCMF record: expected OCMF|<payload>|<signature>")
    return parts[1], parts[2]


@functools.lru_cache(maxsize=1024)
def load_public_key(hex_der: str) -> ec.EllipticCurvePublicKey:
    """A meter's public key from the hex of its DER SubjectPublicKeyInfo; raises
    ValueError saying what is wrong."""
    try:
        key = serialization.load_der_public_key(bytes.fromhex(hex_der))
    except ValueError as exc:
        raise ValueError(f"not the hex of a DER SubjectPublicKeyInfo ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError(f"an OCMF meter's key is an ECDSA key, not {type(key).__name__}")
    return key


def verify(suffix: str, payload: bytes | str, public_key_hex: str) -> None:
    """Raise :class:`MeterSignatureError` unless the record's ``SD`` is a valid signature
    of its payload section's exact bytes under ``public_key_hex`` (see the module)."""
    data, signature = sections(suffix, payload)
    try:
        sig = json.loads(signature)
    except ValueError:
        raise MeterSignatureError("the signature section is not JSON") from None
    if not isinstance(sig, dict):
        raise MeterSignatureError("the signature section must be a JSON object")
    sa = sig.get("SA", DEFAULT_SA)
    if sa not in CURVES:
        raise MeterSignatureError(
            f"SA {sa!r} is not an OCMF signature algorithm (known: {', '.join(CURVES)})"
        )
    curve = CURVES[sa]
    if curve is None:
        raise MeterSignatureError(f"SA {sa!r} is not supported here (cryptography lacks it)")
    if sig.get("SM", "application/x-der") != "application/x-der":
        raise MeterSignatureError(f"SM {sig['SM']!r}: only application/x-der is read")
    se, sd = sig.get("SE", "hex"), sig.get("SD")
    if not isinstance(sd, str) or not sd:
        raise MeterSignatureError("the signature section has no SD")
    try:
        if se == "hex":
            der = bytes.fromhex(sd)
        elif se == "base64":
            der = base64.b64decode(sd, validate=True)
        else:
            raise MeterSignatureError(f"SE {se!r} is neither hex nor base64")
    except (ValueError, binascii.Error):
        raise MeterSignatureError(f"SD is not {se}") from None
    key = load_public_key(public_key_hex)
    if key.curve.name != curve().name:
        raise MeterSignatureError(
            f"the meter's public key is on {key.curve.name}, the record's SA is {sa}"
        )
    try:
        key.verify(der, data.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise MeterSignatureError("SD does not verify under the meter's public key") from None


def _time(tm: Any, tz: ZoneInfo) -> float | None:
    if not isinstance(tm, str) or not tm.strip():
        raise MeterPayloadError("RD: a reading without TM")
    stamp, _, status = tm.strip().partition(" ")
    time_s = iso_time(stamp, "TM", tz)
    return None if status.strip() == "U" else time_s


def decode(suffix: str, payload: bytes | str, tz: ZoneInfo) -> Sample:
    """A record's readings as one sample (see the module); the signature is not checked
    here (:func:`verify`)."""
    data, _ = sections(suffix, payload)
    body = json_object(data)
    readings = body.get("RD")
    if not isinstance(readings, list) or not readings:
        raise MeterPayloadError("RD must be a non-empty list of readings")
    full: list[dict[str, Any]] = []
    carried: dict[str, Any] = {}
    for i, r in enumerate(readings):
        if not isinstance(r, dict):
            raise MeterPayloadError(f"RD[{i}] must be an object")
        carried = {**{k: carried[k] for k in _CARRIED if k in carried}, **r}
        full.append(carried)
    last_tm = full[-1].get("TM")
    time_s = _time(last_tm, tz)
    registers: dict[str, float] = {}
    for i, r in enumerate(full):
        if r.get("TM") != last_tm:
            continue
        if r.get("ST", "G") != "G":
            raise MeterPayloadError(f"RD[{i}]: meter status ST={r.get('ST')!r}, not G (OK)")
        if "E" in str(r.get("EF", "")):
            raise MeterPayloadError(f"RD[{i}]: error flags EF={r['EF']!r}: energy unusable")
        m = _OBIS.match(str(r.get("RI", "")))
        if m is None or "RV" not in r:
            continue
        quantity = {("1", "8", "0"): "import", ("2", "8", "0"): "export"}.get(
            (str(int(m[1])), str(int(m[2])), str(int(m[3])))
        )
        if quantity is None:
            continue
        unit = r.get("RU")
        if unit not in _UNITS:
            raise MeterPayloadError(f"RD[{i}]: RU {unit!r} is not an energy unit (kWh, Wh)")
        value = number(r["RV"], f"RD[{i}].RV")
        if value < 0:
            raise MeterPayloadError(f"RD[{i}].RV is a counter and cannot be negative")
        registers[quantity] = value * _UNITS[unit]
    if not registers:
        raise MeterPayloadError("no total import (1.8.0) or export (2.8.0) register in RD")
    return Sample(time_s, registers.get("import"), registers.get("export"))


def _tm(time_s: float | None, tz: ZoneInfo) -> str:
    if time_s is None:
        return "1970-01-01T00:00:00,000+0000 U"
    local = datetime.fromtimestamp(time_s, tz)
    ms = round(local.microsecond / 1000)
    return f"{local:%Y-%m-%dT%H:%M:%S},{min(ms, 999):03d}{local:%z} S"


def encode(sample: Sample, tz: ZoneInfo) -> dict[str, Any]:
    """An unsigned record (``SD`` empty: :func:`sign` fills it) with the sample's
    registers; nothing for a sample without (OCMF carries no power)."""
    rd: list[dict[str, Any]] = []
    for value, obis in ((sample.import_kwh, "1-b:1.8.0"), (sample.export_kwh, "1-b:2.8.0")):
        if value is not None:
            head = {"TM": _tm(sample.time_s, tz), "ST": "G", "RU": "kWh"} if not rd else {}
            rd.append({**head, "RV": value, "RI": obis})
    if not rd:
        return {}
    page = "F0" if sample.time_s is None else f"F{int(sample.time_s)}"
    body = {"FV": "1.0", "GI": "p2pgrid emulator", "PG": page, "MS": "emulated", "RD": rd}
    data = json.dumps(body, separators=(",", ":"))
    return {RECORD: f"OCMF|{data}|" + json.dumps({"SA": DEFAULT_SA, "SD": ""})}


def sign(encoded: dict[str, Any], private_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """Each record of ``encoded`` with its ``SD``: ``private_key``'s ECDSA-SHA256 DER
    signature (hex) over the payload section's bytes, ``SA`` named for its curve."""
    names = {c().name: sa for sa, c in CURVES.items() if c is not None}
    sa = names.get(private_key.curve.name)
    if sa is None:
        raise ValueError(f"no OCMF signature algorithm for curve {private_key.curve.name}")
    out = {}
    for suffix, record in encoded.items():
        data, _ = sections(suffix, record)
        der = private_key.sign(data.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
        out[suffix] = f"OCMF|{data}|" + json.dumps({"SA": sa, "SD": der.hex().upper()})
    return out


OCMF = MeterFormat(
    name="ocmf",
    suffixes=(RECORD, SIGNED_METER_VALUE),
    decode=decode,
    encode=encode,
    verify=verify,
    sign=sign,
    suffix_of=suffix_of,
)
