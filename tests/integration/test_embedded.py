"""Integration tests for parley.embedded: real PostgreSQL, NATS and SeaweedFS child processes."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import psutil
import psycopg
import pytest
from minio import Minio
from minio.datatypes import PostPolicy
from minio.error import S3Error

from parley.embedded import (
    Endpoints,
    data_dir_lock,
    embedded_postgres,
    embedded_servers,
    wait_for,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MAX_SIZE = 1024 * 1024
TEN_MINUTES = dt.timedelta(minutes=10)


def _procs_using(path: Path) -> list[psutil.Process]:
    """Processes whose command line mentions `path` (our servers always do)."""
    return [proc for proc in psutil.process_iter(["cmdline"])
            if any(str(path) in arg for arg in proc.info["cmdline"] or [])]


def _postmaster(data_dir: Path) -> psutil.Process:
    """The process recorded in postmaster.pid."""
    return psutil.Process(int((data_dir / "postgres" / "postmaster.pid").read_text().split()[0]))


def _exited(proc: psutil.Process) -> bool:
    """Gone or a zombie (reaping the daemonized postmaster is up to init)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding the module's servers."""
    return tmp_path_factory.mktemp("embedded").resolve()


@pytest.fixture(scope="module")
def servers(data_dir: Path) -> Iterator[Endpoints]:
    """All three servers for the module; asserts nothing is left running afterwards."""
    with embedded_servers(data_dir) as endpoints:
        yield endpoints
    assert not _procs_using(data_dir)


# ---------------------------------------------------------------- PostgreSQL


