"""The offline HTML pages: a run's report, the comparison and the sweep page."""
