"""p2pgrid: peer-to-peer energy trading on a distribution feeder."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("p2pgrid")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
