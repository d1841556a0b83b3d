"""Studies over many runs: mechanism comparison, parameter sweeps, hosting capacity."""
