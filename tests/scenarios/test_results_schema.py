"""The results schema (scenarios/results/schema.py) is the one table the files, the live
payloads and the README follow: the stored golden results have exactly its columns and
dtypes, every live field it names is in the AsyncAPI contract, and the README's table of
results columns is the table rendered."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agents.households.table import FILE_COLUMNS, Households
from live.contract import contract
from live.payloads import RESULT_FIELDS, SETTLEMENT_FIELDS
from scenarios.results.schema import (
    AGENTS_FILE,
    ARROW,
    COLUMNS,
    FILES,
    HOUSEHOLDS_FILE,
    INTERVALS_FILE,
    columns,
    names,
)
from scenarios.results.schema_docs import render_markdown

ROOT = Path(__file__).resolve().parents[2]
#: households.parquet's columns before the schema's (Households.to_frame, with the bus)
STATIC = ["agent_id", "bus", *(FILE_COLUMNS.get(f.name, f.name) for f in fields(Households)[1:])]
GOLDEN = ROOT / "tests" / "golden"
#: the conditions each golden case's scenario meets (tests/golden/cases.py)
WHENS = {
    "demo": ("grid", "grid_or_null", "books"),
    "stressed": ("grid", "grid_or_null", "books"),
    "ieee33-winter": ("grid", "grid_or_null", "ac"),
    "no-grid": ("grid_or_null",),
}


def test_readme_table_of_results_columns_is_the_schema_rendered() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(
        r"<!-- results-columns:begin -->\n(.*?)<!-- results-columns:end -->", text, re.S
    )
    assert found, "README.md has no results-columns markers"
    assert found.group(1) == render_markdown(), (
        "README's results columns differ from scenarios/results/schema.py: paste "
        "`python -m scenarios.results.schema` between the markers"
    )


def test_rendered_table_has_a_row_per_column() -> None:
    rows = [line for line in render_markdown().splitlines() if line.startswith("| `")]
    assert len(rows) == len(COLUMNS)
    assert "| `market_surplus` | float64 | currency |  | always | `market_surplus` |" in (
        render_markdown()
    )


@pytest.mark.parametrize("case", sorted(WHENS))
def test_golden_files_have_the_schema_columns_and_dtypes(case: str) -> None:
    whens = WHENS[case]
    written = {p.name for p in (GOLDEN / case).glob("*.parquet")}
    assert written == {f for f in FILES if any(c.when in ("", *whens) for c in columns(f))}, case
    # households.parquet: the household table's own columns, then the schema's
    scored = pq.read_schema(GOLDEN / case / HOUSEHOLDS_FILE).names
    assert scored[: len(STATIC)] == STATIC and scored[len(STATIC) :] == list(
        names(HOUSEHOLDS_FILE)
    ), case
    for file in sorted(written - {HOUSEHOLDS_FILE}):
        schema = pq.read_schema(GOLDEN / case / file)
        want = names(file, *whens) if file == INTERVALS_FILE else names(file, "grid", "books")
        assert schema.names == list(want), f"{case}/{file}"
        for c in columns(file):
            if c.name not in schema.names:
                continue
            got = schema.field(c.name).type
            if c.dtype == "timestamp":
                assert pa.types.is_timestamp(got) and got.tz, f"{case}/{file}:{c.name}"
            elif c.dtype == "float32" and got == pa.float64():
                # written before agents.parquet's states were narrowed: test_golden.py
                # compares a fresh run's float32 to these at float32's precision
                assert file == AGENTS_FILE, f"{case}/{file}:{c.name}"
            else:
                assert got == ARROW[c.dtype], f"{case}/{file}:{c.name}: {got} vs {c.dtype}"


def test_every_published_field_is_in_the_asyncapi_contract() -> None:
    schemas = contract().document["components"]["schemas"]
    result = schemas["Result"]["properties"]
    grid = schemas["GridState"]["oneOf"][1]["properties"]
    settlement = schemas["Settlement"]["properties"]
    for c in RESULT_FIELDS:
        nested, field = c.live.startswith("grid."), c.live.removeprefix("grid.")
        assert field in (grid if nested else result), f"market/result lacks {c.live}"
    for c in SETTLEMENT_FIELDS:
        assert c.live in settlement, f"the settlement lacks {c.live}"
    # welfare and the market surplus were batch-only before the one table
    assert {"welfare", "optimal_welfare", "market_surplus"} <= {c.live for c in RESULT_FIELDS}


def test_every_source_names_an_attribute_of_the_interval_result() -> None:
    from scenarios.engine.interval import IntervalResult

    fields = set(IntervalResult.__dataclass_fields__) | {
        n for n in dir(IntervalResult) if isinstance(getattr(IntervalResult, n), property)
    }
    for c in COLUMNS:
        if c.source:
            head = c.source.removeprefix("baseline.").removeprefix("sum:").split(".")[0]
            assert head in fields, f"{c.file}:{c.name} source {c.source!r}"


def test_an_unknown_file_is_named_in_the_error() -> None:
    with pytest.raises(KeyError, match=r"no results file 'nope\.parquet'.*intervals\.parquet"):
        columns("nope.parquet")
