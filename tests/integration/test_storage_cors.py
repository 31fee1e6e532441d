"""The embedded S3 answers CORS for exactly the origins it is given (a narrowed CORS_ORIGINS)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from parley.embedded import Endpoints, embedded_servers

LOCAL = "http://localhost:5173"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    data_dir = tmp_path_factory.mktemp("storage-cors").resolve()
    with embedded_servers(Path(data_dir), postgres=False, nats=False,
                          s3_origins=f"{LOCAL},http://127.0.0.1:8000") as endpoints:
        yield endpoints


def allowed_origin(url: str, origin: str) -> str | None:
    """The Access-Control-Allow-Origin of a preflight, None when refused."""
    try:
        answer = httpx.options(url, headers={"Origin": origin,
                                             "Access-Control-Request-Method": "POST"})
    except httpx.RemoteProtocolError:
        # SeaweedFS 4.48 refuses a preflight on the bucket path with a handler panic ("invalid
        # WriteHeader code 0"): the connection drops, a network error to a browser, a refusal
        return None
    return answer.headers.get("access-control-allow-origin") if answer.is_success else None


@pytest.mark.parametrize("path", ["", "/voice/key.opus"])  # presigned POST, presigned GET
def test_only_the_given_origins_are_answered(s3: Endpoints, path: str) -> None:
    url = f"{s3.s3_endpoint}/{s3.s3_bucket}{path}"
    assert allowed_origin(url, LOCAL) == LOCAL
    assert allowed_origin(url, "http://127.0.0.1:8000") == "http://127.0.0.1:8000"
    for foreign in ("http://localhost:3000", "https://evil.com", f"{LOCAL}.evil.com"):
        assert allowed_origin(url, foreign) is None, foreign
