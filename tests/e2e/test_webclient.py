"""`/app/`, the reference web client, as files over HTTP: where it is, its types, and a policy
that lets the page reach only this API, its `/ws` and the storage (tests/browser runs it)."""

from __future__ import annotations

import httpx

from parley.stack import Stack
from query_api.webclient import origin_of
from shared.settings import Settings


def directives(policy: str) -> dict[str, list[str]]:
    parsed = (part.split() for part in policy.split(";") if part.strip())
    return {name: sources for name, *sources in parsed}


def test_the_client_is_served_with_its_policy(stack: Stack) -> None:
    page = httpx.get(f"{stack.base_url}/app/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="app.js">' in page.text
    storage = origin_of(Settings.from_env(stack.env).s3_public_endpoint)
    api = stack.base_url
    policy = directives(page.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == policy["style-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", api, f"ws{api.removeprefix('http')}/ws", storage]
    assert policy["media-src"] == [storage]
    assert policy["frame-ancestors"] == ["'none'"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"


def test_its_modules_are_javascript_and_nothing_else_is_there(stack: Stack) -> None:
    for name in ("app.js", "api.js", "live.js", "voice.js"):
        module = httpx.get(f"{stack.base_url}/app/{name}")
        assert module.status_code == 200, name
        assert module.headers["content-type"].split(";")[0] in (
            "text/javascript", "application/javascript"), name
    assert httpx.get(f"{stack.base_url}/app/style.css").headers["content-type"].startswith(
        "text/css")
    assert httpx.get(f"{stack.base_url}/app/nothing.js").status_code == 404
    assert httpx.get(f"{stack.base_url}/app/%2e%2e/pyproject.toml").status_code == 404
    moved = httpx.get(f"{stack.base_url}/app")
    assert moved.status_code in (307, 308) and moved.headers["location"].endswith("/app/")


def test_a_host_header_cannot_write_the_policy(stack: Stack) -> None:
    page = httpx.get(f"{stack.base_url}/app/", headers={"Host": "x; script-src *"})
    assert page.status_code == 200
    policy = directives(page.headers["content-security-policy"])
    storage = origin_of(Settings.from_env(stack.env).s3_public_endpoint)
    assert policy["script-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'", storage]  # 'self' alone covers its /ws
