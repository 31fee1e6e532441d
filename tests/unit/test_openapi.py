"""The OpenAPI document against the real route lists, and the offline Swagger UI page."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import Route

from command_api import app as command_app
from query_api import app as query_app
from query_api import docs
from shared.openapi.document import OPERATIONS, Operation, build_openapi
from shared.schemas import PublicUser
from shared.web.routes import api_routes
from shared.web.service import service_routes

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
NO_KEY_WRITES = {"/api/v1/auth/refresh", "/api/v1/auth/logout"}  # CONTRACT.md, Idempotency
IDEMPOTENCY_KEY = {"$ref": "#/components/parameters/IdempotencyKey"}
MIN_POSITION = {"$ref": "#/components/parameters/MinPosition"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


async def _ready() -> str | None:
    return None


def route_operations() -> set[tuple[str, str]]:
    routes = [*api_routes(command_app.HANDLERS), *api_routes(query_app.HANDLERS),
              *service_routes(_ready)]
    return {(method, route.path) for route in routes if isinstance(route, Route)
            for method in route.methods or () if method != "HEAD"}


def walk(node: Any) -> Iterator[tuple[Any, Any]]:
    """Every (key, value) pair of every dict in a JSON tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def test_is_a_valid_openapi_31_document(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    assert document["servers"] == [{"url": "/"}]
    validate(document)


def test_every_ref_resolves(document: dict[str, Any]) -> None:
    refs = [value for key, value in walk(document) if key == "$ref"]
    assert refs
    for ref in refs:
        resolve(document, ref)


def test_document_and_routes_match_exactly(document: dict[str, Any]) -> None:
    documented = {(method, path) for method, path, _ in operations(document)}
    assert route_operations() - documented == set(), "routes missing from the document"
    assert documented - route_operations() == set(), "documented operations with no route"


def test_each_operation_is_served_by_one_service() -> None:
    assert set(command_app.HANDLERS).isdisjoint(query_app.HANDLERS)


def test_a_handler_for_an_undocumented_operation_is_refused() -> None:
    with pytest.raises(ValueError, match="no such operation"):
        api_routes({"put_users_me": lambda request: None})


def test_idempotency_key_exactly_on_writes_except_refresh_and_logout(
        document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        expected = method in {"POST", "PATCH", "DELETE"} and path not in NO_KEY_WRITES
        assert (IDEMPOTENCY_KEY in operation.get("parameters", [])) is expected, (method, path)
    auth = {path: op for method, path, op in operations(document) if "/auth/" in path}
    assert IDEMPOTENCY_KEY in auth["/api/v1/auth/register"]["parameters"]
    assert IDEMPOTENCY_KEY in auth["/api/v1/auth/login"]["parameters"]
    assert "parameters" not in auth["/api/v1/auth/refresh"]
    assert "parameters" not in auth["/api/v1/auth/logout"]


def test_idempotency_key_header_is_documented(document: dict[str, Any]) -> None:
    header = resolve(document, IDEMPOTENCY_KEY["$ref"])
    assert header["name"] == "Idempotency-Key" and header["in"] == "header"
    assert header["required"] is True and header["schema"]["maxLength"] == 255
    assert "24 h" in header["description"] and "original_status" in header["description"]
    for method, path, operation in operations(document):
        if IDEMPOTENCY_KEY in operation.get("parameters", []):
            conflict = operation["responses"]["409"]
            assert "Location" in conflict["headers"], (method, path)


def test_consistency_headers(document: dict[str, Any]) -> None:
    ops = {(method, path): op for method, path, op in operations(document)}
    for key in [("POST", "/api/v1/auth/register"), ("POST", "/api/v1/auth/login"),
                ("POST", "/api/v1/auth/refresh")]:
        success = min(ops[key]["responses"].items())[1]
        assert "X-Event-Position" in success["headers"], key
    for (method, path), op in ops.items():
        reads_projection = method == "GET" and op["security"]
        assert (MIN_POSITION in op.get("parameters", [])) == bool(reads_projection), path
    assert document["components"]["parameters"]["MinPosition"]["name"] == "X-Min-Position"


def test_security_is_bearer_jwt_where_authenticated(document: dict[str, Any]) -> None:
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    ops = {(method, path): op for method, path, op in operations(document)}
    assert ops[("GET", "/api/v1/users/me")]["security"] == [{"bearerAuth": []}]
    assert ops[("GET", "/api/v1/users/{user_id}")]["security"] == [{"bearerAuth": []}]
    for path in ["/healthz", "/readyz", "/metrics", "/api/v1/auth/login"]:
        method = "POST" if path.startswith("/api") else "GET"
        assert ops[(method, path)]["security"] == []


def test_errors_use_error_out_and_never_422(document: dict[str, Any]) -> None:
    error_ref = {"$ref": "#/components/schemas/ErrorOut"}
    for method, path, operation in operations(document):
        assert "422" not in operation["responses"], (method, path)
        for status, response in operation["responses"].items():
            if int(status) >= 400 and path.startswith("/api/"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == error_ref, (method, path, status)


def test_request_bodies_have_examples(document: dict[str, Any]) -> None:
    """Every write documents its JSON body with an example; reads and deletes take none."""
    writes = 0
    for method, path, operation in operations(document):
        if method in {"POST", "PUT", "PATCH"}:
            assert operation["requestBody"]["content"]["application/json"]["example"], path
            writes += 1
        else:
            assert "requestBody" not in operation, (method, path)
    assert writes >= 10  # auth (4), chats (3), messages (2), attachments


def test_timestamps_are_strings_with_z_in_examples(document: dict[str, Any]) -> None:
    checked = 0
    for name, schema in document["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            if field == "ts" or field.endswith("_at"):
                variants = prop.get("anyOf", [prop])
                types = {resolve(document, v["$ref"]).get("type") if "$ref" in v else v["type"]
                         for v in variants}
                assert types - {"null"} == {"string"}, (name, field)
                checked += 1
    assert checked, "no timestamp field found"
    stamps = [value for key, value in walk(document) if key == "created_at"
              and isinstance(value, str)]
    assert stamps and all(stamp.endswith("Z") for stamp in stamps)


def test_table_is_extensible_with_list_responses() -> None:
    extra = Operation("GET", "/api/v1/things/{thing_id}", "Things", "users",
                      responses={200: list[PublicUser], 404: "No such thing."})
    document = build_openapi([*OPERATIONS, extra])
    operation = document["paths"]["/api/v1/things/{thing_id}"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"type": "array", "items": {"$ref": "#/components/schemas/PublicUser"}}
    assert operation["parameters"][0]["in"] == "path"
    assert "401" in operation["responses"]
    with pytest.raises(ValueError, match="duplicate"):
        build_openapi([*OPERATIONS, OPERATIONS[0]])


CHAT = "/api/v1/chats/{chat_id}"
MESSAGE = "/api/v1/messages/{message_id}"
# Statuses each chat, message and attachment route answers with (CONTRACT.md and the code).
STATUSES = {
    ("GET", "/api/v1/chats"): {200, 400, 401},
    ("POST", "/api/v1/chats"): {200, 201, 400, 401, 409, 413, 429},
    ("GET", CHAT): {200, 400, 401, 403, 404},
    ("PATCH", CHAT): {200, 400, 401, 403, 404, 409, 413, 429},
    ("DELETE", CHAT): {204, 400, 401, 403, 404, 409, 429},
    ("GET", f"{CHAT}/members"): {200, 400, 401, 403, 404},
    ("POST", f"{CHAT}/members"): {200, 400, 401, 403, 404, 409, 413, 429},
    ("DELETE", f"{CHAT}/members/{{user_id}}"): {204, 400, 401, 403, 404, 409, 429},
    ("GET", "/api/v1/messages"): {200, 400, 401, 403, 404},
    ("POST", "/api/v1/messages"): {201, 400, 401, 403, 404, 409, 413, 429},
    ("GET", MESSAGE): {200, 400, 401, 404},
    ("PATCH", MESSAGE): {200, 400, 401, 403, 404, 409, 413, 429},
    ("POST", "/api/v1/attachments"): {200, 400, 401, 409, 413, 429},
    ("GET", "/api/v1/attachments/{attachment_id}"): {200, 400, 401, 404},
}


def test_chat_message_and_attachment_statuses(document: dict[str, Any]) -> None:
    ops = {(method, path): op for method, path, op in operations(document)}
    for key, statuses in STATUSES.items():
        assert {int(status) for status in ops[key]["responses"]} == statuses, key
        assert ops[key]["security"] == [{"bearerAuth": []}], key
    create = ops[("POST", "/api/v1/chats")]["responses"]
    assert "Location" in create["201"]["headers"] and "Location" in create["200"]["headers"]
    assert create["409"]["content"]["application/json"]["example"]["original_status"] == 201
    assert "Location" in ops[("POST", "/api/v1/messages")]["responses"]["201"]["headers"]


def test_rate_limits_are_429_with_retry_after_where_they_apply(document: dict[str, Any]) -> None:
    limited = {(method, path) for method, path, op in operations(document)
               if method in {"POST", "PUT", "PATCH", "DELETE"} and op.get("security")}
    limited |= {("POST", "/api/v1/auth/register"), ("POST", "/api/v1/auth/login")}
    for method, path, op in operations(document):
        assert ("429" in op["responses"]) is ((method, path) in limited), (method, path)
        if (method, path) in limited:
            answer = op["responses"]["429"]
            assert "Retry-After" in answer["headers"], (method, path)
            assert answer["content"]["application/json"]["schema"] == \
                {"$ref": "#/components/schemas/ErrorOut"}, (method, path)


def test_list_bodies_and_paging_parameters(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for path, model in [("/api/v1/chats", "ChatView"), (f"{CHAT}/members", "MemberOut"),
                        ("/api/v1/messages", "MessageOut")]:
        media = paths[path]["get"]["responses"]["200"]["content"]["application/json"]
        assert media["schema"] == {"type": "array",
                                   "items": {"$ref": f"#/components/schemas/{model}"}}
        assert isinstance(media["example"], list) and media["example"], path
    params = {p.get("name"): p for p in paths["/api/v1/messages"]["get"]["parameters"]}
    assert params["chat_id"]["required"] is True and params["chat_id"]["in"] == "query"
    for anchor in ("before_id", "after_id", "around_id"):
        assert params[anchor]["required"] is False and params[anchor]["in"] == "query"
    assert params["limit"]["schema"]["default"] == 50 and "100" in params["limit"]["description"]


def test_attachments_document_the_upload_flow(document: dict[str, Any]) -> None:
    download = document["paths"]["/api/v1/attachments/{attachment_id}"]["get"]
    path_param = download["parameters"][0]
    assert (path_param["name"], path_param["in"]) == ("attachment_id", "path")
    assert path_param["schema"] == {"type": "string", "format": "uuid"}
    upload = document["paths"]["/api/v1/attachments"]["post"]
    for phrase in ["multipart/form-data", "`fields`", "last", "Content-Disposition",
                   "20 MiB", "15 minutes"]:
        assert phrase in upload["description"], phrase
    example = upload["responses"]["200"]["content"]["application/json"]["example"]
    assert {"key", "Content-Type", "policy", "x-amz-signature"} <= example["fields"].keys()


def test_openapi_30_copy_spells_null_without_a_null_type() -> None:
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert docs.to_openapi_30({"s": schema, "n": {"type": "null"}}) == {
        "s": {"type": "string", "nullable": True, "default": None},
        "n": {"enum": [None], "nullable": True}, "openapi": "3.0.3"}
    document = docs.to_openapi_30(build_openapi())
    assert not [value for key, value in walk(document) if key == "type" and value == "null"]


class Assets(HTMLParser):
    """Collects the URLs of scripts, stylesheets and icons of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        url = values.get("src") if tag == "script" else values.get("href")
        if tag in {"script", "link"} and url:
            self.urls.append(url)


def get(path: str) -> httpx.Response:
    """GET `path` from an app of just the documentation routes (no database needed)."""

    async def fetch() -> httpx.Response:
        # httpx's ASGI transport rather than TestClient, which now warns without httpx2.
        transport = httpx.ASGITransport(app=Starlette(routes=docs.routes()))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            return await http.get(path)

    return asyncio.run(fetch())


def test_docs_page_loads_nothing_from_elsewhere() -> None:
    page = get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    parser = Assets()
    parser.feed(page.text)
    assert any(url.endswith("swagger-ui-bundle.js") for url in parser.urls)
    assert any(url.endswith("swagger-ui.css") for url in parser.urls)
    for url in parser.urls:
        assert not url.startswith(("http://", "https://", "//")), url
        asset = get(urljoin(str(page.url), url))
        assert asset.status_code == 200 and asset.content, url
    assert "http://" not in page.text and "https://" not in page.text
    script = get(urljoin(str(page.url), "./docs/static/swagger-ui-bundle.js"))
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert len(script.content) > 100_000


def test_docs_page_renders_our_document() -> None:
    page = get("/docs")
    spec_url = re.search(r'url: "([^"]+)"', page.text)
    assert spec_url
    spec = get(urljoin(str(page.url), spec_url.group(1)))
    assert spec.status_code == 200
    assert spec.json()["openapi"] == "3.0.3"  # the bundled Swagger UI 4 cannot render 3.1
    validate(spec.json())
    assert spec.json()["paths"].keys() == build_openapi()["paths"].keys()


def test_openapi_json_is_the_31_document() -> None:
    response = get("/openapi.json")
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == json.loads(json.dumps(build_openapi()))


def test_only_the_needed_swagger_files_are_served() -> None:
    assert get("/docs/static/swagger-ui.css").status_code == 200
    assert get("/docs/static/index.html").status_code == 404  # it would load a remote petstore
    assert get("/docs/static/swagger-initializer.js").status_code == 404
