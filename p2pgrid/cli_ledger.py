"""``p2pgrid ledger``: verify an audit ledger, cut a household's bill, look into a dispute.

Registered on the main app by :func:`register`. ``verify`` exits 0 when everything
holds and 1 when something does not (the first line then reads ``ledger: interval <t>
(entry <seq>): <what>``); a path that holds no ledger, or a bill file that is not JSON,
exits 2 (the user's mistake).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from p2pgrid.console import console, fail

ledger_app = typer.Typer(
    help="Audit ledgers: verify a ledger or a bill, cut bills, show a dispute.",
    no_args_is_help=True,
)

DirArg = Annotated[
    Path, typer.Argument(help="A ledger/ folder, or a folder holding one (a run's --out).")
]
HouseholdOpt = Annotated[str, typer.Option("--household", help="The household's agent id.")]


def _json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise fail(f"{what} {str(path)!r}: not a JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise fail(f"{what} {str(path)!r}: not a JSON object")
    return data


def _ledger(path: Path) -> Path:
    from scenarios.audit.ledger import LedgerFormatError, ledger_dir

    try:
        return ledger_dir(path)
    except LedgerFormatError as exc:
        raise fail(exc) from None


def verify(
    directory: Annotated[
        Path | None, typer.Argument(help="A ledger/ folder or a folder holding one.")
    ] = None,
    bill: Annotated[
        Path | None, typer.Option("--bill", help="Check this bill file alone instead.")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="A trusted checkpoint (JSON) the bill's must equal."),
    ] = None,
    market_key: Annotated[
        str | None,
        typer.Option("--market-key", help="The market's public key (base64) to trust."),
    ] = None,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay/--no-replay", help="Re-run every interval (default) or check hashes only."
        ),
    ] = True,
) -> None:
    """Re-check a whole ledger (chain, checkpoints, signatures, replay), or one bill."""
    if bill is not None:
        _verify_bill(bill, checkpoint, market_key)
        return
    if directory is None:
        raise fail("give a ledger folder, or --bill FILE")
    from scenarios.audit.verify import verify as verify_ledger

    report = verify_ledger(_ledger(directory), replay=replay)
    if not report.ok:
        for problem in report.problems[:20]:
            console.print(problem.line(), soft_wrap=True)
        if len(report.problems) > 20:
            console.print(f"… and {len(report.problems) - 20} more problems")
        raise typer.Exit(code=1)
    s = report.seconds
    console.print(
        f"ledger: ok: {report.entries} entries ({report.intervals} intervals, "
        f"{report.corrections} corrections), {report.checkpoints} checkpoints, "
        f"{report.signatures} signatures, {len(report.erased)} signed messages erased, "
        f"{report.registers} intervals' meter registers compared, "
        f"{report.uncheckpointed} entries not yet under a checkpoint",
        soft_wrap=True,
    )
    console.print(
        f"time: read and hash {s['read']:.2f} s, signatures {s['signatures']:.2f} s, "
        f"replay {s['replay']:.2f} s, checkpoints {s['checkpoints']:.2f} s"
        + ("" if replay else " (not replayed: --no-replay)")
    )


def _verify_bill(path: Path, checkpoint: Path | None, market_key: str | None) -> None:
    from scenarios.audit.bills import verify_bill

    bill = _json(path, "--bill")
    trusted = _json(checkpoint, "--checkpoint") if checkpoint is not None else None
    check = verify_bill(bill, trusted, market_key)
    if not check.ok:
        for problem in check.problems:
            console.print(f"bill: {problem}", soft_wrap=True)
        raise typer.Exit(code=1)
    console.print(
        f"bill: ok: {bill.get('agent')}, {check.items} settlements, total_cost "
        f"{check.total_cost:.6f}, checkpoint {bill['checkpoint'].get('seq')} signed by market "
        f"key {check.fingerprint}",
        soft_wrap=True,
    )
    if trusted is None and market_key is None:
        console.print(
            "note: checked against the key inside the bill; it proves the bill only if you "
            "trust that key (compare its fingerprint, or pass --market-key / --checkpoint)",
            soft_wrap=True,
        )


def bill(
    directory: DirArg,
    household: HouseholdOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the bill (JSON).")],
    checkpoint: Annotated[
        int | None,
        typer.Option("--checkpoint", help="The checkpoint's number (default: the last)."),
    ] = None,
) -> None:
    """Write a household's bill with its proofs under one checkpoint."""
    from scenarios.audit.bills import bills_of
    from scenarios.audit.ledger import read_checkpoints

    path = _ledger(directory)
    cps = read_checkpoints(path)
    if not cps:
        raise fail(f"{path}: no checkpoint yet")
    k = len(cps) - 1 if checkpoint is None else checkpoint
    if not 0 <= k < len(cps):
        raise fail(f"--checkpoint {k}: the ledger has checkpoints 0-{len(cps) - 1}")
    found = bills_of(path, cps[k]).get(household)
    if found is None:
        raise fail(f"--household {household!r}: not settled under checkpoint {k}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(found, indent=1), encoding="utf-8")
    console.print(
        f"bill: {household}, checkpoint {k}, {len(found['items'])} settlements, total_cost "
        f"{found['total_cost']:.6f} -> {out}",
        soft_wrap=True,
    )


def dispute(
    directory: DirArg,
    household: HouseholdOpt,
    interval: Annotated[int, typer.Option("--interval", help="The interval index t.")],
) -> None:
    """Print everything that bears on a household's bill for one interval."""
    from scenarios.audit.dispute import DisputeError
    from scenarios.audit.dispute import dispute as gather

    try:
        found = gather(_ledger(directory), household, interval)
    except DisputeError as exc:
        raise fail(exc) from None
    for line in found.lines():
        console.print(line, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``p2pgrid ledger verify | bill | dispute`` to the ``p2pgrid`` app."""
    ledger_app.command("verify")(verify)
    ledger_app.command("bill")(bill)
    ledger_app.command("dispute")(dispute)
    app.add_typer(ledger_app, name="ledger")
