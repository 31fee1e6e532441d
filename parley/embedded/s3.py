"""Embedded S3 (SeaweedFS `weed mini`): credentials, the bucket, and its own sockets."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from parley.embedded.processes import ChildProcess, binary, child, http_status, wait_for
from shared.cors import CorsPolicy

log = logging.getLogger(__name__)


def _s3_credentials(s3_dir: Path) -> tuple[str, str, Path]:
    """Load or create credentials.json, weed's identity file with our single access key."""
    path = s3_dir / "credentials.json"
    if not path.exists():
        creds = {"accessKey": "PARLEY" + secrets.token_hex(7).upper(),
                 "secretKey": secrets.token_urlsafe(30)}
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        identity = {"name": "parley", "credentials": [creds], "actions": actions}
        path.touch(mode=0o600)
        path.write_text(json.dumps({"identities": [identity]}, indent=2))
    creds = json.loads(path.read_text())["identities"][0]["credentials"][0]
    return creds["accessKey"], creds["secretKey"], path


def _port_pairs(count: int) -> list[int]:
    """Return `count` free ports p whose p + 10000 (weed's default gRPC offset) is free too."""
    with contextlib.ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < count:
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            with contextlib.suppress(OSError):
                if port + 10000 < 65536:  # keep both bound so no later pick collides
                    stack.enter_context(socket.socket()).bind(("127.0.0.1", port + 10000))
                    ports.append(port)
        return ports


def _socket_path(directory: Path, name: str) -> Path:
    """Unix socket path in `directory`, or in the temp dir if too long for sun_path."""
    path = directory / name
    if len(str(path)) < 100:
        return path
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"parley-{digest}-{name}"


def storage_origins(cors: CorsPolicy, own: Sequence[str]) -> str:
    """What the embedded S3 answers CORS for (`-s3.allowedOrigins`): the policy's exact origins
    plus the API's own (`own`: a page Parley serves is cross-origin to storage), or `*`.

    `*` when the policy has a port wildcard: SeaweedFS matches an Origin exactly or against
    `scheme://*suffix`, which cannot say "this host, any port". Also `*` while the API's own
    origin is unknown (port 0). A presigned URL is the credential by itself (storage never sees
    cookies, and a page can play `<audio src>` or submit a form without CORS), so storage CORS
    only decides which pages may read the answers.
    """
    if cors.any_origin or cors.any_port or not own:
        return "*"
    return ",".join(dict.fromkeys([*cors.exact, *own]))


def _weed_cmd(s3_dir: Path, config: Path, ports: dict[str, int],
              allowed_origins: str = "*") -> list[str]:
    """`weed mini` with all listeners on 127.0.0.1 at ports we chose and the extras off."""
    # grpc = http + 10000 on purpose: mini's maintenance worker dials admin at that offset anyway
    port_flags = [flag for name, p in ports.items()
                  for flag in (f"-{name}.port={p}", f"-{name}.port.grpc={p + 10000}")]
    return [binary("weed"), "mini", f"-dir={s3_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            *port_flags, f"-s3.config={config}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.allowedOrigins={allowed_origins}",
            "-webdav=false", "-admin.ui=false", "-master.telemetry=false",
            "-volume.preStopSeconds=0", "-master.volumeSizeLimitMB=64",
            "-volume.max=32",  # volumes are created lazily; this caps the store at 2 GiB
            f"-filer.localSocket={_socket_path(s3_dir, 'filer.sock')}",
            f"-s3.localSocket={_socket_path(s3_dir, 's3.sock')}"]


def _remove_weed_sockets(ports: dict[str, int]) -> None:
    """Delete the dead gRPC sockets weed hardcodes as /tmp/seaweedfs-<name>-grpc-<port>.sock."""
    for name, port in ports.items():
        path = Path(f"/tmp/seaweedfs-{name}-grpc-{port + 10000}.sock")
        with socket.socket(socket.AF_UNIX) as sock, contextlib.suppress(OSError):
            sock.connect(str(path))
            continue  # someone serves on it: not ours to delete
        path.unlink(missing_ok=True)


