"""Which origins CORS_ORIGINS lets in: one matcher for CORS, the `/ws` check and storage."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.middleware.cors import CORSMiddleware

from gateway.auth import origin_allowed
from parley.embedded.s3 import storage_origins
from parley.stack import StackOptions, own_origins, with_default_cors
from shared.cors import LOCAL_DEV_ORIGINS, CorsPolicy, OriginPatternError, normalize_origin_entries
from shared.settings import ConfigurationError, Settings

LOCAL = CorsPolicy(normalize_origin_entries(LOCAL_DEV_ORIGINS))
ACCEPTED = ["http://localhost:5173", "http://localhost:3000", "http://localhost",
            "http://127.0.0.1:8080", "http://127.0.0.1", "http://localhost:65535"]
REFUSED = ["http://localhost.evil.com", "http://localhost:5173.evil.com", "https://evil.com",
           "https://localhost:5173", "http://127.0.0.1.evil.com", "http://evil.com:5173",
           "http://localhost:5173/", "http://localhost:", "http://localhost:abc",
           "http://localhost:123456", "http://evil.com#http://localhost", "null",
           "http://localhost:5173\n", "http://xlocalhost:5173", "http://127.0.0.10:80"]


def settings(value: str) -> Settings:
    return Settings.from_env({"CORS_ORIGINS": value})


def starlette_allows(policy: CorsPolicy, origin: str) -> bool:
    middleware = CORSMiddleware(app=lambda scope, receive, send: None,
                                **policy.middleware_options())
    return middleware.is_allowed_origin(origin)


@pytest.mark.parametrize("origin", ACCEPTED)
def test_local_dev_default_lets_in_any_port_of_this_machine(origin: str) -> None:
    assert LOCAL.allows(origin) and starlette_allows(LOCAL, origin)


@pytest.mark.parametrize("origin", REFUSED)
def test_local_dev_default_refuses_lookalikes(origin: str) -> None:
    assert not LOCAL.allows(origin)
    assert not starlette_allows(LOCAL, origin)  # what the HTTP services decide, too


def test_exact_entries_match_exactly() -> None:
    policy = settings(" https://Chat.Example.com/ , http://localhost:5173").cors
    assert policy.entries == ("https://chat.example.com", "http://localhost:5173")
    for origin in ("https://chat.example.com", "http://localhost:5173"):
        assert policy.allows(origin) and starlette_allows(policy, origin)
    for origin in ("http://localhost:3000", "https://chat.example.com.evil.com",
                   "http://chat.example.com"):
        assert not policy.allows(origin) and not starlette_allows(policy, origin)


def test_star_allows_any_and_empty_allows_none() -> None:
    assert settings("*").cors.allows("https://evil.com")
    assert starlette_allows(settings("*").cors, "https://evil.com")
    assert settings("").cors.entries == ()
    assert Settings.from_env({}).cors.entries == ()  # the services' own default: production
    assert not settings("").cors.allows("http://localhost:5173")


@pytest.mark.parametrize("entry", [
    "localhost:5173", "http://*.example.com", "http://localhost:5*", "ftp://example.com",
    "http://example.com/app", "http://exa mple.com", "http://localhost:0", "http://:8000",
    "http://localhost:99999", "*://localhost"])
def test_malformed_entries_fail_at_start(entry: str) -> None:
    with pytest.raises(OriginPatternError):
        normalize_origin_entries([entry])
    with pytest.raises(ConfigurationError, match="CORS_ORIGINS"):
        settings(entry)


def test_ipv6_hosts() -> None:
    policy = settings("http://[::1]:*").cors
    assert policy.allows("http://[::1]:5173") and policy.allows("http://[::1]")
    assert not policy.allows("http://[::2]:5173")


def test_websocket_origin_check_uses_the_policy_and_this_host() -> None:
    assert origin_allowed(None, "127.0.0.1:8000", CorsPolicy())  # no browser
    assert origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000", CorsPolicy())
    assert origin_allowed("http://LOCALHOST:5173", "127.0.0.1:8000", LOCAL)
    assert origin_allowed("http://127.0.0.1:8000", "127.0.0.1:8000",
                          settings("https://chat.example.com").cors)  # same origin, always
    for origin in REFUSED:
        assert not origin_allowed(origin, "127.0.0.1:8000", LOCAL), origin
    assert not origin_allowed("http://localhost:5173", "127.0.0.1:8000", CorsPolicy())


def test_parley_up_defaults_to_local_pages_unless_told() -> None:
    assert with_default_cors({})["CORS_ORIGINS"] == "http://localhost:*,http://127.0.0.1:*"
    assert with_default_cors({"CORS_ORIGINS": ""})["CORS_ORIGINS"] == ""
    assert with_default_cors({"CORS_ORIGINS": "*"})["CORS_ORIGINS"] == "*"


def test_storage_origins() -> None:
    options = StackOptions(data_dir=Path("."), port=8000)
    own = own_origins(options)
    assert own == ("http://localhost:8000", "http://127.0.0.1:8000")
    assert storage_origins(LOCAL, own) == "*"  # SeaweedFS cannot say "any port"
    assert storage_origins(settings("*").cors, own) == "*"
    assert storage_origins(settings("http://localhost:5173").cors, own) == (
        "http://localhost:5173,http://localhost:8000,http://127.0.0.1:8000")
    assert storage_origins(CorsPolicy(), own) == "http://localhost:8000,http://127.0.0.1:8000"
    assert own_origins(StackOptions(data_dir=Path("."), port=0)) == ()
    assert storage_origins(CorsPolicy(), ()) == "*"


def test_describe() -> None:
    assert LOCAL.describe() == "http://localhost:<any port>, http://127.0.0.1:<any port>"
    assert CorsPolicy().describe() == "same origin only"
    assert settings("*").cors.describe() == "any origin"
