"""The command API's ASGI app: `uvicorn command_api.app:create_app --factory`."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

from command_api import attachments, auth, chats, messages, reactions
from command_api.buckets import WriteBuckets
from command_api.context import COMMAND_EXCEPTION_HANDLERS, Context
from command_api.throttle import LoginThrottle, RegistrationLimit
from domain.app import Parley
from domain.uploads import UploadPolicy
from shared.jwt.tokens import TokenService
from shared.postgres.positions import PositionWaiter
from shared.postgres.sessions import EndedSessions
from shared.s3.storage import Storage
from shared.settings import AUTOCOMMIT, Settings
from shared.web.proxies import TrustedProxies
from shared.web.routes import api_routes
from shared.web.service import middleware, service_routes

# The operations this service serves (paths and methods: shared/openapi), by id.
HANDLERS = {
    "post_auth_register": auth.register,
    "post_auth_login": auth.login,
    "post_auth_refresh": auth.refresh,
    "post_auth_logout": auth.logout,
    "post_chats": chats.create_chat,
    "patch_chats_chat_id": chats.update_chat,
    "delete_chats_chat_id": chats.delete_chat,
    "post_chats_chat_id_members": chats.add_members,
    "delete_chats_chat_id_members_user_id": chats.remove_member,
    "put_chats_chat_id_read": chats.mark_read,
    "post_messages": messages.post_message,
    "patch_messages_message_id": messages.edit_message,
    "delete_messages_message_id": messages.delete_message,
    "post_attachments": attachments.create_attachment,
    "post_messages_message_id_reactions": reactions.add_reaction,
    "delete_messages_message_id_reactions_emoji": reactions.remove_reaction,
}


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env()
    settings.require("database_url", "jwt_key_file")
    proxies = TrustedProxies(settings.trusted_proxies)  # a bad entry fails here, at start
    writes = WriteBuckets(settings.write_rate_per_user, settings.write_burst_per_user)
    state: dict[str, Context] = {}
    # Keyed fingerprints of idempotent requests (bodies hold passwords): a secret per deployment.
    secret = hashlib.sha256(b"idempotency\0" + Path(settings.jwt_key_file).read_bytes()).digest()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        parley = await run_in_threadpool(Parley, settings.eventsourcing_env())
        parley.idempotency_ttl = settings.idempotency_ttl
        parley.uploads = UploadPolicy(settings.upload_content_types, settings.upload_max_bytes)
        pool = AsyncConnectionPool(settings.database_url, min_size=2, max_size=8, open=False,
                                   kwargs=AUTOCOMMIT)
        await pool.open(wait=True)
        # a write waits for what the reads see: the replica (bounded by REPLICA_WAIT), if any
        waiter = PositionWaiter(settings.database_url, settings.read_database_url,
                                settings.replica_wait)
        await waiter.start()
        throttle = LoginThrottle(pool, settings.login_window,
                                 settings.login_max_failures_per_account,
                                 settings.login_max_failures_per_address)
        await throttle.create_tables()
        registrations = RegistrationLimit(pool, settings.register_window,
                                          settings.register_max_per_address)
        await registrations.create_tables()
        storage = Storage(settings) if settings.s3_endpoint else None
        ctx = Context(settings=settings, commands=parley, tokens=TokenService(settings),
                      throttle=throttle, waiter=waiter, sessions=EndedSessions(pool),
                      fingerprint_secret=secret, storage=storage,
                      registrations=registrations, writes=writes, proxies=proxies,
                      readmodels=pool)
        app.state.context = state["ctx"] = ctx
        # checked after a database error (shared/web/endpoints.py): ours and the event store's
        app.state.pools = [pool, parley.datastore_pool]
        try:
            yield
        finally:
            await waiter.stop()
            await pool.close()
            await run_in_threadpool(parley.close)

    async def ready() -> str | None:
        ctx = state.get("ctx")
        if ctx is None:
            return "starting"
        try:
            async with ctx.throttle.pool.connection() as conn:
                await conn.execute("SELECT 1")
        except Exception as exc:
            return f"database unreachable: {type(exc).__name__}"
        return None

    return Starlette(routes=[*api_routes(HANDLERS), *service_routes(ready)], lifespan=lifespan,
                     exception_handlers=COMMAND_EXCEPTION_HANDLERS,
                     middleware=middleware(settings, "command"))