def _clear_stale_weed_state(s3_dir: Path) -> None:
    """Drop saved mini options and the per-port master state dirs (m<port>) of earlier runs."""
    (s3_dir / "mini.options").unlink(missing_ok=True)  # mini reloads them; ours are all explicit
    # a master on a new port starts fresh and relearns volumes (and max file ids) from heartbeats;
    # an old m<port> dir is garbage that must not be resumed should that port come round again
    for old in s3_dir.glob("m[0-9]*"):
        if old.is_dir() and old.name[1:].isdigit():
            shutil.rmtree(old)


def _weed_env(s3_dir: Path) -> dict[str, str]:
    """Our environment minus variables weed would take as extra credentials or config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_", "WEED_"))}
    tmp = s3_dir / "tmp"  # multipart POST bodies spill to TMPDIR: keep them in our data dir
    tmp.mkdir(exist_ok=True)
    return env | {"HOME": str(s3_dir), "TMPDIR": str(tmp)}  # weed reads ~/.seaweedfs/*.toml


def _ensure_bucket(endpoint: str, access: str, secret: str, bucket: str) -> bool:
    """Create the bucket if missing (raises while the filer behind S3 is still starting)."""
    from minio import Minio

    client = Minio(endpoint.removeprefix("http://"), access_key=access, secret_key=secret,
                   secure=False)
    if not client.bucket_exists(bucket):
        client.make_bucket(bucket)
    return True


@contextlib.contextmanager
def s3_server(data_dir: Path, bucket: str = "attachments", allowed_origins: str = "*",
              ) -> Iterator[tuple[tuple[str, str, str], ChildProcess]]:
    """Run SeaweedFS (`weed mini`) on data_dir/s3; yield (endpoint, access key, secret key) and
    its process. A restart keeps the ports and data and starts a fresh master, as every start
    does (it relearns the volumes from their heartbeats)."""
    started = time.monotonic()
    data_dir = Path(data_dir).resolve()
    s3_dir = data_dir / "s3"
    s3_dir.mkdir(parents=True, exist_ok=True)
    access, secret, config = _s3_credentials(s3_dir)
    _clear_stale_weed_state(s3_dir)
    ports_file = s3_dir / "ports.json"
    if ports_file.exists():  # a SIGKILLed run had no chance to clean up after weed
        _remove_weed_sockets(json.loads(ports_file.read_text()))
    ports = dict(zip(["master", "volume", "filer", "s3", "admin"], _port_pairs(5), strict=True))
    ports_file.write_text(json.dumps(ports))
    cmd = _weed_cmd(s3_dir, config, ports, allowed_origins)
    endpoint = f"http://127.0.0.1:{ports['s3']}"

    def prepare_restart() -> None:
        _clear_stale_weed_state(s3_dir)
        _remove_weed_sockets(ports)

    try:
        with child("s3", cmd, data_dir, s3_dir, _weed_env(s3_dir), prepare_restart) as server:
            wait_for(lambda: http_status(endpoint), 60, "weed s3", server.log_file, server.process)
            wait_for(lambda: _ensure_bucket(endpoint, access, secret, bucket), 60,
                     f"weed bucket {bucket}", server.log_file, server.process)
            log.info("s3 ready in %.2fs", time.monotonic() - started)
            yield (endpoint, access, secret), server
    finally:
        _remove_weed_sockets(ports)


@contextlib.contextmanager
def embedded_s3(data_dir: Path, bucket: str = "attachments",
                allowed_origins: str = "*") -> Iterator[tuple[str, str, str]]:
    """Run SeaweedFS (`weed mini`) on data_dir/s3; yield (endpoint, access key, secret key).

    `allowed_origins`: the pages it answers CORS for, comma-separated (see storage_origins).
    """
    with s3_server(data_dir, bucket, allowed_origins) as (credentials, _):
        yield credentials