def test_postgres_serves_parley_database_on_own_socket(servers: Endpoints, data_dir: Path) -> None:
    with psycopg.connect(servers.database_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT current_database()").fetchone() == ("parley",)
        max_connections = conn.execute("SHOW max_connections").fetchone()
        assert max_connections is not None and int(max_connections[0]) >= 200
        assert conn.info.host.startswith(str(data_dir))  # our own unix socket, not the system PG


# ---------------------------------------------------------------- NATS


async def _publish_twice(url: str) -> tuple[Any, Any, Any]:
    """Publish the same Nats-Msg-Id twice to a fresh file stream."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.add_stream(name="EMBEDDED_DEDUP", subjects=["embedded.dedup"])
        headers = {"Nats-Msg-Id": "msg-1"}
        first = await js.publish("embedded.dedup", b"hello", headers=headers)
        second = await js.publish("embedded.dedup", b"hello", headers=headers)
        return info, first, second
    finally:
        await nc.close()


def test_nats_jetstream_deduplicates_by_msg_id(servers: Endpoints, data_dir: Path) -> None:
    info, first, second = asyncio.run(_publish_twice(servers.nats_url))
    assert info.config.storage == "file"
    assert not first.duplicate
    assert second.duplicate and second.seq == first.seq
    assert (data_dir / "nats" / "jetstream").is_dir()


# ---------------------------------------------------------------- S3


def _client(ep: Endpoints, secret: str | None = None) -> Minio:
    """Minio client for the embedded endpoint."""
    return Minio(ep.s3_endpoint.removeprefix("http://"), access_key=ep.s3_access_key,
                 secret_key=secret or ep.s3_secret_key, secure=False)


def _post_form(ep: Endpoints, key: str, expires_in: dt.timedelta = TEN_MINUTES,
               **pinned: str) -> dict[str, str]:
    """Presigned POST form fields for `key`, audio/opus, 1 byte .. 1 MiB (+ pinned fields)."""
    policy = PostPolicy(ep.s3_bucket, dt.datetime.now(dt.UTC) + expires_in)
    policy.add_equals_condition("key", key)
    policy.add_equals_condition("Content-Type", "audio/opus")
    policy.add_content_length_range_condition(1, MAX_SIZE)
    for field, value in pinned.items():
        policy.add_equals_condition(field.replace("_", "-"), value)
    fields = {field.replace("_", "-"): value for field, value in pinned.items()}
    return {**_client(ep).presigned_post_policy(policy), "key": key, "Content-Type": "audio/opus",
            **fields}


def _post(ep: Endpoints, fields: dict[str, str], body: bytes) -> httpx.Response:
    """Browser-style multipart POST with the file part last."""
    return httpx.post(f"{ep.s3_endpoint}/{ep.s3_bucket}", data=fields,
                      files={"file": ("voice.opus", body, "audio/opus")})


def _stored(ep: Endpoints, key: str) -> bool:
    """True if the object exists."""
    try:
        _client(ep).stat_object(ep.s3_bucket, key)
        return True
    except S3Error as exc:
        assert exc.code == "NoSuchKey"
        return False


def test_s3_presigned_post_accepts_matching_upload(servers: Endpoints) -> None:
    fields = _post_form(servers, "ok/voice.opus")
    response = _post(servers, fields, b"x" * MAX_SIZE)  # exactly the maximum is allowed
    assert response.status_code == 204, response.text
    stat = _client(servers).stat_object(servers.s3_bucket, "ok/voice.opus")
    assert (stat.size, stat.content_type) == (MAX_SIZE, "audio/opus")


@pytest.mark.parametrize(("case", "status", "code"), [
    ("wrong_content_type", 403, "AccessDenied"),
    ("missing_content_type", 403, "AccessDenied"),
    ("other_key", 403, "AccessDenied"),
    ("oversize", 400, "EntityTooLarge"),
    ("empty", 400, "EntityTooSmall"),
    ("tampered_signature", 403, "SignatureDoesNotMatch"),
    ("expired", 403, "AccessDenied"),
    ("unsigned_meta_field", 403, "AccessDenied"),
])
def test_s3_presigned_post_rejects_policy_violations(servers: Endpoints, case: str, status: int,
                                                     code: str) -> None:
    key = f"bad/{case}.opus"
    expiry = dt.timedelta(minutes=-1) if case == "expired" else TEN_MINUTES
    fields, body = _post_form(servers, key, expiry), b"x" * 100
    if case == "wrong_content_type":
        fields["Content-Type"] = "text/html"
    elif case == "missing_content_type":
        del fields["Content-Type"]
    elif case == "other_key":
        fields["key"] = key = "bad/elsewhere.opus"
    elif case == "oversize":
        body = b"x" * (MAX_SIZE + 1)
    elif case == "empty":
        body = b""
    elif case == "tampered_signature":
        fields["x-amz-signature"] = "0" * 64
    elif case == "unsigned_meta_field":
        fields["x-amz-meta-owner"] = "someone-else"
    response = _post(servers, fields, body)
    assert response.status_code == status, response.text
    assert f"<Code>{code}</Code>" in response.text
    assert not _stored(servers, key)


def test_s3_presigned_post_enforces_pinned_content_disposition(servers: Endpoints) -> None:
    # SeaweedFS stores unsigned Content-Disposition/Cache-Control/... fields as object headers;
    # pinning them in the policy is what makes them safe
    fields = _post_form(servers, "cd/ok.opus", Content_Disposition="attachment")
    assert _post(servers, fields, b"x").status_code == 204
    fields = _post_form(servers, "cd/bad.opus", Content_Disposition="attachment")
    fields["Content-Disposition"] = "inline"
    assert _post(servers, fields, b"x").status_code == 403
    assert not _stored(servers, "cd/bad.opus")


def test_s3_enforces_credentials(servers: Endpoints) -> None:
    with pytest.raises(S3Error) as err:
        _client(servers, secret="wrong-secret").bucket_exists(servers.s3_bucket)
    assert err.value.code == "SignatureDoesNotMatch"
    _client(servers).put_object(servers.s3_bucket, "private.txt", io.BytesIO(b"secret"), 6)
    assert httpx.get(f"{servers.s3_endpoint}/{servers.s3_bucket}/private.txt").status_code == 403
    url = _client(servers).presigned_get_object(servers.s3_bucket, "private.txt",
                                                 dt.timedelta(minutes=5))
    assert httpx.get(url).content == b"secret"
    assert httpx.get(url[:-4] + "0000").status_code == 403


# ---------------------------------------------------------------- lifecycle


async def _stream_messages(url: str, publish: bool) -> int:
    """Optionally publish to stream KEEP, then return how many messages it holds."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        if publish:
            await js.add_stream(name="KEEP", subjects=["keep"])
            await js.publish("keep", b"durable")
        return (await js.stream_info("KEEP")).state.messages
    finally:
        await nc.close()


def test_restart_keeps_data_and_leaves_no_processes(tmp_path: Path) -> None:
    with embedded_servers(tmp_path) as first:
        with psycopg.connect(first.database_url) as conn:
            conn.execute("CREATE TABLE kept (v text)")
            conn.execute("INSERT INTO kept VALUES ('before restart')")
        assert asyncio.run(_stream_messages(first.nats_url, publish=True)) == 1
        _client(first).put_object(first.s3_bucket, "kept.txt", io.BytesIO(b"before"), 6)
        postmaster = _postmaster(tmp_path)
    assert not _procs_using(tmp_path)
    assert _exited(postmaster)

    with embedded_servers(tmp_path) as second:
        assert second.s3_access_key == first.s3_access_key
        with psycopg.connect(second.database_url) as conn:
            assert conn.execute("SELECT v FROM kept").fetchall() == [("before restart",)]
        assert asyncio.run(_stream_messages(second.nats_url, publish=False)) == 1
        # new writes after a restart (fresh weed master) must not clobber existing needles
        for i in range(20):
            _client(second).put_object(second.s3_bucket, f"after-{i}.txt", io.BytesIO(b"after"), 5)
        assert _client(second).get_object(second.s3_bucket, "kept.txt").read() == b"before"
    assert not _procs_using(tmp_path)


def _crash_postgres(data_dir: Path) -> None:
    """SIGKILL the postmaster, leaving postmaster.pid and the socket lock file behind."""
    postmaster = _postmaster(data_dir)
    postmaster.kill()
    wait_for(lambda: _exited(postmaster), 10, "postmaster death")


def test_postgres_restarts_after_crash_even_if_its_pid_was_reused(tmp_path: Path) -> None:
    with embedded_postgres(tmp_path) as url:
        with psycopg.connect(url) as conn:
            conn.execute("CREATE TABLE t AS SELECT 42 AS v")
        _crash_postgres(tmp_path)
    pg = tmp_path / "postgres"
    assert (pg / "postmaster.pid").exists()
    with embedded_postgres(tmp_path) as url:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT v FROM t").fetchone() == (42,)
        _crash_postgres(tmp_path)
    wait_for(lambda: not psutil.pid_exists(int((pg / "postmaster.pid").read_text().split()[0])),
             10, "reaping")
    # the crashed postmaster's pid now belongs to an unrelated live process (here: this one)
    for lock in [pg / "postmaster.pid", pg / ".s.PGSQL.5432.lock"]:
        lock.write_text(f"{os.getpid()}\n" + lock.read_text().split("\n", 1)[1])
    with embedded_postgres(tmp_path) as url, psycopg.connect(url) as conn:
        assert conn.execute("SELECT v FROM t").fetchone() == (42,)
    assert not _procs_using(tmp_path)


def _has(url: str, value: int) -> bool:
    with psycopg.connect(url) as conn:
        return bool(conn.execute("SELECT 1 FROM t WHERE v = %s", (value,)).fetchone())


def test_a_replica_follows_its_primary_and_is_reused_after_an_outage(tmp_path: Path) -> None:
    (tmp_path / "postgres-replica.partial").mkdir(parents=True)  # a base backup cut short
    with embedded_servers(tmp_path, nats=False, s3=False, replica=True) as first:
        with psycopg.connect(first.database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t AS SELECT 1 AS v")
        wait_for(lambda: _has(first.read_database_url, 1), 30, "replication")
        with psycopg.connect(first.read_database_url) as conn:
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
            with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
                conn.execute("INSERT INTO t VALUES (2)")
        assert [s.name for s in first.servers] == ["postgres", "postgres-replica"]
    assert not (tmp_path / "postgres-replica.partial").exists()
    assert not _procs_using(tmp_path)

    with embedded_postgres(tmp_path) as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO t VALUES (3)")  # while the replica is down
    with embedded_servers(tmp_path, nats=False, s3=False, replica=True) as second:
        assert second.read_database_url == first.read_database_url  # same directory, reused
        wait_for(lambda: _has(second.read_database_url, 3), 30, "catching up through the slot")
    assert not _procs_using(tmp_path)


_CHILD_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from parley.embedded import embedded_servers
    with embedded_servers(Path(sys.argv[1])) as ep:
        print(ep.nats_url, flush=True)
        time.sleep(600)
""")


def _weed_sockets(data_dir: Path) -> list[Path]:
    """The unix sockets the running weed listens on outside its data dir (the gRPC ones it
    hardcodes in /tmp), as the kernel lists them."""
    [weed] = [p for p in _procs_using(data_dir) if p.name() == "weed"]
    found = sorted(Path(c.laddr) for c in weed.net_connections("unix")
                   if c.laddr and not c.laddr.startswith(str(data_dir)))
    assert found, "weed listens on no unix socket outside its data dir"
    return found


def _run_parent(data_dir: Path) -> subprocess.Popen[str]:
    """Start a Python process running all embedded servers; return once they are up."""
    args = [sys.executable, "-c", _CHILD_SCRIPT, str(data_dir)]
    proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().startswith("nats://")
    return proc


def test_sigterm_to_parent_stops_all_servers(tmp_path: Path) -> None:
    parent = _run_parent(tmp_path)
    postmaster = _postmaster(tmp_path)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(60) == 128 + signal.SIGTERM
    assert not _procs_using(tmp_path)
    assert _exited(postmaster)


def test_sigkilled_parent_children_die_and_orphaned_postgres_is_adopted(tmp_path: Path) -> None:
    parent = _run_parent(tmp_path)
    postmaster = _postmaster(tmp_path)
    sockets = _weed_sockets(tmp_path)
    parent.kill()
    parent.wait(10)
    # PDEATHSIG takes nats-server and weed down; pg_ctl daemonized postgres, so it survives ...
    wait_for(lambda: _procs_using(tmp_path) == [postmaster], 30, "PDEATHSIG cleanup")
    left = [sock for sock in sockets if sock.exists()]
    assert left, sockets  # weed, on its parent's death, leaves some of them behind (s3's gRPC)
    # ... until the next start adopts postgres through postmaster.pid (and stops it on exit)
    # and removes the dead sockets
    with embedded_servers(tmp_path, nats=False) as endpoints:
        with psycopg.connect(endpoints.database_url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert _postmaster(tmp_path).pid == postmaster.pid
        assert not any(sock.exists() for sock in left)
    assert not _procs_using(tmp_path)
    assert _exited(postmaster)


def test_a_data_directory_has_one_owner_at_a_time(tmp_path: Path) -> None:
    first = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from parley.embedded import data_dir_lock\n"
        "with data_dir_lock(Path(sys.argv[1])):\n"
        "    print('locked', flush=True); time.sleep(60)"), str(tmp_path)], stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2])
    try:
        assert first.stdout is not None and first.stdout.readline() == b"locked\n"
        with pytest.raises(RuntimeError, match=f"in use by another Parley process "
                                               f"\\(pid {first.pid}\\)"):
            with data_dir_lock(tmp_path, wait=0.5):
                pass
    finally:
        first.kill()  # a crash: the lock goes with the process
        first.wait()
    with data_dir_lock(tmp_path, wait=5):
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
