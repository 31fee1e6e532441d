"""shared.s3.storage against the session's real SeaweedFS S3 (no mocks), plus its pure helpers."""

from __future__ import annotations

import io
import ipaddress
import socket
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from minio import Minio

from domain.uploads import (
    MAX_FILENAME_CHARS,
    UploadRefusedError,
    content_type_allowed,
    object_key,
    safe_filename,
)
from parley.stack import Stack
from shared.s3.storage import (
    CONTENT_DISPOSITION,
    PresignedUpload,
    Storage,
    StoredObject,
)
from shared.settings import Settings
from tests.ports import free_port

# minio's PostPolicy.form_data calls datetime.utcnow(), deprecated since Python 3.12
pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcnow:DeprecationWarning")

SIGNED_FIELDS = {"key", "Content-Type", "Content-Disposition", "policy", "x-amz-algorithm",
                 "x-amz-credential", "x-amz-date", "x-amz-signature"}


@pytest.fixture(scope="module")
def s3(stack: Stack) -> Settings:
    """Settings pointing at the session's S3 server."""
    return Settings.from_env(stack.env)


@pytest.fixture
def storage(s3: Settings) -> Storage:
    """Storage on the session's S3 server, bucket ensured."""
    store = Storage(s3)
    store.ensure_bucket()
    return store


