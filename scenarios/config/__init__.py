"""Scenario configuration: the schema, its [live] section, the loader, preflight checks."""
