"""A real PostgreSQL for the whole run: embedded by default, or CHORUS_TEST_DATABASE_URL.

Each run gets a fresh database, migrated once. Tests isolate themselves the way tenants
do: every test signs up its own agencies, so nothing leaks between them.
"""

from __future__ import annotations

import os
import secrets
import uuid
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")

ROOT = Path(__file__).resolve().parents[1]


def _admin_url() -> str:
    url = os.environ.get("CHORUS_TEST_DATABASE_URL")
    if url:
        return url
    from domain.core import embedded_db

    _, url = embedded_db.start(ROOT / ".data" / "pg-test", database="postgres")
    return url


def run_admin_sql(url: str, sql: str) -> None:
    """One statement outside any transaction (CREATE/DROP DATABASE), on the server at `url`."""
    import asyncio

    import asyncpg

    parts = make_url(url)

    async def run() -> None:
        conn = await asyncpg.connect(
            user=parts.username, password=parts.password, database=parts.database or "postgres",
            host=parts.query.get("host") or parts.host, port=parts.port,
        )
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@pytest.fixture(scope="session")
def database_url() -> str:
    """Owner URL of a fresh, migrated database for this run."""
    admin = _admin_url()
    name = f"chorus_test_{os.getpid()}_{secrets.token_hex(3)}"
    run_admin_sql(admin, f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    from domain.core import migrate

    migrate.upgrade(url)
    yield url
    run_admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Inbox:
    """A real SMTP server on loopback (aiosmtpd) that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        from email import message_from_bytes, policy

        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list[Any]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture(scope="session")
def smtp_inbox():
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    inbox.url = f"smtp://127.0.0.1:{port}?timeout=5"
    yield inbox
    controller.stop()


@pytest.fixture(scope="session")
def settings(database_url: str, smtp_inbox):
    from domain.core.settings import Settings

    from domain.core.crypto import new_key

    from domain.core.settings import NETWORKS

    return Settings(
        encryption_keys=new_key(),
        network_apps=tuple((n, f"test-client-{n}", f"test-secret-{n}") for n in NETWORKS),
        api_base_url="http://testserver.local",
        smtp_url=smtp_inbox.url,
        database_url=database_url,
        secret_key=secrets.token_urlsafe(32),
        argon2_time_cost=1,
        argon2_memory_kib=1024,
        max_body_bytes=64 * 1024,
        log_json=True,
        public_base_url="https://app.chorus.test",
        # Every test signs up from the same address; the limit has a test of its own.
        auth_rate_limit_per_minute=100_000,
        share_rate_limit_per_minute=100_000,
    )


@pytest.fixture(scope="session")
def app(settings):
    from api.app import create_app

    return create_app(settings)


@pytest.fixture(scope="session")
async def client(app) -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app, base_url="http://testserver.local") as c:
        yield c


@pytest.fixture(scope="session")
async def owner_engine(database_url):
    from domain.core.db import create_engine
    from domain.core.settings import to_asyncpg

    engine = create_engine(to_asyncpg(database_url), pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def app_engine(settings):
    """Connects as the application's role, like the app does."""
    from domain.core.db import create_engine

    engine = create_engine(settings.app_url(), pool_size=2)
    yield engine
    await engine.dispose()


@dataclass
class Tenant:
    """A signed-up agency and its owner, with helpers to call the API as them."""

    client: AsyncTestClient
    agency_id: str
    owner_token: str
    refresh_token: str
    email: str
    password: str
    refresh_tokens: dict[str, str] = field(default_factory=dict)

    async def refreshed(self, access_token: str) -> str:
        """A new access token for the same person (after their role changed, say)."""
        r = await self.client.post("/v1/auth/refresh", json={"refresh_token": self.refresh_tokens.pop(access_token)})
        assert r.status_code == 200, r.text
        self.refresh_tokens[r.json()["access_token"]] = r.json()["refresh_token"]
        return r.json()["access_token"]

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.owner_token}"}

    async def req(self, method: str, path: str, token: str | None = None, **kwargs: Any):
        headers = {**self.auth(token), **kwargs.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def brand(self, name: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {"name": name or f"Brand {uuid.uuid4().hex[:6]}", "time_zone": "Europe/Madrid", "language": "es", **extra}
        r = await self.req("POST", "/v1/brands", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    async def member(self, role: str, brand_ids: list[str] | None = None) -> tuple[str, dict[str, Any]]:
        """Invite, accept, and return (access token, membership) for a new person in `role`."""
        email = f"{role}-{uuid.uuid4().hex[:8]}@example.test"
        r = await self.req("POST", "/v1/invitations", json={"email": email, "role": role, "brand_ids": brand_ids})
        assert r.status_code == 201, r.text
        r = await self.client.post(
            "/v1/invitations/accept", json={"token": r.json()["token"], "password": "correct horse battery", "name": role}
        )
        assert r.status_code == 201, r.text
        token = r.json()["access_token"]
        self.refresh_tokens[token] = r.json()["refresh_token"]
        members = await self.req("GET", "/v1/members", params={"limit": 200})
        membership = next(m for m in members.json()["items"] if m["email"] == email)
        return token, membership

    async def social_account(self, owner_engine, vault, brand_id: str, network: str = "x") -> str:
        """A linked account, written straight into the database (linking itself is tested
        end to end against the network sandbox)."""
        from sqlalchemy import text

        account_id = str(uuid.uuid4())
        async with owner_engine.begin() as conn:
            await conn.execute(text(
                "INSERT INTO social_accounts (id, agency_id, brand_id, network, external_id, account_kind, handle,"
                " display_name, scopes, status, access_token_enc, details, version, created_at, updated_at, connected_at)"
                " VALUES (:id, :agency, :brand, :network, :ext, 'profile', 'h', 'Handle', '{}', 'connected', :at, '{}',"
                " 1, now(), now(), now())"),
                {"id": account_id, "agency": self.agency_id, "brand": brand_id, "network": network,
                 "ext": uuid.uuid4().hex[:12], "at": vault.encrypt("plaintext-access-token")})
        return account_id

    async def api_key(self, scopes: list[str]) -> str:
        r = await self.req("POST", "/v1/api-keys", json={"name": "test key", "scopes": scopes})
        assert r.status_code == 201, r.text
        return r.json()["key"]


async def sign_up(client: AsyncTestClient, **overrides: Any) -> Tenant:
    email = overrides.pop("email", f"owner-{uuid.uuid4().hex[:10]}@example.test")
    password = "a very good password"
    body = {"agency_name": f"Agency {uuid.uuid4().hex[:6]}", "email": email, "password": password, "name": "Owner",
            "time_zone": "Europe/Madrid", **overrides}
    r = await client.post("/v1/auth/signup", json=body)
    assert r.status_code == 201, r.text
    data = r.json()
    return Tenant(client, data["agency_id"], data["access_token"], data["refresh_token"], email, password)


@pytest.fixture
async def tenant(client) -> Tenant:
    return await sign_up(client)


@pytest.fixture
async def other_tenant(client) -> Tenant:
    return await sign_up(client)


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A private redis-server on loopback for the run (workers/local_servers.py)."""
    from workers.local_servers import redis_server

    with redis_server() as server:
        yield server.url


@pytest.fixture(scope="session")
def rabbitmq_url() -> str:
    """A private RabbitMQ node on loopback for the run (workers/local_servers.py)."""
    from workers.local_servers import rabbitmq_server

    with rabbitmq_server() as server:
        yield server.url
