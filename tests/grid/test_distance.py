"""Electrical distance between buses of a radial feeder, checked by hand."""

import numpy as np
import pytest

from grid import electrical_distance_pu, load_feeder, path_branches
from market import distance_fee_per_kwh


def test_radial_feeder_distances_by_hand() -> None:
    # radial:6: mv -trafo- lv -main- f1c1 -service- f1h1, f1c1 -main- f1c2 -service- f1h2.
    feeder = load_feeder("radial:6", households=6)
    buses = list(feeder.buses["bus"])
    lines = feeder.lines.set_index("line")
    z_base = 0.4**2 / 1.0  # 0.4 kV, 1000 kVA base: 0.16 ohm

    def z(name: str) -> complex:
        return complex(lines.at[name, "r_ohm"], lines.at[name, "x_ohm"]) / z_base

    d = electrical_distance_pu(feeder)
    h1, h2 = buses.index("f1h1"), buses.index("f1h2")
    # the path between the two household buses: service, main segment, service
    expected = abs(z("f1c1-f1h1") + z("f1c1-f1c2") + z("f1c2-f1h2"))
    assert d[h1, h2] == pytest.approx(expected, rel=1e-12)
    assert d[h2, h1] == d[h1, h2]
    # from the LV busbar to f1h2: main, main, service
    lv = buses.index("lv")
    assert d[lv, h2] == pytest.approx(abs(z("lv-f1c1") + z("f1c1-f1c2") + z("f1c2-f1h2")))
    # across the transformer (impedance referred to the LV side, 0.4 kV)
    mv = buses.index("mv")
    assert d[mv, lv] == pytest.approx(abs(z("trafo")), rel=1e-12)
    np.testing.assert_array_equal(np.diag(d), 0.0)
    assert path_branches(feeder).sum(axis=1)[h2] == 4  # trafo, two mains, service


def test_ieee33_distance_is_symmetric_and_additive_along_a_branch() -> None:
    feeder = load_feeder("ieee33", households=10)
    d = electrical_distance_pu(feeder)
    np.testing.assert_allclose(d, d.T)
    # |z| of a path is at most the sum over its parts, and equals |Σ r + j Σ x| of its lines
    assert d[0, 17] <= d[0, 5] + d[5, 17] + 1e-12
    lines = feeder.lines
    on_path = path_branches(feeder)[17]
    r = lines.r_ohm.to_numpy()[on_path].sum()
    x = lines.x_ohm.to_numpy()[on_path].sum()
    assert d[0, 17] == pytest.approx(abs(complex(r, x)) / (12.66**2 / 1.0), rel=1e-12)


def test_distance_fee_from_base_to_base_plus_extra() -> None:
    d = np.array([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])
    fee = distance_fee_per_kwh(d, np.array([1, 2]), 0.03, 0.02)
    # d_max over the household buses 1 and 2 is 2.0
    assert fee[1, 2] == pytest.approx(0.05)
    assert fee[1, 1] == pytest.approx(0.03)
    assert fee[0, 1] == pytest.approx(0.03 + 0.02 * 0.5)
    same_bus = distance_fee_per_kwh(d, np.array([1]), 0.03, 0.02)
    np.testing.assert_array_equal(same_bus, 0.03)
