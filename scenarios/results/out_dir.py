"""The directory a command writes into (``--out``, ``--state``)."""

from __future__ import annotations

from pathlib import Path

from scenarios.errors import ScenarioError


def make_out_dir(path: str | Path, option: str = "--out") -> Path:
    """Create ``path`` (and its parents) unless it is already a directory.

    Raises
    ------
    ScenarioError
        Naming ``option`` and ``path`` when a file stands where the directory (or one of
        its parents) should be, or the directory cannot be created.
    """
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        problem = "is a file, not a directory"
    except NotADirectoryError:
        parent = next(p for p in out.parents if p.exists() and not p.is_dir())
        problem = f"cannot be a directory: {str(parent)!r} is a file"
    except OSError as exc:
        problem = f"cannot be created ({exc.strerror or exc})"
    else:
        return out
    raise ScenarioError([f"{option} {str(out)!r} {problem}"])
