"""The broker options shared by ``p2pgrid live``, ``agents`` and ``meters emulate``: one
group, declared once (:func:`broker_options`).

A command declares one parameter, ``broker: BrokerOptions = BROKER_GROUP``; the decorator puts the
group's options (``--broker``, ``--tls``, ``--cafile``, ``--certfile``, ``--keyfile``,
``--insecure``, ``--username``, ``--password``) in its place on the command line and
hands the command their values together. The command calls :meth:`BrokerOptions.config`
where it wants the connection settings, so a bad ``--broker`` is reported where it
always was (after the scenario file's own problems).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Annotated, Any

import typer

from p2pgrid.console import fail

if TYPE_CHECKING:
    from live.bus import BrokerConfig


@dataclass(frozen=True)
class BrokerOptions:
    """The values of the broker options, as given (``broker``: the URL)."""

    broker: Annotated[
        str | None,
        typer.Option(
            "--broker",
            help="mqtt://user:pass@host:port or mqtts://… (default: embedded broker).",
        ),
    ] = None
    tls: Annotated[bool, typer.Option("--tls", help="Connect with TLS.")] = False
    cafile: Annotated[str | None, typer.Option("--cafile", help="CA certificate (PEM).")] = None
    certfile: Annotated[
        str | None, typer.Option("--certfile", help="Client certificate (PEM).")
    ] = None
    keyfile: Annotated[str | None, typer.Option("--keyfile", help="Client key (PEM).")] = None
    insecure: Annotated[bool, typer.Option("--insecure", help="Do not verify the server.")] = False
    username: Annotated[str | None, typer.Option("--username", help="Broker username.")] = None
    password: Annotated[
        str | None,
        typer.Option(
            "--password",
            envvar="P2PGRID_MQTT_PASSWORD",
            help="Broker password (or $P2PGRID_MQTT_PASSWORD).",
        ),
    ] = None

    def config(self) -> BrokerConfig | None:
        """The connection settings; None without ``--broker``; a bad URL exits (code 2)."""
        from live.bus import BrokerConfig, BrokerUrlError

        if self.broker is None:
            return None
        try:
            return BrokerConfig.from_url(
                self.broker,
                tls=self.tls,
                cafile=self.cafile,
                certfile=self.certfile,
                keyfile=self.keyfile,
                insecure=self.insecure,
                username=self.username,
                password=self.password,
            )
        except BrokerUrlError as exc:
            raise fail(f"--broker: {exc}") from None


#: What a command declares as its ``broker`` parameter's default (the decorator replaces
#: the parameter, so the command always receives the options given).
BROKER_GROUP = BrokerOptions()


def _group() -> list[inspect.Parameter]:
    hints = inspect.get_annotations(BrokerOptions, eval_str=True)
    return [
        inspect.Parameter(
            f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=hints[f.name],
            default=f.default,
        )
        for f in fields(BrokerOptions)
    ]  # fmt: skip


def broker_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The command with the broker options in place of its ``broker`` parameter."""
    signature = inspect.signature(command, eval_str=True)
    params: list[inspect.Parameter] = []
    for param in signature.parameters.values():
        params += _group() if param.name == "broker" else [param]
    names = [f.name for f in fields(BrokerOptions)]

    @functools.wraps(command)
    def with_group(**kwargs: Any) -> Any:
        group = BrokerOptions(**{name: kwargs.pop(name) for name in names})
        return command(broker=group, **kwargs)

    grouped = signature.replace(parameters=params)
    with_group.__signature__ = grouped  # type: ignore[attr-defined]  # typer reads it (inspect)
    with_group.__annotations__ = {p.name: p.annotation for p in params} | {
        "return": signature.return_annotation
    }
    return with_group
