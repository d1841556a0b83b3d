"""The Pyomo private maps behind one guard (grid/highs_direct.py): the stock path, forced by
``P2PGRID_STOCK_THIRD_PARTY=1`` or taken outside the tested Pyomo versions (with a
warning), solves the same books as the fast path."""

from __future__ import annotations

import numpy as np
import pytest

from grid import FeederModel, assign_households, highs_direct, load_feeder
from grid.highs_direct import STOCK_ENV, ThirdPartyVersionWarning, pyomo_tested, stock_forced
from market.orders import Side

H = 0.25


def _book(f, seed: int) -> tuple[tuple, dict]:
    """200 orders on ieee33 at its peak background: sells with curtailable PV, some
    flexible, deferrable load everywhere (a book that binds limits)."""
    rng = np.random.default_rng(seed)
    bus = assign_households(f, 200, seed)
    sell = rng.uniform(size=200) < 0.5
    kwh = rng.uniform(0.05, 6.0, 200)
    curt = np.bincount(bus[sell], weights=kwh[sell] / H, minlength=f.n_bus)
    args = (f.background_injection_kw(1.0), f.background_injection_kvar(1.0), bus,
            np.where(sell, Side.SELL, Side.BUY), kwh, rng.uniform(0.08, 0.29, 200), curt,
            0.30, 0.08, H)  # fmt: skip
    kw = {
        "order_flexible": rng.uniform(size=200) < 0.3,
        "deferrable_kw": np.bincount(bus, weights=rng.uniform(0, 5, 200), minlength=f.n_bus),
    }
    return args, kw


def _solve_twice(model: FeederModel, books: list) -> list:
    """Check and clear every book twice (the second time on the direct path, if any)."""
    out = []
    for args, kw in books + books:
        chk = model.check(args[0], args[1], force_solve=True)
        out.append((chk, model.clear_constrained(*args, **kw)))
    return out


def test_forced_stock_path_solves_like_the_fast_path(monkeypatch) -> None:
    f = load_feeder("ieee33", households=200)
    books = [_book(f, seed) for seed in (1, 2)]
    monkeypatch.delenv(STOCK_ENV, raising=False)
    fast = FeederModel(f)
    fast_out = _solve_twice(fast, books)
    monkeypatch.setenv(STOCK_ENV, "1")
    stock = FeederModel(f)
    stock_out = _solve_twice(stock, books)
    assert fast._direct is not None and fast._clearing._highs is not None
    assert stock._direct is None and stock._clearing._highs is None
    assert not stock.direct_updates and not stock._clearing.direct
    congested = 0
    for (ca, a), (cb, b) in zip(fast_out, stock_out, strict=True):
        np.testing.assert_allclose(ca.v_pu, cb.v_pu, atol=1e-8)
        np.testing.assert_allclose(a.order_filled_kwh, b.order_filled_kwh, atol=1e-7)
        np.testing.assert_allclose(a.curtailed_kw, b.curtailed_kw, atol=1e-7)
        np.testing.assert_allclose(a.deferred_kw, b.deferred_kw, atol=1e-7)
        np.testing.assert_allclose(a.nodal_price_per_kwh, b.nodal_price_per_kwh, atol=1e-7)
        assert a.welfare == pytest.approx(b.welfare, abs=1e-7)
        congested += int(a.deferred_kw.sum() + a.curtailed_kw.sum() > 1.0)
    assert congested > 0  # the books bind limits: the solves are not trivial


def test_an_untested_pyomo_warns_and_takes_the_stock_path(monkeypatch) -> None:
    monkeypatch.delenv(STOCK_ENV, raising=False)
    import pyomo.version  # grid.highs_direct imports it when a model is first solved

    monkeypatch.setattr(pyomo.version, "version_info", (6, 9, 0, "final", 0))
    monkeypatch.setattr(pyomo.version, "version", "6.9.0")
    highs_direct._warn_untested.cache_clear()
    model = FeederModel(load_feeder("radial:12", households=12))
    p = np.full(model.feeder.n_bus, -30.0)
    with pytest.warns(ThirdPartyVersionWarning, match=r"Pyomo 6\.9\.0 is outside .*6\.10"):
        a = model.check(p, np.zeros_like(p), force_solve=True)
    b = model.check(p, np.zeros_like(p), force_solve=True)  # warned once per version
    assert model._direct is None and not model.direct_updates
    np.testing.assert_array_equal(a.v_pu, b.v_pu)
    highs_direct._warn_untested.cache_clear()


def test_the_tested_range_and_the_switch() -> None:
    assert pyomo_tested((6, 10, 1)) and not pyomo_tested((6, 9, 3)) and not pyomo_tested((7, 0))
    assert pyomo_tested()  # the installed Pyomo is the tested one


@pytest.mark.parametrize(("value", "forced"), [("", False), ("0", False), ("1", True),
                                                ("yes", True)])  # fmt: skip
def test_the_environment_switch(monkeypatch, value: str, forced: bool) -> None:
    monkeypatch.setenv(STOCK_ENV, value)
    assert stock_forced() is forced
