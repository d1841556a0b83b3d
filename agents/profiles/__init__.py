"""Time series the households live by: load and PV profiles, the weather, SimBench profiles."""
