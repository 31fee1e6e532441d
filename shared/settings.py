"""Configuration of every Parley process, read from the environment (one place, one name each)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from shared.cors import CorsPolicy, OriginPatternError, normalize_origin_entries

# The services' connection pools run in autocommit: a read is one round trip (no COMMIT after
# it; PostgreSQL's READ COMMITTED gives each statement its own snapshot either way), and the
# few multi-statement writes open `conn.transaction()` themselves.
AUTOCOMMIT = {"autocommit": True}


class ConfigurationError(Exception):
    """A required setting is missing or malformed."""


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from exc


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(_float(env, name, default))


def _positive(value: int, name: str) -> int:
    if value < 1:
        raise ConfigurationError(f"{name} must be at least 1, got {value}")
    return value


def _list(env: Mapping[str, str], name: str, default: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in env.get(name, default).split(",") if item.strip())


def _origins(env: Mapping[str, str]) -> tuple[str, ...]:
    try:
        return normalize_origin_entries(_list(env, "CORS_ORIGINS", ""))
    except OriginPatternError as exc:
        raise ConfigurationError(f"CORS_ORIGINS: {exc}") from exc


@dataclass(frozen=True)
class PostgresParams:
    """The parts of DATABASE_URL that eventsourcing wants as separate variables."""

    dbname: str
    host: str
    port: str
    user: str
    password: str


def parse_database_url(url: str) -> PostgresParams:
    """Split a libpq URL (host may be a unix socket dir given as ?host=...)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ConfigurationError("DATABASE_URL must start with postgresql://")
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "localhost"])[0]
    return PostgresParams(
        dbname=unquote(parts.path.lstrip("/")) or "parley",
        host=host,
        port=str(query.get("port", [parts.port or 5432])[0]),
        user=unquote(parts.username or "postgres"),
        password=unquote(parts.password or ""),
    )


