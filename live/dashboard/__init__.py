"""The p2pgrid web dashboard: a finished run or a live market in the browser.

    from live.dashboard import RunSource, read_run, start_dashboard
    server = start_dashboard(RunSource(read_run("results/demo"), replay_speed=4))
    print(server.url); ...; server.stop()

``serve_dashboard(source, host, port, token)`` runs it in the foreground (the CLI);
``start_dashboard`` in a background thread (``p2pgrid live … --dashboard``).
"""

from live.dashboard.app import create_app
from live.dashboard.mqtt_source import MqttSource
from live.dashboard.rundata import RunData, RunDirError, read_run
from live.dashboard.server import DashboardServer, serve_dashboard, start_dashboard
from live.dashboard.sources import EventLog, RunSource, Source

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
