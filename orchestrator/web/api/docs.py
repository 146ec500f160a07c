"""``GET /api/v1/docs``: the OpenAPI document as one plain HTML page, rendered here.

FastAPI's own /docs page loads swagger-ui from a CDN, and nothing of anefarm may need the
internet at run time; this page has no script and no asset: every route with its method,
summary, the role it needs, its parameters and its request body's fields.
"""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(tags=["docs"])
STYLE = (
    "body{font:14px/1.45 system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem}"
    "code{background:#f3f3f3;padding:0 .2em}h2{margin-top:2rem;font-size:1.05rem}"
    "td,th{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:left;vertical-align:top}"
    "table{border-collapse:collapse}.m{font-weight:600}"
)


@router.get("/docs", response_class=HTMLResponse, summary="This API, as one HTML page")
def api_docs(request: Request) -> HTMLResponse:
    spec = request.app.openapi()
    rows: list[str] = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            rows.append(_operation(path, method, operation))
    body = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>anefarm API</title>"
        f"<style>{STYLE}</style><h1>anefarm HTTP API {escape(spec['info']['version'])}</h1>"
        "<p>Send a token as <code>Authorization: Bearer &lt;token&gt;</code> (<code>anefarm"
        " tokens create --role read|submit|admin</code>). The machine-readable document:"
        ' <a href="openapi.json">openapi.json</a>.</p>' + "".join(rows)
    )
    return HTMLResponse(body)


def _operation(path: str, method: str, operation: dict[str, Any]) -> str:
    roles = sorted(
        {r for need in operation.get("security", []) for rs in need.values() for r in rs}
    )
    role = f" — needs a <b>{escape(', '.join(roles))}</b> token" if roles else ""
    params = [
        (p["name"], p["in"], p.get("schema", {}).get("type", ""), p.get("description", ""))
        for p in operation.get("parameters", [])
    ]
    content = operation.get("requestBody", {}).get("content", {})
    for media, body in content.items():
        for name, field in body.get("schema", {}).get("properties", {}).items():
            params.append((name, media, field.get("type", ""), field.get("description", "")))
    table = ""
    if params:
        cells = "".join(
            f"<tr><td><code>{escape(n)}</code></td><td>{escape(w)}</td><td>{escape(str(t))}</td>"
            f"<td>{escape(str(d))}</td></tr>"
            for n, w, t, d in params
        )
        table = f"<table><tr><th>name</th><th>in</th><th>type</th><th></th></tr>{cells}</table>"
    summary = escape(operation.get("summary", ""))
    return (
        f"<h2><span class=m>{method.upper()}</span> <code>{escape(path)}</code></h2>"
        f"<p>{summary}{role}</p>{table}"
    )
