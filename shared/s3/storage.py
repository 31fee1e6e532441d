"""Everything Parley does with object storage (S3: MinIO in production, SeaweedFS embedded).

Synchronous on purpose: callers run it in a thread pool. Presigning is pure computation (the
region is configured, so the SDK never asks the server for it); only `stat` and `ensure_bucket`
touch the network, through the internal endpoint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import certifi
import urllib3
from minio import Minio
from minio.datatypes import PostPolicy
from minio.error import S3Error

from domain.uploads import UploadRefusedError, content_type_allowed, normalize_content_type
from shared.settings import ConfigurationError, Settings

# Every upload is stored with this header and must send it as a form field: the policy pins it,
# because SeaweedFS stores unsigned Content-Disposition/Cache-Control/... fields as object headers.
CONTENT_DISPOSITION = "attachment"
_NOT_FOUND = {"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"}


@dataclass(frozen=True)
class PresignedUpload:
    """Where and how a client uploads one file: POST `fields` then the file to `url`."""

    url: str
    fields: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True)
class StoredObject:
    """What the server holds for a key."""

    size: int
    content_type: str


def _aware(now: datetime | None) -> datetime:
    """`now` (must be timezone-aware) or the current time, in UTC."""
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _client(endpoint: str, settings: Settings, http: urllib3.PoolManager) -> tuple[Minio, str]:
    """A Minio client for an http(s)://host[:port] endpoint, and the endpoint normalized."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/"):
        raise ConfigurationError(f"S3 endpoint must be http(s)://host[:port], got {endpoint!r}")
    client = Minio(parts.netloc, access_key=settings.s3_access_key,
                   secret_key=settings.s3_secret_key, secure=parts.scheme == "https",
                   region=settings.s3_region, http_client=http)
    return client, f"{parts.scheme}://{parts.netloc}"


class Storage:
    """Object storage of attachments: presigned POST/GET plus server-side checks."""

    def __init__(self, settings: Settings) -> None:
        """Internal client for requests, public client only for presigning (host is signed)."""
        settings.require("s3_endpoint", "s3_access_key", "s3_secret_key", "s3_bucket",
                         "s3_region")
        self.settings = settings
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=30), maxsize=20,
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(total=3, backoff_factor=0.2,
                                  status_forcelist=[500, 502, 503, 504]))
        self._internal, _ = _client(settings.s3_endpoint, settings, http)
        public = settings.s3_public_endpoint or settings.s3_endpoint
        self._public, self.public_endpoint = _client(public, settings, http)

    def presign_upload(self, key: str, content_type: str,
                       now: datetime | None = None) -> PresignedUpload:
        """A POST policy binding key, exact Content-Type, Content-Disposition, size and expiry."""
        settings = self.settings
        value = normalize_content_type(content_type)
        if value is None or not content_type_allowed(value, settings.upload_content_types):
            raise UploadRefusedError(f"content type {content_type!r} is not allowed")
        if not key or key.startswith("/") or len(key.encode()) > 1024:
            raise UploadRefusedError(f"bad object key {key!r}")
        expires_at = _aware(now) + timedelta(seconds=settings.upload_ttl)
        policy = PostPolicy(settings.s3_bucket, expires_at)
        policy.add_equals_condition("key", key)
        policy.add_equals_condition("Content-Type", value)
        policy.add_equals_condition("Content-Disposition", CONTENT_DISPOSITION)
        policy.add_content_length_range_condition(1, settings.upload_max_bytes)
        signed = self._public.presigned_post_policy(policy)
        fields = {"key": key, "Content-Type": value, "Content-Disposition": CONTENT_DISPOSITION,
                  **signed}
        return PresignedUpload(f"{self.public_endpoint}/{settings.s3_bucket}", fields, expires_at)

    def remove(self, key: str) -> None:
        """Delete the object (an operator's erasure); a missing one is not an error."""
        self._internal.remove_object(self.settings.s3_bucket, key)

    def stat(self, key: str) -> StoredObject | None:
        """Size and content type of the stored object, None if there is none."""
        try:
            found = self._internal.stat_object(self.settings.s3_bucket, key)
        except S3Error as exc:
            if exc.code in _NOT_FOUND:
                return None
            raise
        return StoredObject(size=int(found.size or 0), content_type=found.content_type or "")

    def presign_download(self, key: str, ttl: timedelta = timedelta(minutes=5), *,
                         now: datetime | None = None) -> tuple[str, datetime]:
        """A GET URL on the public endpoint valid for `ttl`, and when it expires."""
        signed_at, seconds = _aware(now).replace(microsecond=0), int(ttl.total_seconds())
        # signed overrides beat headers an uploader smuggled in as unsigned form fields
        # (SeaweedFS stores Cache-Control, Content-Encoding, ... it was never asked to allow)
        overrides: dict[str, str | list[str] | tuple[str]] = {
            "response-content-disposition": CONTENT_DISPOSITION,
            "response-content-encoding": "identity",
            "response-cache-control": f"private, max-age={seconds}"}
        ttl = timedelta(seconds=seconds)  # X-Amz-Expires is whole seconds
        url = self._public.presigned_get_object(self.settings.s3_bucket, key, expires=ttl,
                                                response_headers=overrides,
                                                request_date=signed_at)
        return url, signed_at + ttl

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (tolerates a concurrent creator)."""
        bucket = self.settings.s3_bucket
        if self._internal.bucket_exists(bucket):
            return
        try:
            self._internal.make_bucket(bucket, location=self.settings.s3_region)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
