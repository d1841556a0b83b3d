"""The p2pgrid web dashboard: a finished run or a live market in the browser.

    from live.dashboard import RunSource, read_run, start_dashboard
    server = start_dashboard(RunSource(read_run("results/demo"), replay_speed=4))
    print(server.url); ...; server.stop()

``serve_dashboard(source, host, port, token)`` runs it in the foreground (the CLI);
``start_dashboard`` in a background thread (``p2pgrid live … --dashboard``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from market.lazy import lazy_namespace

if TYPE_CHECKING:
    from live.dashboard.app import create_app
    from live.dashboard.mqtt_source import MqttSource
    from live.dashboard.rundata import RunData, RunDirError, read_run
    from live.dashboard.server import DashboardServer, serve_dashboard, start_dashboard
    from live.dashboard.sources import EventLog, RunSource, Source

#: Public name -> the submodule defining it, imported on first use (PEP 562), so that
#: importing one submodule (or the CLI's --help) does not import the whole package.
_EXPORTS = {
    "DashboardServer": "live.dashboard.server",
    "EventLog": "live.dashboard.sources",
    "MqttSource": "live.dashboard.mqtt_source",
    "RunData": "live.dashboard.rundata",
    "RunDirError": "live.dashboard.rundata",
    "RunSource": "live.dashboard.sources",
    "Source": "live.dashboard.sources",
    "create_app": "live.dashboard.app",
    "read_run": "live.dashboard.rundata",
    "serve_dashboard": "live.dashboard.server",
    "start_dashboard": "live.dashboard.server",
}

__all__ = [
    "DashboardServer",
    "EventLog",
    "MqttSource",
    "RunData",
    "RunDirError",
    "RunSource",
    "Source",
    "create_app",
    "read_run",
    "serve_dashboard",
    "start_dashboard",
]


__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS, globals())
