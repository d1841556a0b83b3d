"""The REST API's reference page (``/docs``), rendered on the server from the OpenAPI
schema: plain HTML, no script and nothing from a CDN, so it works offline and under the
dashboard's content security policy (Swagger UI's CDN assets and inline script are both
blocked by it)."""

from __future__ import annotations

from html import escape
from typing import Any

_METHODS = ("get", "post", "put", "patch", "delete")
_STYLE = """
body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;
color:#222} h2{margin-top:1.6em;font-size:1.05em;font-family:monospace}
.m{display:inline-block;min-width:3.5em;color:#fff;background:#1f77b4;border-radius:3px;
padding:0 .4em;margin-right:.5em;text-transform:uppercase;font-size:.85em}
table{border-collapse:collapse;width:100%;font-size:.9em} td,th{border-bottom:1px solid #ddd;
padding:.25em .5em;text-align:left;vertical-align:top} code{font-size:.95em}
"""


def _type(schema: dict[str, Any]) -> str:
    """A parameter's type in one word or two (``integer``, ``"json" | "csv"``, …)."""
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"] if s.get("type") != "null")
    if "enum" in schema:
        return " | ".join(f'"{v}"' for v in schema["enum"])
    if "const" in schema:
        return f'"{schema["const"]}"'
    return str(schema.get("type", "any"))


def _bounds(schema: dict[str, Any]) -> str:
    for s in schema.get("anyOf", [schema]):
        parts = [f"{k} {s[k]}" for k in ("minimum", "maximum", "maxLength") if k in s]
        if parts:
            return ", ".join(parts)
    return ""


def render_api_docs(openapi: dict[str, Any]) -> str:
    """The reference page of ``openapi`` (an OpenAPI 3 document) as one HTML string."""
    info = openapi.get("info", {})
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(info.get('title', 'API'))} — API</title><style>{_STYLE}</style>",
        "</head><body>",
        f"<h1>{escape(info.get('title', 'API'))} — REST API</h1>",
        f"<p>{escape(info.get('description', ''))} The machine-readable schema is "
        "<a href='openapi.json'>openapi.json</a>; every table endpoint answers JSON, or CSV "
        "with <code>?format=csv</code>.</p>",
    ]
    for path, item in openapi.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            out.append(f"<h2><span class='m'>{method}</span>{escape(path)}</h2>")
            if op.get("summary"):
                out.append(f"<p>{escape(op['summary'])}</p>")
            if op.get("description"):
                out.append(f"<p>{escape(op['description'])}</p>")
            params = op.get("parameters", [])
            if params:
                out.append(
                    "<table><tr><th>parameter</th><th>in</th><th>type</th><th>bounds</th>"
                    "<th>description</th></tr>"
                )
                for p in params:
                    schema = p.get("schema", {})
                    name = escape(p["name"]) + (" (required)" if p.get("required") else "")
                    out.append(
                        f"<tr><td><code>{name}</code></td><td>{escape(p.get('in', ''))}</td>"
                        f"<td>{escape(_type(schema))}</td><td>{escape(_bounds(schema))}</td>"
                        f"<td>{escape(p.get('description', ''))}</td></tr>"
                    )
                out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
