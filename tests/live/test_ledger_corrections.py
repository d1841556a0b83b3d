"""Correction records in the ledger: after the last interval, not an interval, their
meter state the latest; a reopened ledger keeps them, a torn one is dropped."""

from __future__ import annotations

from pathlib import Path

import pytest

from live.ledger import Ledger, LedgerError, pack, read_ledger


def test_correction_records_follow_their_interval(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, "c")
    with pytest.raises(LedgerError, match="before any interval"):
        ledger.append_corrections({"corrections": []})
    ledger.append({"t": 0, "meters": {"m": 0}})
    ledger.append_corrections({"corrections": [{"agent": "h0001"}], "meters": {"m": 1}})
    assert ledger.next_t == 1
    assert ledger.latest is not None and ledger.latest["meters"] == {"m": 1}
    ledger.close()

    again = Ledger(tmp_path, "c")
    assert again.next_t == 1 and again.last is not None and again.last["t"] == 0
    assert [r["corrects_after"] for r in again.tail] == [0]
    assert again.latest is not None and again.latest["meters"] == {"m": 1}
    again.append({"t": 1, "meters": {"m": 2}})
    assert again.tail == [] and again.latest is not None and again.latest["meters"] == {"m": 2}
    again.append_corrections({"corrections": [], "meters": {"m": 3}})
    again.close()
    (seg,) = tmp_path.glob("ledger-*.seg")
    with open(seg, "ab") as fh:  # killed while writing another one
        fh.write(pack({"community": "c", "corrects_after": 1, "corrections": []})[:-5])
    torn = Ledger(tmp_path, "c")
    assert torn.torn_bytes > 0 and len(torn.tail) == 1 and torn.next_t == 2
    torn.close()
    assert [("t" in r, r.get("corrects_after")) for r in read_ledger(tmp_path)] == [
        (True, None),
        (False, 0),
        (True, None),
        (False, 1),
    ]


def test_a_correction_record_out_of_place_is_refused(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, "c")
    ledger.append({"t": 0})
    ledger.close()
    (seg,) = tmp_path.glob("ledger-*.seg")
    with open(seg, "ab") as fh:
        fh.write(pack({"community": "c", "corrects_after": 5, "corrections": []}))
    with pytest.raises(LedgerError, match="out of place"):
        Ledger(tmp_path, "c")
