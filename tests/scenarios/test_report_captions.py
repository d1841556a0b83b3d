"""The report's captions say what happened to the limits, never that none broke when some did."""

import pandas as pd

from scenarios.reports.run import _why_no_nodal_prices


def test_caption_without_nodal_prices_names_broken_limits() -> None:
    calm = pd.DataFrame({"violations_before_reclear": [0, 0], "violations_background": [0, 0]})
    assert _why_no_nodal_prices(calm) == "none: no limit was broken"
    stressed = pd.DataFrame(
        {"violations_before_reclear": [3, 0, 5, 1], "violations_background": [3, 0, 0, 0]}
    )
    text = _why_no_nodal_prices(stressed)
    assert "no limit was broken" not in text
    assert text.startswith("none: 3 intervals broke a limit, 1 of them by the feeder's own load")
