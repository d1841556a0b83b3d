"""Which ``clock`` drives a client: only the clock of the run it takes part in.

Every run of the market carries a run id in its ``clock`` (the ledger's, so a restarted
market keeps it). A persistent broker keeps the retained clock of an earlier run — a
finished one (``done``) or a market killed mid-run — and hands it to every client that
subscribes; that clock must never drive a client (make it stop, or plan for a run
nobody clears).

A client that is told its run (the market's own process passes it) accepts only that
run's clocks. A client that is not adopts the run of the first clock that is live: a
clock published while it is subscribed, or a retained one whose gate is still open
(``gate_closes_at`` in the future, or null: a client joining a running market). A
retained ``done`` clock, or one whose gate has closed, is an earlier run's: ignored. A
run adopted from a retained clock is provisional: a market killed with its gate still
open (or after re-announcing a clock with a null gate) leaves a clock that looks open,
so the first live clock of another run replaces it; a live clock of the adopted run
confirms it.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any


class RunFilter:
    def __init__(self, run: str | None = None) -> None:
        self.run = run
        self.provisional = False
        """The run was adopted from a retained clock: a live clock of another replaces it."""
        self.ignored = 0
        """Clocks ignored (another run's, or stale retained ones)."""

    def accept(self, clock: dict[str, Any], retained: bool) -> bool:
        """Whether ``clock`` (delivered as retained or live) drives this client."""
        run = clock.get("run")
        if not isinstance(run, str):
            ok = False
        elif run == self.run:
            ok = True
            self.provisional = self.provisional and retained
        elif self.run is not None and (retained or not self.provisional):
            ok = False
        else:
            ok = not retained or (not clock.get("done") and _gate_open(clock))
            if ok:
                self.run, self.provisional = run, retained
        self.ignored += not ok
        return ok


def _gate_open(clock: dict[str, Any]) -> bool:
    gate = clock.get("gate_closes_at")
    if gate is None:  # asked again after a reconnect: open until the market closes it
        return True
    try:
        return datetime.fromisoformat(str(gate)).timestamp() > time.time()
    except ValueError:
        return False
