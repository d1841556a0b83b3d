"""The broker options are one group (p2pgrid/broker_options.py) on the three commands
that connect to a broker, with the same names, help and defaults on each."""

from __future__ import annotations

import typer
from typer.main import get_command
from typer.testing import CliRunner

from live.bus import BrokerConfig
from p2pgrid.broker_options import BROKER_GROUP, BrokerOptions, broker_options
from p2pgrid.cli import app

GROUP = ["--broker", "--tls", "--cafile", "--certfile", "--keyfile", "--insecure",
         "--username", "--password"]  # fmt: skip


def _options(*path: str) -> list[tuple[str, str | None, object]]:
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]  # click groups
    return [
        (p.opts[0], p.help, p.default)  # type: ignore[attr-defined]  # click options
        for p in command.params
        if p.opts[0] in GROUP
    ]


def test_the_three_commands_share_one_group() -> None:
    live = _options("live")
    assert [name for name, _, _ in live] == GROUP
    assert _options("agents") == live
    assert _options("meters", "emulate") == live


def test_the_group_reaches_the_command_as_one_value() -> None:
    got: list[BrokerOptions] = []
    demo = typer.Typer()

    @demo.command()
    @broker_options
    def connect(name: str, broker: BrokerOptions = BROKER_GROUP, loud: bool = False) -> None:
        got.append(broker)
        assert (name, loud) == ("x", True)

    args = ["x", "--broker", "mqtts://ann:pw@example.org", "--cafile", "ca.pem", "--loud"]
    result = CliRunner().invoke(demo, args)
    assert result.exit_code == 0, result.output
    assert got[0].config() == BrokerConfig(
        host="example.org", port=8883, username="ann", password="pw", tls=True, cafile="ca.pem"
    )
    assert BROKER_GROUP.config() is None  # no --broker: the embedded broker


def test_a_bad_broker_url_names_the_option() -> None:
    result = CliRunner().invoke(demo_app(), ["--broker", "ftp://host"])
    assert result.exit_code == 2
    assert "--broker: " in result.output


def demo_app() -> typer.Typer:
    demo = typer.Typer()

    @demo.command()
    @broker_options
    def connect(broker: BrokerOptions = BROKER_GROUP) -> None:
        broker.config()

    return demo
