"""``p2pgrid keys new | show``: Ed25519 key pairs for households, meters and the market.

``keys new FILE --out DIR`` writes one key pair per household of the scenario (agent ids
``h0001`` …, as :func:`scenarios.config.schema_live.household_ids`), per meter of its
``[[live.meters]]`` (by meter id; ``--no-meters`` leaves them out; not for an ``ocmf``
meter, which signs with its own key, its ``public_key``) and for the market
(``market``, the key of the ledger's checkpoints); ``--households N`` instead of FILE:
``N`` households and the market. Into DIR go every private key, ``<id>.key`` (mode
0600: give each household and meter its own and keep the rest), and ``keys.json``, the
public key registry that the scenario's ``[live] keys`` names (:mod:`scenarios.audit.keys`).
DIR that already holds keys is refused unless ``--force``.

``keys show DIR``: each registered id, its key's fingerprint (the first 16 hex digits of
the SHA-256 of the public key) and whether DIR holds its private key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from p2pgrid.console import console, fail
from p2pgrid.options import SetOption, overrides

REGISTRY = "keys.json"


def key_ids(households: int, meters: list[str]) -> list[str]:
    """The ids to make keys for: the households, the meters, then the market; raises
    ValueError when a meter id is also a household's or the market's."""
    from scenarios.audit.keys import MARKET_KEY
    from scenarios.config.schema_live import household_ids

    homes = household_ids(households)
    clash = sorted(set(meters) & {*homes, MARKET_KEY})
    if clash:
        raise ValueError(
            f"meter id {clash[0]!r} is also a household's or the market's key id: rename "
            "the meter (a key id names one signer)"
        )
    return [*homes, *meters, MARKET_KEY]


def register(app: typer.Typer) -> None:
    """Add ``p2pgrid keys`` to the main app."""
    keys_app = typer.Typer(help="Signing keys: households, meters, market.", no_args_is_help=True)
    app.add_typer(keys_app, name="keys")

    @keys_app.command("new")
    def new(
        file: Annotated[Path | None, typer.Argument(help="Scenario file (TOML or YAML).")] = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="Key directory.")] = Path("keys"),
        households: Annotated[
            int | None,
            typer.Option("--households", min=1, help="Keys for N households (without FILE)."),
        ] = None,
        meters: Annotated[
            bool, typer.Option("--meters/--no-meters", help="Keys for FILE's [[live.meters]].")
        ] = True,
        force: Annotated[bool, typer.Option("--force", help="Replace keys in DIR.")] = False,
        set_: SetOption = None,
    ) -> None:
        """Make a key pair for every household, meter and the market."""
        from scenarios.audit.keys import KeyPair, Registry
        from scenarios.config.loader import load_scenario
        from scenarios.errors import ScenarioError

        if (file is None) == (households is None):
            raise fail("give a scenario FILE or --households N (one of them)")
        meter_ids: list[str] = []
        if file is not None:
            try:
                scenario = load_scenario(file, overrides(set_))
            except ScenarioError as exc:
                raise fail(exc) from None
            n = scenario.community.households
            # an ocmf meter signs with its own key (its public_key): none made for it
            wrapping = [m.id for m in scenario.live.meters if not m.public_key]
            meter_ids = wrapping if meters else []
        else:
            assert households is not None
            n = households
        try:
            ids = key_ids(n, meter_ids)
        except ValueError as exc:
            raise fail(exc) from None
        if out.exists() and not out.is_dir():
            raise fail(f"--out: {out} is a file, not a directory")
        if not force and out.is_dir():
            held = [p.name for p in sorted(out.iterdir()) if p.suffix == ".key"]
            if held or (out / REGISTRY).exists():
                first = (held or [REGISTRY])[0]
                raise fail(
                    f"--out: {out} already holds keys ({first} …): use another directory, "
                    "or --force to replace them"
                )
        registry = Registry()
        for key_id in ids:
            pair = KeyPair.new(key_id)
            pair.save(out / f"{key_id}.key")
            registry.add(key_id, pair.public_b64)
        registry.save(out / REGISTRY)
        console.print(
            f"{len(ids)} key pairs ({n} households, {len(meter_ids)} meters, market) in {out}; "
            f"public keys: {out / REGISTRY} (the scenario's [live] keys)",
            highlight=False,
            soft_wrap=True,
        )

    @keys_app.command("show")
    def show(directory: Annotated[Path, typer.Argument(help="Key directory.")]) -> None:
        """Print every registered id, its key's fingerprint and whether DIR holds its
        private key."""
        from scenarios.audit.keys import KeyError_, Registry, fingerprint

        path = directory / REGISTRY if directory.is_dir() else directory
        try:
            registry = Registry.load(path)
        except KeyError_ as exc:
            raise fail(exc) from None
        folder = path.parent
        for key_id in registry.ids():
            private = "private key" if (folder / f"{key_id}.key").is_file() else "public only"
            console.print(
                f"{key_id:16s} {fingerprint(registry.public_b64(key_id))}  {private}",
                highlight=False,
            )
        console.print(f"{len(registry)} keys in {path}", highlight=False)
