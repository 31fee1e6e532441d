"""`GET /openapi.json` and `GET /docs`: the API document and a Swagger UI served from here, no CDN.

The bundled Swagger UI (4.x, from `swagger_ui_bundle`) refuses OpenAPI 3.1 documents, so the
page renders `/docs/openapi-3.0.json`, the same document rewritten in OpenAPI 3.0 terms;
`/openapi.json` stays the canonical 3.1 document.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from shared.openapi.document import build_openapi

STATIC = "/docs/static"
ASSETS = frozenset({
    "swagger-ui-bundle.js", "swagger-ui-bundle.js.map", "swagger-ui.css", "swagger-ui.css.map",
    "favicon-32x32.png", "favicon-16x16.png",
})
# The schema keywords whose values are data, not schemas: never rewritten.
DATA_KEYWORDS = frozenset({"example", "examples", "default", "enum", "const"})
NULL = {"type": "null"}
NULL_30 = {"enum": [None], "nullable": True}  # a lone `type: null` (OpenAPI 3.0 has no null type)
NULLS = (NULL, NULL_30)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Parley API</title>
  <link rel="stylesheet" href=".{static}/swagger-ui.css">
  <link rel="icon" type="image/png" href=".{static}/favicon-32x32.png">
  <style>.parley-note {{ font-family: sans-serif; margin: 1em 2em 0; }}</style>
</head>
<body>
  <p class="parley-note">OpenAPI 3.1 document: <a href="./openapi.json">openapi.json</a>
    (this viewer renders an OpenAPI 3.0 copy of it).</p>
  <div id="swagger-ui"></div>
  <script src=".{static}/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({{
      url: "./docs/openapi-3.0.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    }});
  </script>
</body>
</html>
"""


class SwaggerAssets(StaticFiles):
    """The Swagger UI files the page loads, and nothing else of the vendored directory."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        if path not in ASSETS:
            return "", None
        return super().lookup_path(path)


@functools.cache
def openapi_bytes() -> bytes:
    """The OpenAPI 3.1 document, serialised once per process."""
    return json.dumps(build_openapi(), ensure_ascii=False).encode()


@functools.cache
def swagger_ui_bytes() -> bytes:
    """The OpenAPI 3.0 copy the bundled Swagger UI can render, serialised once per process."""
    return json.dumps(to_openapi_30(build_openapi()), ensure_ascii=False).encode()


def to_openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """Rewrite a 3.1 document of ours (pydantic's JSON Schema) in OpenAPI 3.0.3 terms."""
    out = _downgrade(document)
    out["openapi"] = "3.0.3"
    out.pop("jsonSchemaDialect", None)
    out.pop("webhooks", None)
    return out


def _downgrade(node: Any) -> Any:
    if isinstance(node, list):
        return [_downgrade(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _downgrade_value(key, value) for key, value in node.items()}
    for keyword in ("anyOf", "oneOf"):
        if isinstance(out.get(keyword), list) and any(o in NULLS for o in out[keyword]):
            out = _nullable(out, keyword)
    if out.get("type") == "null":  # children come first: anyOf above sees them as NULL_30
        del out["type"]
        out.update(NULL_30)
    if isinstance(out.get("examples"), list):
        examples = out.pop("examples")
        if examples:
            out.setdefault("example", examples[0])
    if "const" in out and not isinstance(out["const"], dict):
        out["enum"] = [out.pop("const")]
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = out.get(bound)
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[limit], out[bound] = value, True
    return out


def _downgrade_value(key: str, value: Any) -> Any:
    if key in DATA_KEYWORDS:
        return value
    if key == "properties" and isinstance(value, dict):  # keys are field names, not keywords
        return {name: _downgrade(schema) for name, schema in value.items()}
    return _downgrade(value)


def _nullable(schema: dict[str, Any], keyword: str) -> dict[str, Any]:
    """`anyOf: [X, {type: null}]` becomes X with `nullable: true`."""
    rest = [option for option in schema.pop(keyword) if option not in NULLS]
    schema["nullable"] = True
    if len(rest) != 1:
        schema[keyword] = rest
    elif "$ref" in rest[0]:
        schema["allOf"] = rest
    else:
        schema = {**rest[0], **schema}
    return schema


async def openapi_json(request: Request) -> Response:
    return Response(openapi_bytes(), media_type="application/json")


async def swagger_ui_json(request: Request) -> Response:
    return Response(swagger_ui_bytes(), media_type="application/json")


async def docs_page(request: Request) -> Response:
    return HTMLResponse(PAGE.format(static=STATIC))


def routes() -> list[BaseRoute]:
    return [
        Route("/openapi.json", openapi_json, methods=["GET"]),
        Route("/docs", docs_page, methods=["GET"]),
        Route("/docs/openapi-3.0.json", swagger_ui_json, methods=["GET"]),
        Mount(STATIC, app=SwaggerAssets(directory=str(swagger_ui_path)), name="docs-static"),
    ]
