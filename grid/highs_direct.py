"""Pyomo's persistent HiGHS interface, and the one place that reaches behind it.

The feeder model's check and clearing solve on Pyomo's persistent HiGHS interface
(:func:`make_solver`, public API). Their fast path (``direct_updates``, see
:class:`grid.lindistflow.FeederModel`) writes each interval's bounds and costs straight
into the HiGHS instance Pyomo built and reads the solution back as arrays; for that it
needs the instance and Pyomo's maps from its constraints and variables to HiGHS rows and
columns, which are private attributes of the interface (``_solver_model``,
``_pyomo_con_to_solver_con_map``, ``_pyomo_var_to_solver_var_map``). Only
:func:`direct_model` reads them, and only

- when the installed Pyomo is in the tested range (:data:`TESTED_PYOMO`, major.minor);
  outside it a :class:`ThirdPartyVersionWarning` says so and the stock path is used;
- when the environment does not force the stock paths (``P2PGRID_STOCK_THIRD_PARTY=1``,
  :data:`STOCK_ENV`, shared with the other third-party guards; CI runs the suite once so).

Otherwise, or when the attributes are missing, it returns ``None`` and the caller stays on
the stock path: the interface's own ``solve`` with parameter updates, which gives the
same solutions (``tests/grid/test_highs_direct.py``), only slower.
"""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from pyomo.contrib.solver.solvers.highs import Highs

#: The Pyomo versions (major, minor) whose private maps the fast path was tested with.
TESTED_PYOMO = ((6, 10),)
#: Environment variable that forces every third-party fallback (any value but "" or "0").
STOCK_ENV = "P2PGRID_STOCK_THIRD_PARTY"


class ThirdPartyVersionWarning(UserWarning):
    """An installed third-party package is outside the range its fast path was tested on."""


def stock_forced() -> bool:
    """Whether the environment forces the stock third-party paths."""
    return os.environ.get(STOCK_ENV, "").strip() not in ("", "0")


def make_solver() -> Highs:
    """A persistent HiGHS solver with change detection reduced to parameter updates."""
    from pyomo.contrib.solver.solvers.highs import Highs

    opt = Highs()
    au = opt.config.auto_updates
    au.check_for_new_or_removed_constraints = False
    au.check_for_new_or_removed_vars = False
    au.check_for_new_or_removed_params = False
    au.check_for_new_objective = False
    au.update_constraints = False
    au.update_vars = False
    au.update_named_expressions = False
    au.update_objective = False
    au.update_parameters = True
    opt.config.load_solutions = False
    opt.config.raise_exception_on_nonoptimal_result = True
    return opt


@functools.cache
def _warn_untested(version: str) -> None:
    warnings.warn(
        f"Pyomo {version} is outside the range the direct HiGHS path was tested with "
        f"({', '.join(f'{a}.{b}' for a, b in TESTED_PYOMO)}): the feeder model uses Pyomo's "
        "stock persistent solve (same results, slower)",
        ThirdPartyVersionWarning,
        stacklevel=3,
    )


def pyomo_tested(version_info: tuple[Any, ...] | None = None) -> bool:
    """Whether the Pyomo version (default: the installed one) is in the tested range."""
    import pyomo.version

    info = pyomo.version.version_info if version_info is None else version_info
    return (int(info[0]), int(info[1])) in TESTED_PYOMO


@dataclass(frozen=True)
class DirectModel:
    """The HiGHS instance a persistent interface built, and its row and column maps."""

    highs: Any
    _row_of: Any
    _col_of: Any

    def rows(self, constraints: list[Any]) -> np.ndarray:
        """HiGHS row of each Pyomo constraint."""
        return np.array([self._row_of[c] for c in constraints], dtype=np.int32)

    def cols(self, variables: list[Any], dtype: type = np.int32) -> np.ndarray:
        """HiGHS column of each Pyomo variable."""
        return np.array([self._col_of[id(v)] for v in variables], dtype=dtype)


def direct_model(opt: Highs) -> DirectModel | None:
    """The HiGHS model behind ``opt`` (after its first solve), or ``None`` for the stock
    path (forced, an untested Pyomo version, or a Pyomo without these attributes)."""
    if stock_forced():
        return None
    if not pyomo_tested():
        import pyomo.version

        _warn_untested(pyomo.version.version)
        return None
    try:
        return DirectModel(
            opt._solver_model, opt._pyomo_con_to_solver_con_map, opt._pyomo_var_to_solver_var_map
        )
    except AttributeError:  # renamed within a tested minor version: stay on the stock path
        return None
