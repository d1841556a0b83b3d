"""The ledger's segments: a restart reads the newest segment only (the one before when the
newest holds no whole record), a torn frame is dropped, records round-trip exactly, a
ledger of another scenario or community is refused, and it is far smaller than the JSON
lines it replaced."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from live.ledger import Ledger, LedgerError, pack, read_ledger


def _record(t: int, n: int = 50) -> dict:
    rng = random.Random(t)
    return {
        "t": t,
        "result": {"v": 1, "t": t, "price_per_kwh": 0.2 + t / 100, "volume_kwh": 3.5},
        "settlements": {
            f"h{i:04d}": {
                "v": 1,
                "t": t,
                "price_per_kwh": 0.2,
                "filled_kwh": [rng.random()],
                "cost": rng.uniform(-1, 1),
                "grid_import_kwh": rng.random(),
                "trades": [{"side": "buy", "counterparty": "h0001", "energy_kwh": 0.5}],
            }
            for i in range(n)
        },
        "rng": {"state": {"state": str(t * 12345678901234567890)}},
    }


def test_restart_reads_the_newest_segment_and_drops_a_torn_frame(tmp_path: Path) -> None:
    led = Ledger(tmp_path, "c", "fp", every=4)
    records = [_record(t) for t in range(10)]
    for r in records:
        led.append(r)
    led.close()
    assert len(list(tmp_path.glob("ledger-*.seg"))) == 3  # 0-3, 4-7, 8-9
    again = Ledger(tmp_path, "c", "fp")
    assert again.read_segments == 1 and again.next_t == 10 and again.every == 4
    assert again.last == {"community": "c", **records[-1]}
    again.close()
    assert read_ledger(tmp_path) == [{"community": "c", **r} for r in records]

    # kill -9 while writing t=10: a torn frame at the end of the newest segment
    seg = sorted(tmp_path.glob("ledger-*.seg"))[-1]
    frame = pack({"community": "c", **_record(10)})
    with open(seg, "ab") as fh:
        fh.write(frame[: len(frame) // 2])
    torn = Ledger(tmp_path, "c", "fp")
    assert torn.torn_bytes == len(frame) // 2 and torn.next_t == 10
    torn.append(_record(10))
    torn.append(_record(11))  # segment 8-11 is full now
    torn.close()
    assert [r["t"] for r in read_ledger(tmp_path)] == list(range(12))

    # torn at the very first frame of a new segment: the one before has the last record
    led = Ledger(tmp_path, "c", "fp")
    frame = pack({"community": "c", **_record(12)})
    (tmp_path / "ledger-0000000012.seg").write_bytes(frame[:20])
    led.close()
    led = Ledger(tmp_path, "c", "fp")
    assert led.read_segments == 2 and led.next_t == 12
    led.append(_record(12))
    led.close()
    assert [r["t"] for r in read_ledger(tmp_path)] == list(range(13))


def test_another_scenario_or_community_is_refused(tmp_path: Path) -> None:
    Ledger(tmp_path, "c", "fp").close()
    with pytest.raises(LedgerError, match="another scenario"):
        Ledger(tmp_path, "c", "other")
    with pytest.raises(LedgerError, match="community 'c', not 'd'"):
        Ledger(tmp_path, "d", "fp")


def test_settlements_of_different_shapes_round_trip(tmp_path: Path) -> None:
    rec = _record(0, 3)
    rec["settlements"]["h0001"]["version"] = 2  # one household's settlement re-issued
    led = Ledger(tmp_path, "c", "fp")
    led.append(rec)
    led.close()
    assert read_ledger(tmp_path) == [{"community": "c", **rec}]


def test_a_frame_is_a_fifth_of_the_json_line_or_less() -> None:
    rec = {"community": "c", **_record(3, 1000)}
    line = orjson.dumps(rec) + b"\n"
    assert len(pack(rec)) * 5 < len(line), (len(pack(rec)), len(line))
