"""Many due posts at once, for the publishing crash test (tests/e2e/test_publish_crash.py) and
the publishing benchmark (bench/publish_bench.py): accounts linked through the network
sandbox's real OAuth (live tokens it will accept), and scheduled posts written in bulk with
owner SQL (one variant each, every text unique so the sandbox's records can be counted)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.core.crypto import Vault
from domain.networks.adapters.base import Network
from tests.sandbox_consent import consent


@dataclass(frozen=True)
class Account:
    id: str
    network: str
    external_id: str
    identity: str


async def link_accounts(owner_engine: AsyncEngine, vault: Vault, sandbox: str, *, agency_id: str, brand_id: str,
                        network: Network, count: int, kind: str | None = None, prefix: str = "load",
                        parallel: int = 8) -> list[Account]:
    """`count` accounts of `network` on the brand, each a sandbox test identity that consented
    (tokens encrypted as the linking service stores them)."""
    gate = asyncio.Semaphore(parallel)

    async def one(i: int) -> tuple:
        who = f"{prefix}{network.value[:2]}{i:04d}{uuid.uuid4().hex[:6]}"
        async with gate:
            grant, target = await consent(sandbox, network, who, kind)
        return who, grant, target

    rows = []
    accounts = []
    for who, grant, target in await asyncio.gather(*(one(i) for i in range(count))):
        account_id = str(uuid.uuid4())
        rows.append({"id": account_id, "agency": agency_id, "brand": brand_id, "network": network.value,
                     "ext": target.external_id, "kind": target.kind, "who": who,
                     "at": vault.encrypt(target.access_token or grant.access_token),
                     "rt": vault.encrypt(grant.refresh_token) if grant.refresh_token else None,
                     "exp": None if target.access_token else grant.expires_at})
        accounts.append(Account(account_id, network.value, target.external_id, who))
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO social_accounts (id, agency_id, brand_id, network, external_id, account_kind, handle,"
            " display_name, scopes, status, access_token_enc, refresh_token_enc, token_expires_at, details, version,"
            " created_at, updated_at, connected_at)"
            " VALUES (:id, :agency, :brand, :network, :ext, :kind, :who, :who, '{}', 'connected', :at, :rt, :exp, '{}',"
            " 1, now(), now(), now())"), rows)
    return accounts


async def seed_due_posts(owner_engine: AsyncEngine, *, agency_id: str, brand_id: str, accounts: list[Account],
                         count: int, marker: str, due_at: list[datetime]) -> dict[str, str]:
    """`count` scheduled posts, post i on accounts[i % len(accounts)] and due at due_at[i], one
    variant each with the text "<marker>-<i>". Returns {variant id: text}."""
    posts, variants, texts = [], [], {}
    for i in range(count):
        account = accounts[i % len(accounts)]
        post_id, variant_id = str(uuid.uuid4()), str(uuid.uuid4())
        body = f"{marker}-{i:05d}"
        posts.append({"id": post_id, "agency": agency_id, "brand": brand_id, "at": due_at[i], "title": body})
        variants.append({"id": variant_id, "agency": agency_id, "post": post_id, "account": account.id,
                         "network": account.network, "text": body})
        texts[variant_id] = body
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO posts (id, agency_id, brand_id, title, labels, scheduled_at, time_zone, status, revision,"
            " content_hash, version, created_at, updated_at)"
            " VALUES (:id, :agency, :brand, :title, '{}', :at, 'UTC', 'scheduled', 1, '', 1, now(), now())"), posts)
        await conn.execute(text(
            "INSERT INTO post_variants (id, agency_id, post_id, social_account_id, network, position, text, options,"
            " status, content_hash, issues, created_at, updated_at)"
            " VALUES (:id, :agency, :post, :account, :network, 0, :text, '{}', 'scheduled', '', '[]', now(), now())"),
            variants)
    async with owner_engine.begin() as conn:  # fresh statistics, as autovacuum keeps them on a live database
        await conn.execute(text("ANALYZE posts, post_variants, publish_attempts"))
    return texts
