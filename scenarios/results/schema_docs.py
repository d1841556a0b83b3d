"""The README's table of results columns, rendered from the one schema
(:mod:`scenarios.results.schema`); ``python -m scenarios.results.schema_docs`` prints it."""

from __future__ import annotations

from scenarios.results.schema import (
    FILES,
    HOUSEHOLDS_FILE,
    QUANTUM,
    SETTLEMENT,
    WHEN,
    columns,
)

TITLE_NOTES = {
    SETTLEMENT: " (live only)",
    HOUSEHOLDS_FILE: " (after the household table's own columns: agent_id, bus, devices)",
}


def render_markdown() -> str:
    """The README's table of results columns (between its ``results-columns`` markers);
    ``live``: the field of ``market/result`` (intervals) or of the settlement (agents)."""
    head = [
        "| column | dtype | unit | sign | present | live | what |",
        "|---|---|---|---|---|---|---|",
    ]
    lines = []
    for file in (*FILES, SETTLEMENT):
        title = f"`{file}`" + TITLE_NOTES.get(file, "")
        lines += [f"**{title}**", "", *head]
        for c in columns(file):
            live = f"`{c.live}`" if c.live else ""
            dtype = c.dtype + (" in 2⁻²⁴ steps" if c.quantum == QUANTUM else "")
            lines.append(
                f"| `{c.name}` | {dtype} | {c.unit} | {c.sign} | {WHEN[c.when]} | {live} | "
                f"{c.description} |"
            )
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_markdown(), end="")