@dataclass(frozen=True)
class Settings:
    """Every setting of every service; see the README's configuration table."""

    database_url: str = ""
    read_database_url: str = ""  # a streaming replica for the query API ("": DATABASE_URL)
    nats_url: str = ""
    s3_endpoint: str = ""
    s3_public_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_bucket: str = "attachments"
    s3_region: str = "us-east-1"
    jwt_key_file: str = ""
    jwt_public_key_file: str = ""
    jwt_issuer: str = "parley"
    jwt_audience: str = "parley-api"
    access_token_ttl: float = 900.0
    refresh_token_ttl: float = 7 * 24 * 3600.0
    idempotency_ttl: float = 24 * 3600.0
    consistency_timeout: float = 5.0
    replica_wait: float = 1.0
    ready_max_stall: float = 15.0
    login_window: float = 900.0
    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 30
    db_pool_size: int = 10
    nats_stream: str = "PARLEY"
    nats_retention_days: float = 7.0
    nats_replicas: int = 1
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    upload_content_types: tuple[str, ...] = ("audio/*",)
    upload_max_bytes: int = 20 * 1024 * 1024
    upload_ttl: float = 900.0
    data_dir: Path = Path(".parley")
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    register_window: float = 3600.0
    register_max_per_address: int = 50
    write_rate_per_user: float = 50.0
    write_burst_per_user: int = 100
    ws_max_sockets_per_user: int = 20
    ws_max_concurrent_resumes: int = 4
    ws_resume_wait: float = 10.0
    typing_interval: float = 1.8
    presence_ttl: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read settings from the environment (defaults suit `parley up`)."""
        env = os.environ if env is None else env
        s3_endpoint = env.get("S3_ENDPOINT", "")
        return cls(
            database_url=env.get("DATABASE_URL", ""),
            read_database_url=env.get("READ_DATABASE_URL", ""),
            nats_url=env.get("NATS_URL", ""),
            s3_endpoint=s3_endpoint,
            s3_public_endpoint=env.get("S3_PUBLIC_ENDPOINT", "") or s3_endpoint,
            s3_access_key=env.get("S3_ACCESS_KEY", ""),
            s3_secret_key=env.get("S3_SECRET_KEY", ""),
            s3_bucket=env.get("S3_BUCKET", "attachments"),
            s3_region=env.get("S3_REGION", "us-east-1"),
            jwt_key_file=env.get("JWT_KEY_FILE", ""),
            jwt_public_key_file=env.get("JWT_PUBLIC_KEY_FILE", ""),
            jwt_issuer=env.get("JWT_ISSUER", "parley"),
            jwt_audience=env.get("JWT_AUDIENCE", "parley-api"),
            access_token_ttl=_float(env, "ACCESS_TOKEN_TTL", 900.0),
            refresh_token_ttl=_float(env, "REFRESH_TOKEN_TTL", 7 * 24 * 3600.0),
            idempotency_ttl=_float(env, "IDEMPOTENCY_TTL", 24 * 3600.0),
            consistency_timeout=_float(env, "CONSISTENCY_TIMEOUT", 5.0),
            replica_wait=_float(env, "REPLICA_WAIT", 1.0),
            ready_max_stall=_float(env, "READY_MAX_STALL", 15.0),
            login_window=_float(env, "LOGIN_THROTTLE_WINDOW", 900.0),
            login_max_failures_per_account=_int(env, "LOGIN_MAX_FAILURES_PER_ACCOUNT", 5),
            login_max_failures_per_address=_int(env, "LOGIN_MAX_FAILURES_PER_ADDRESS", 30),
            db_pool_size=_int(env, "DB_POOL_SIZE", 10),
            nats_stream=env.get("NATS_STREAM", "PARLEY"),
            nats_retention_days=_float(env, "NATS_RETENTION_DAYS", 7.0),
            nats_replicas=_positive(_int(env, "NATS_REPLICAS", 1), "NATS_REPLICAS"),
            cors_origins=_origins(env),
            upload_content_types=_list(env, "UPLOAD_CONTENT_TYPES", "audio/*"),
            upload_max_bytes=_int(env, "UPLOAD_MAX_BYTES", 20 * 1024 * 1024),
            upload_ttl=_float(env, "UPLOAD_TTL", 900.0),
            data_dir=Path(env.get("PARLEY_DATA_DIR", ".parley")),
            trusted_proxies=_list(env, "TRUSTED_PROXIES", ""),
            register_window=_float(env, "REGISTER_WINDOW", 3600.0),
            register_max_per_address=_int(env, "REGISTER_MAX_PER_ADDRESS", 50),
            write_rate_per_user=_float(env, "WRITE_RATE_PER_USER", 50.0),
            write_burst_per_user=_int(env, "WRITE_BURST_PER_USER", 100),
            ws_max_sockets_per_user=_positive(_int(env, "WS_MAX_SOCKETS_PER_USER", 20),
                                              "WS_MAX_SOCKETS_PER_USER"),
            ws_max_concurrent_resumes=_positive(_int(env, "WS_MAX_CONCURRENT_RESUMES", 4),
                                                "WS_MAX_CONCURRENT_RESUMES"),
            ws_resume_wait=_float(env, "WS_RESUME_WAIT", 10.0),
            typing_interval=_float(env, "TYPING_INTERVAL", 1.8),
            presence_ttl=_float(env, "PRESENCE_TTL", 30.0),
        )

    def require(self, *names: str) -> None:
        """Fail fast, with the variable's name, when a service starts without what it needs."""
        missing = [n.upper() for n in names if not getattr(self, n)]
        if missing:
            raise ConfigurationError(f"missing configuration: {', '.join(missing)}")

    @property
    def cors(self) -> CorsPolicy:
        """Pages allowed to call the API and open `/ws` (none: same origin only)."""
        return CorsPolicy(self.cors_origins)

    @property
    def nats_servers(self) -> list[str]:
        """The seeds of NATS_URL (comma-separated): a client given all of them connects while
        any one is up, and fails over to the others (it also learns the cluster's members)."""
        return [url.strip() for url in self.nats_url.split(",") if url.strip()]

    @property
    def postgres(self) -> PostgresParams:
        self.require("database_url")
        return parse_database_url(self.database_url)

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment the eventsourcing library reads for the event store."""
        pg = self.postgres
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": pg.dbname,
            "POSTGRES_HOST": pg.host,
            "POSTGRES_PORT": pg.port,
            "POSTGRES_USER": pg.user,
            "POSTGRES_PASSWORD": pg.password,
            "POSTGRES_POOL_SIZE": str(self.db_pool_size),
            "POSTGRES_MAX_OVERFLOW": str(self.db_pool_size),
            "POSTGRES_CONNECT_TIMEOUT": "10",
            # Never POSTGRES_ENABLE_DB_FUNCTIONS=y: eventsourcing 9.5.6's insert function skips
            # the table lock, so appends can commit out of log order and a projector reading
            # "after position N" steps over the late one for good (tests/integration/
            # test_ordering.py reproduces it). The lock makes commit order = log order.
            "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
            "POSTGRES_LOCK_TIMEOUT": "5",
        }