def _other_host(endpoint: str) -> str:
    """The same server under another name: 127.0.0.1 <-> localhost, a host name -> its address
    (compose's `minio`), another address -> its name. Any S3 server has one: never skipped."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        other = "127.0.0.1" if host == "localhost" else socket.gethostbyname(host)
    else:
        other = "localhost" if ipaddress.ip_address(host).is_loopback \
            else socket.gethostbyaddr(host)[0]
    assert other != host, f"no other name for {endpoint}"
    return f"{parts.scheme}://{other}:{parts.port}"


def _key(filename: str = "voice.opus") -> str:
    return object_key(uuid.uuid4(), filename)


def _post(upload: PresignedUpload, body: bytes, changes: Mapping[str, str | None] | None = None,
          part_type: str = "audio/opus") -> httpx.Response:
    """Browser-style multipart POST: the form fields (with `changes`; None drops), file last."""
    fields = {**upload.fields, **(changes or {})}
    data = {name: value for name, value in fields.items() if value is not None}
    return httpx.post(upload.url, data=data, files={"file": ("blob", body, part_type)},
                      timeout=30)


# ---------------------------------------------------------------- against the server


def test_upload_stat_download_through_the_public_endpoint(s3: Settings) -> None:
    public = _other_host(s3.s3_endpoint)
    storage = Storage(replace(s3, s3_public_endpoint=public))
    key, body = _key(), b"OggS" + bytes(range(256)) * 4
    upload = storage.presign_upload(key, "audio/opus")
    assert upload.url == f"{public}/{s3.s3_bucket}"
    assert set(upload.fields) == SIGNED_FIELDS
    assert upload.fields["key"] == key
    assert upload.fields["Content-Disposition"] == CONTENT_DISPOSITION
    assert upload.expires_at.tzinfo is not None

    response = _post(upload, body)
    assert response.status_code in (200, 201, 204), response.text
    assert storage.stat(key) == StoredObject(size=len(body), content_type="audio/opus")

    before = datetime.now(UTC).replace(microsecond=0)
    url, expires_at = storage.presign_download(key)
    assert urlsplit(url).netloc == urlsplit(public).netloc
    assert before + timedelta(minutes=5) <= expires_at <= datetime.now(UTC) + timedelta(minutes=5)
    got = httpx.get(url, timeout=30)
    assert got.status_code == 200, got.text
    assert got.content == body
    assert got.headers["content-type"] == "audio/opus"
    assert got.headers["content-disposition"] == CONTENT_DISPOSITION
    assert got.headers["cache-control"] == "private, max-age=300"
    # the host is part of the signature: a URL signed for one name fails under the other
    moved = url.replace(urlsplit(public).netloc, urlsplit(s3.s3_endpoint).netloc, 1)
    assert httpx.get(moved, timeout=30).status_code == 403


def test_stored_type_is_the_signed_field_not_the_file_part(storage: Storage) -> None:
    key = _key()
    response = _post(storage.presign_upload(key, "audio/ogg"), b"x" * 10, part_type="text/html")
    assert response.status_code in (200, 201, 204), response.text
    assert storage.stat(key) == StoredObject(size=10, content_type="audio/ogg")


def test_download_overrides_headers_smuggled_in_as_unsigned_fields(storage: Storage) -> None:
    # SeaweedFS accepts form fields the policy does not mention and serves them as headers
    key, smuggled = _key(), {"Cache-Control": "public, max-age=31536000",
                             "Content-Encoding": "gzip"}
    response = _post(storage.presign_upload(key, "audio/opus"), b"voice", smuggled)
    assert response.status_code in (200, 201, 204), response.text
    url, _ = storage.presign_download(key, timedelta(seconds=90))
    got = httpx.get(url, timeout=30)
    assert got.content == b"voice"
    assert got.headers["cache-control"] == "private, max-age=90"
    assert got.headers["content-encoding"] == "identity"
    assert got.headers["content-disposition"] == CONTENT_DISPOSITION


def test_unicode_and_punctuation_in_filenames_round_trip(storage: Storage) -> None:
    key = _key("Голос №1 (копия) + 100% #a?b=c&d ünï.opus")
    response = _post(storage.presign_upload(key, "audio/opus"), b"voice")
    assert response.status_code in (200, 201, 204), response.text
    assert storage.stat(key) == StoredObject(size=5, content_type="audio/opus")
    url, _ = storage.presign_download(key)
    assert httpx.get(url, timeout=30).content == b"voice"


@pytest.mark.parametrize("case", ["wrong_content_type", "missing_content_type",
                                  "missing_content_disposition", "inline_disposition",
                                  "other_key", "expired", "oversize", "empty",
                                  "tampered_signature"])
def test_policy_violations_are_rejected_and_nothing_is_stored(s3: Settings, case: str) -> None:
    storage = Storage(replace(s3, upload_max_bytes=1024))
    key, body, now = _key(), b"x" * 100, None
    if case == "expired":
        now = datetime.now(UTC) - timedelta(seconds=s3.upload_ttl + 60)
    upload = storage.presign_upload(key, "audio/opus", now=now)
    changes: dict[str, dict[str, str | None]] = {
        "wrong_content_type": {"Content-Type": "text/html"},
        "missing_content_type": {"Content-Type": None},
        "missing_content_disposition": {"Content-Disposition": None},
        "inline_disposition": {"Content-Disposition": "inline"},
        "other_key": {"key": key + ".html"},
        "tampered_signature": {"x-amz-signature": "0" * 64},
    }
    if case == "oversize":
        body = b"x" * 1025
    elif case == "empty":
        body = b""
    response = _post(upload, body, changes.get(case))
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert storage.stat(key) is None
    assert storage.stat(key + ".html") is None


def test_size_limit_is_inclusive(s3: Settings) -> None:
    storage, key = Storage(replace(s3, upload_max_bytes=1024)), _key()
    response = _post(storage.presign_upload(key, "audio/opus"), b"x" * 1024)
    assert response.status_code in (200, 201, 204), response.text
    assert storage.stat(key) == StoredObject(size=1024, content_type="audio/opus")


def test_expired_download_url_is_rejected(storage: Storage) -> None:
    key = _key()
    assert _post(storage.presign_upload(key, "audio/opus"), b"x").status_code in (200, 201, 204)
    url, expires_at = storage.presign_download(key, timedelta(seconds=60),
                                               now=datetime.now(UTC) - timedelta(minutes=2))
    assert expires_at < datetime.now(UTC)
    assert httpx.get(url, timeout=30).status_code == 403


def test_stat_of_a_missing_key_is_none(storage: Storage) -> None:
    assert storage.stat(_key()) is None


def test_ensure_bucket_creates_a_missing_bucket_and_keeps_an_existing_one(s3: Settings) -> None:
    bucket = f"ensure-{uuid.uuid4().hex[:12]}"
    endpoint = urlsplit(s3.s3_endpoint)
    client = Minio(endpoint.netloc, s3.s3_access_key, s3.s3_secret_key,
                   secure=endpoint.scheme == "https", region=s3.s3_region)
    storage = Storage(replace(s3, s3_bucket=bucket))
    assert not client.bucket_exists(bucket)
    storage.ensure_bucket()
    assert client.bucket_exists(bucket)
    key, body = _key(), b"OggS kept"
    client.put_object(bucket, key, io.BytesIO(body), len(body), content_type="audio/opus")
    storage.ensure_bucket()  # exists already: no error, nothing lost
    assert storage.stat(key) == StoredObject(size=len(body), content_type="audio/opus")
    client.remove_object(bucket, key)
    client.remove_bucket(bucket)


# ---------------------------------------------------------------- no server needed


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_presigning_makes_no_network_call(scheme: str) -> None:
    port = free_port()  # nothing listens: any request would fail after retries
    settings = Settings(s3_endpoint=f"{scheme}://127.0.0.1:{port}",
                        s3_public_endpoint=f"{scheme}://files.example:{port}",
                        s3_access_key="AK", s3_secret_key="SK", s3_region="eu-west-3")
    storage = Storage(settings)
    upload = storage.presign_upload("a/b.opus", "audio/opus")
    assert upload.url == f"{scheme}://files.example:{port}/attachments"
    assert "/eu-west-3/s3/aws4_request" in upload.fields["x-amz-credential"]
    url, _ = storage.presign_download("a/b.opus")
    assert url.startswith(f"{scheme}://files.example:{port}/attachments/a/b.opus?")


def test_presign_upload_refuses_disallowed_types_and_bad_keys() -> None:
    storage = Storage(Settings(s3_endpoint="http://127.0.0.1:9", s3_access_key="AK",
                               s3_secret_key="SK"))
    for content_type in ("text/html", "audio/opus; codecs=opus", "audio", "", "audio/*"):
        with pytest.raises(UploadRefusedError):
            storage.presign_upload("a/b.opus", content_type)
    with pytest.raises(UploadRefusedError):
        storage.presign_upload("", "audio/opus")
    upload = storage.presign_upload("a/b.opus", " Audio/OPUS ")
    assert upload.fields["Content-Type"] == "audio/opus"  # the exact string the policy binds
    with pytest.raises(ValueError, match="timezone-aware"):
        storage.presign_upload("a/b.opus", "audio/opus", now=datetime(2024, 1, 1))


@pytest.mark.parametrize(("content_type", "patterns", "allowed"), [
    ("audio/opus", ["audio/*"], True),
    ("AUDIO/Opus", ["audio/*"], True),
    ("audio/opus", ["Audio/*"], True),
    ("audio/x-m4a", ["audio/*"], True),
    ("audio/vnd.wave+xml", ["audio/*"], True),
    ("video/mp4", ["audio/*"], False),
    ("audiox/opus", ["audio/*"], False),
    ("text/html", ["audio/*"], False),
    ("image/png", ["audio/*", "image/png"], True),
    ("image/pngx", ["image/png"], False),
    ("image/jpeg", ["image/png"], False),
    ("anything/else", ["*/*"], True),
    ("audio/opus; codecs=opus", ["audio/*"], False),
    ("audio/opus;codecs=opus", ["audio/opus;codecs=opus"], False),
    ("audio/ opus", ["audio/*"], False),
    ("audio/*", ["audio/*"], False),
    ("audio", ["audio/*"], False),
    ("/opus", ["audio/*"], False),
    ("", ["audio/*"], False),
    ("audio/opus\r\nX-Evil: 1", ["audio/*"], False),
    ("audio/opus", [], False),
])
def test_content_type_allowed(content_type: str, patterns: list[str], allowed: bool) -> None:
    assert content_type_allowed(content_type, patterns) is allowed


@pytest.mark.parametrize(("filename", "expected"), [
    ("voice.opus", "voice.opus"),
    ("../../etc/passwd", "passwd"),
    ("a/b\\c.opus", "c.opus"),
    ("C:\\Users\\me\\voice.opus", "voice.opus"),
    ("vo\x00ice\n\r\t.op\x7fus", "voice.opus"),
    ("evil\u202egpj.opus", "evilgpj.opus"),  # bidi override
    ("  many   spaces\u00a0here .opus ", "many spaces here .opus"),
    ("..hidden.opus", "hidden.opus"),
    ("trailing...", "trailing"),
    ("e\u0301te\u0301.opus", "\u00e9t\u00e9.opus"),  # NFC
    ("Голос №1.opus", "Голос №1.opus"),
])
def test_safe_filename(filename: str, expected: str) -> None:
    assert safe_filename(filename) == expected
    assert safe_filename(expected) == expected  # idempotent: object_key may re-apply it


def test_safe_filename_truncates_long_names_keeping_the_extension() -> None:
    name = safe_filename("x" * 500 + ".opus")
    assert len(name) == MAX_FILENAME_CHARS
    assert name.endswith("x.opus")
    no_ext = safe_filename("y" * 500)
    assert no_ext == "y" * MAX_FILENAME_CHARS
    long_ext = safe_filename("z." + "e" * 300)
    assert len(long_ext) == MAX_FILENAME_CHARS


@pytest.mark.parametrize("filename", ["", "   ", "..", ".", "a/", "dir/..", "\x00\x01", "\u202e"])
def test_safe_filename_refuses_unusable_names(filename: str) -> None:
    with pytest.raises(UploadRefusedError):
        safe_filename(filename)


def test_object_key() -> None:
    attachment_id = uuid.UUID("550e8400-e29b-41d4-a716-446655440000")
    assert object_key(attachment_id, "../x/audio.opus") == f"{attachment_id}/audio.opus"
    with pytest.raises(UploadRefusedError):
        object_key(attachment_id, "/")
