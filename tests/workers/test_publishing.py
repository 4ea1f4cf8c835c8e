"""The publishing engine end to end: posts made through the API, made due with owner SQL
(the clock is not controllable), claimed by the real sweep, published by a real dramatiq
Worker (PostgreSQL broker) through the real adapters against the network sandbox over
loopback HTTP. The sandbox's call log counts what reached the "provider"."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from api.sandbox.app import create_sandbox_app
from domain.core.db import create_engine
from domain.networks.adapters.base import Network
from tests.loopback import serve
from tests.sandbox_consent import consent
from tests.workers.conftest import eventually


@pytest.fixture(scope="module")
def sandbox():
    with serve(create_sandbox_app()) as base:
        yield base


@pytest.fixture
def pub_settings(settings, sandbox):
    # Chorus's apps are the sandbox's default ones (the suite's settings name apps it does not know).
    return dataclasses.replace(settings, worker_threads=2, network_sandbox_url=sandbox, network_timeout_seconds=1.0,
                               network_apps=())


@pytest.fixture
def pub_worker(pub_settings):
    from workers.broker import InProcessWorker

    running = InProcessWorker(pub_settings, threads=2)
    running.start()
    yield running
    running.stop(timeout_ms=5_000)


@pytest.fixture
async def app_role_engine(pub_settings):
    engine = create_engine(pub_settings.app_url(), pool_size=1)
    yield engine
    await engine.dispose()


async def _sandbox(base: str, method: str, path: str, **kwargs):
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        response = await http.request(method, path, **kwargs)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None


async def _fault(base: str, **fault) -> None:
    await _sandbox(base, "POST", "/_sandbox/faults", json=fault)


async def _publish_calls(base: str, network: str, who: str) -> int:
    calls = await _sandbox(base, "GET", "/_sandbox/calls", params={"network": network, "kind": "publish",
                                                                   "identity": who})
    return calls["count"]


async def _link(tenant, owner_engine, settings, base: str, brand_id: str, network: Network, who: str,
                kind: str | None = None) -> str:
    """Link an account through the sandbox's OAuth (real tokens, with a refresh token) and
    store it as the linking service would (tokens encrypted)."""
    grant, target = await consent(base, network, who, kind)
    vault = settings.vault()
    account_id = str(uuid.uuid4())
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO social_accounts (id, agency_id, brand_id, network, external_id, account_kind, handle,"
            " display_name, scopes, status, access_token_enc, refresh_token_enc, token_expires_at, details, version,"
            " created_at, updated_at, connected_at)"
            " VALUES (:id, :agency, :brand, :network, :ext, :kind, :who, :who, '{}', 'connected', :at, :rt, :exp, '{}',"
            " 1, now(), now(), now())"),
            {"id": account_id, "agency": tenant.agency_id, "brand": brand_id, "network": network.value,
             "ext": target.external_id, "kind": target.kind, "who": who,
             "at": vault.encrypt(target.access_token or grant.access_token),
             "rt": vault.encrypt(grant.refresh_token) if grant.refresh_token else None,
             "exp": None if target.access_token else grant.expires_at})
    return account_id


async def _due_post(tenant, owner_engine, brand_id: str, variants: list[dict]) -> dict:
    """A post made through the API, then scheduled a minute ago with owner SQL."""
    when = datetime.now(UTC) + timedelta(days=3)
    r = await tenant.req("POST", f"/v1/brands/{brand_id}/posts", json={
        "title": "Roscón", "scheduled_at": when.isoformat(), "variants": variants})
    assert r.status_code == 201, r.text
    post = r.json()
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE posts SET scheduled_at = now() - interval '1 minute', status = 'scheduled'"
                                " WHERE id = :id"), {"id": post["id"]})
        await conn.execute(text("UPDATE post_variants SET status = 'scheduled' WHERE post_id = :id"), {"id": post["id"]})
    return post


async def _variants(owner_engine, post_id: str) -> dict[str, dict]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(text("SELECT * FROM post_variants WHERE post_id = :id"), {"id": post_id})
        return {str(r.id): dict(r._mapping) for r in rows}


async def _attempts(owner_engine, variant_id: str) -> list[dict]:
    async with owner_engine.connect() as conn:
        rows = await conn.execute(text("SELECT * FROM publish_attempts WHERE variant_id = :id ORDER BY number"),
                                  {"id": variant_id})
        return [dict(r._mapping) for r in rows]


async def _post_status(owner_engine, post_id: str) -> str:
    async with owner_engine.connect() as conn:
        return await conn.scalar(text("SELECT status FROM posts WHERE id = :id"), {"id": post_id})


async def _settled(owner_engine, post_id: str, *statuses: str) -> dict[str, dict]:
    async def check():
        variants = await _variants(owner_engine, post_id)
        return variants if all(v["status"] in statuses for v in variants.values()) else None

    return await eventually(check, what=f"variants {statuses}")


async def _sweep(engine, worker) -> None:
    from workers.publishing import sweep

    await sweep(engine, worker.broker)


def _who(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


async def test_a_due_post_on_three_networks_is_published_exactly_once(tenant, owner_engine, pub_settings, sandbox,
                                                                      pub_worker, app_role_engine):
    brand = await tenant.brand()
    wx, wfb, wli = _who("px"), _who("pfb"), _who("pli")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, wx)
    fb = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.FACEBOOK, wfb, "page")
    li = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.LINKEDIN, wli, "organization")
    post = await _due_post(tenant, owner_engine, brand["id"], [
        {"social_account_id": x, "text": "Roscón listo"},
        {"social_account_id": fb, "text": "Roscón listo en la tienda"},
        {"social_account_id": li, "text": f"Roscón listo {uuid.uuid4().hex[:6]}"}])
    # Two sweeps racing: the second finds nothing to claim (SKIP LOCKED, then `publishing`).
    await _sweep(app_role_engine, pub_worker)
    await _sweep(app_role_engine, pub_worker)
    variants = await _settled(owner_engine, post["id"], "published")
    for variant in variants.values():
        assert variant["external_id"] and variant["external_url"] and variant["published_at"]
        attempts = await _attempts(owner_engine, str(variant["id"]))
        assert [a["outcome"] for a in attempts] == ["published"]
        assert attempts[0]["finished_at"] >= attempts[0]["started_at"]
        assert attempts[0]["response"]["external_id"] == variant["external_id"]
    assert await _post_status(owner_engine, post["id"]) == "published"
    await _sweep(app_role_engine, pub_worker)  # nothing due any more
    for network, who in (("x", wx), ("facebook", wfb), ("linkedin", wli)):
        assert await _publish_calls(sandbox, network, who) == 1, network


async def test_running_the_publish_job_twice_sends_once(tenant, owner_engine, pub_settings, sandbox,
                                                        app_role_engine):
    """The job's second run (a redelivery) finds the attempt dispatched or finished and sends nothing."""
    from domain.core.db import session_factory
    from domain.publishing.service import Publisher, claim_due, network_settings

    brand = await tenant.brand()
    who = _who("ptw")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Dos veces no"}])
    factory = session_factory(app_role_engine)
    agency = uuid.UUID(tenant.agency_id)
    from domain.core.db import scoped_session

    async with scoped_session(factory, agency_id=agency) as session, session.begin():
        claimed = await claim_due(session, agency)
    assert len(claimed) == 1
    # A second claim in another transaction finds nothing: the variant is `publishing` now.
    async with scoped_session(factory, agency_id=agency) as session, session.begin():
        assert await claim_due(session, agency) == []
    publisher = Publisher(agency_id=agency, factory=factory, vault=pub_settings.vault(),
                          networks=network_settings(pub_settings), after_commit=[])
    variant_id, attempt_id = claimed[0]
    assert await publisher.publish_attempt(variant_id, attempt_id) == "published"
    assert await publisher.publish_attempt(variant_id, attempt_id) == "skipped"
    assert await _publish_calls(sandbox, "x", who) == 1
    variants = await _settled(owner_engine, post["id"], "published")
    assert len(await _attempts(owner_engine, str(next(iter(variants))))) == 1


async def test_a_rate_limit_waits_for_the_reset_then_publishes(tenant, owner_engine, pub_settings, sandbox,
                                                               pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("prl")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    await _fault(sandbox, network="x", match="publish", kind="status", status=429, identity=who, retry_after=600)
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Paciencia"}])
    before = datetime.now(UTC)
    await _sweep(app_role_engine, pub_worker)

    async def limited():
        variants = await _variants(owner_engine, post["id"])
        variant = next(iter(variants.values()))
        return variant if variant["status"] == "scheduled" and variant["not_before"] else None

    variant = await eventually(limited, what="rate limited")
    assert variant["not_before"] >= before + timedelta(seconds=500)  # the provider's reset, not a guess
    attempts = await _attempts(owner_engine, str(variant["id"]))
    assert [a["outcome"] for a in attempts] == ["rate_limited"]
    await _sweep(app_role_engine, pub_worker)  # not yet: the reset is in the future
    assert (await _variants(owner_engine, post["id"]))[str(variant["id"])]["status"] == "scheduled"
    async with owner_engine.begin() as conn:  # the reset time passes (the account's, and so the variant's)
        await conn.execute(text("UPDATE post_variants SET not_before = now() - interval '1 second' WHERE id = :id"),
                           {"id": variant["id"]})
        await conn.execute(text("UPDATE social_accounts SET publish_not_before = now() - interval '1 second'"
                                " WHERE id = :id"), {"id": x})
    await _sweep(app_role_engine, pub_worker)
    await _settled(owner_engine, post["id"], "published")
    assert [a["outcome"] for a in await _attempts(owner_engine, str(variant["id"]))] == ["rate_limited", "published"]
    assert await _publish_calls(sandbox, "x", who) == 2


async def test_a_timeout_after_the_provider_accepted_is_reconciled_by_lookup(tenant, owner_engine, pub_settings,
                                                                             sandbox, app_role_engine):
    from domain.core.db import scoped_session, session_factory
    from domain.publishing.service import Publisher, claim_due, network_settings

    brand = await tenant.brand()
    who = _who("pto")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    await _fault(sandbox, network="x", match="publish", kind="timeout", seconds=2, effect="applied", identity=who)
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "¿Salió o no?"}])
    factory = session_factory(app_role_engine)
    agency = uuid.UUID(tenant.agency_id)
    async with scoped_session(factory, agency_id=agency) as session, session.begin():
        [(variant_id, attempt_id)] = await claim_due(session, agency)
    publisher = Publisher(agency_id=agency, factory=factory, vault=pub_settings.vault(),
                          networks=network_settings(pub_settings), after_commit=[])
    assert await publisher.publish_attempt(variant_id, attempt_id) == "unknown"
    variant = (await _variants(owner_engine, post["id"]))[str(variant_id)]
    assert variant["status"] == "publishing"
    # Not looked up before the provider has had time to show it...
    assert await publisher.check_attempt(variant_id, attempt_id) == "waiting"
    # ...then found on the account, never sent again.
    assert await publisher.check_attempt(variant_id, attempt_id, unknown_grace=timedelta(0)) == "published"
    variant = (await _variants(owner_engine, post["id"]))[str(variant_id)]
    assert variant["status"] == "published" and variant["external_id"]
    [attempt] = await _attempts(owner_engine, str(variant_id))
    assert attempt["outcome"] == "published" and attempt["response"]["reconciled"] is True
    assert attempt["error"]["code"] == "unknown"
    assert await _publish_calls(sandbox, "x", who) == 1


async def test_a_rejected_post_fails_with_the_providers_message_and_no_retry(tenant, owner_engine, pub_settings,
                                                                             sandbox, pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("prj")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    await _fault(sandbox, network="x", match="publish", kind="status", status=403, identity=who,
                 body={"title": "Forbidden", "detail": "You are not allowed to create a Tweet with duplicate content.",
                       "type": "about:blank", "status": 403})
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Duplicado"}])
    await _sweep(app_role_engine, pub_worker)
    variants = await _settled(owner_engine, post["id"], "failed")
    variant = next(iter(variants.values()))
    assert "duplicate content" in variant["error"]["message"]
    assert [a["outcome"] for a in await _attempts(owner_engine, str(variant["id"]))] == ["rejected"]
    assert await _post_status(owner_engine, post["id"]) == "failed"
    await _sweep(app_role_engine, pub_worker)
    assert await _publish_calls(sandbox, "x", who) == 1


async def test_an_expired_token_is_refreshed_once_then_the_post_goes_out(tenant, owner_engine, pub_settings, sandbox,
                                                                         pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("pae")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    await _fault(sandbox, network="x", match="publish", kind="expired_token", identity=who)
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Token nuevo"}])
    await _sweep(app_role_engine, pub_worker)
    await _settled(owner_engine, post["id"], "published")
    assert await _publish_calls(sandbox, "x", who) == 2  # refused, then sent with the refreshed token
    async with owner_engine.connect() as conn:
        account = (await conn.execute(text("SELECT status, last_refreshed_at FROM social_accounts WHERE id = :id"),
                                      {"id": x})).one()
    assert account.status == "connected" and account.last_refreshed_at is not None


async def test_a_refused_refresh_marks_the_account_and_fails_the_post(tenant, owner_engine, pub_settings, sandbox,
                                                                      pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("pig")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    await _fault(sandbox, network="x", match="publish", kind="expired_token", identity=who)
    await _fault(sandbox, network="x", match="refresh", kind="invalid_grant")
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Sin permiso"}])
    await _sweep(app_role_engine, pub_worker)
    variants = await _settled(owner_engine, post["id"], "failed")
    variant = next(iter(variants.values()))
    assert variant["error"]["code"] == "needs_reconnect"
    async with owner_engine.connect() as conn:
        assert await conn.scalar(text("SELECT status FROM social_accounts WHERE id = :id"), {"id": x}) == "needs_reconnect"
    assert await _publish_calls(sandbox, "x", who) == 1
    # The team hears about it: the post's author is told the account needs reconnecting.
    r = await tenant.req("GET", "/v1/notifications")
    assert r.status_code == 200, r.text
    assert any(n["kind"] == "account.needs_reconnect" for n in r.json()["items"])


async def test_a_post_whose_approval_lapsed_is_not_published(tenant, owner_engine, pub_settings, sandbox, pub_worker,
                                                             app_role_engine):
    brand = await tenant.brand()
    who = _who("pap")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Sin aprobar"}])
    # The brand now requires approval, and nothing approved this content.
    r = await tenant.req("PUT", f"/v1/brands/{brand['id']}/approval-workflow",
                         json={"steps": [{"name": "Equipo", "kind": "internal", "roles": ["manager"]}]})
    assert r.status_code == 200, r.text
    await _sweep(app_role_engine, pub_worker)
    variants = await _settled(owner_engine, post["id"], "failed")
    assert next(iter(variants.values()))["error"]["code"] == "approval_lapsed"
    assert await _publish_calls(sandbox, "x", who) == 0


async def test_an_asynchronous_publish_is_polled_until_done(tenant, owner_engine, pub_settings, sandbox,
                                                            app_role_engine):
    """TikTok answers a publish with a publish_id to poll. The first half runs the real adapter
    (media by URL is not wired to variants yet); the engine then polls the attempt until done."""
    from domain.core.db import scoped_session, session_factory
    from domain.networks.adapters.base import AccountRef, PublishRequest
    from domain.networks.adapters.tiktok import TikTokClient
    from domain.publishing.service import Publisher, claim_due, network_settings

    brand = await tenant.brand()
    who = _who("ptt")
    account_id = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.TIKTOK, who)
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": account_id,
                                                                "text": "Así se hace un roscón"}])
    factory = session_factory(app_role_engine)
    agency = uuid.UUID(tenant.agency_id)
    async with scoped_session(factory, agency_id=agency) as session, session.begin():
        [(variant_id, attempt_id)] = await claim_due(session, agency)
    publisher = Publisher(agency_id=agency, factory=factory, vault=pub_settings.vault(),
                          networks=network_settings(pub_settings), after_commit=[])
    token = await publisher._token(uuid.UUID(account_id))
    async with owner_engine.connect() as conn:
        external = await conn.scalar(text("SELECT external_id FROM social_accounts WHERE id = :id"), {"id": account_id})
    started = await TikTokClient(sandbox, timeout=2).publish(
        AccountRef(external, token), PublishRequest(text="Así se hace un roscón", media_urls=("https://cdn.example/r.mp4",),
                                                    options={"privacy": "SELF_ONLY"}))
    assert started.state == "processing"
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE publish_attempts SET outcome = 'processing', response = :r WHERE id = :id"),
                           {"id": str(attempt_id), "r": json.dumps({"pending_ref": started.pending_ref, "dispatched_at": "x"})})
    assert await publisher.check_attempt(variant_id, attempt_id) == "processing"
    assert (await _variants(owner_engine, post["id"]))[str(variant_id)]["status"] == "publishing"
    await _sandbox(sandbox, "POST", "/_sandbox/clock", json={"advance_seconds": 300})
    assert await publisher.check_attempt(variant_id, attempt_id) == "published"
    variant = (await _variants(owner_engine, post["id"]))[str(variant_id)]
    assert variant["status"] == "published" and variant["external_id"]
    assert await _post_status(owner_engine, post["id"]) == "published"
    # A finished attempt is never polled again.
    assert await publisher.check_attempt(variant_id, attempt_id) == "skipped"


async def _backdate(owner_engine, attempt_id, minutes: int, *, dispatched: bool) -> None:
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "UPDATE publish_attempts SET started_at = now() - make_interval(mins => :m),"
            " response = CASE WHEN :d THEN jsonb_build_object('dispatched_at',"
            " to_char((now() - make_interval(mins => :m)) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+00:00\"'))"
            " ELSE '{}'::jsonb END"
            " WHERE id = :id"), {"id": str(attempt_id), "m": minutes, "d": dispatched})


async def _claim(app_role_engine, tenant) -> list[tuple[uuid.UUID, uuid.UUID]]:
    from domain.core.db import scoped_session, session_factory
    from domain.publishing.service import claim_due

    agency = uuid.UUID(tenant.agency_id)
    async with scoped_session(session_factory(app_role_engine), agency_id=agency) as session, session.begin():
        return await claim_due(session, agency)


async def test_an_attempt_stuck_after_sending_is_found_on_the_account_by_the_sweep(
        tenant, owner_engine, pub_settings, sandbox, pub_worker, app_role_engine):
    """A worker died after the provider took the post: the sweep looks it up and records it."""
    from domain.networks.adapters.base import AccountRef, PublishRequest
    from domain.networks.adapters.x import XClient

    brand = await tenant.brand()
    who = _who("pst")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Se cayó el worker"}])
    [(variant_id, attempt_id)] = await _claim(app_role_engine, tenant)
    # What the dead worker did: stamped the attempt, and the provider published the post.
    await _backdate(owner_engine, attempt_id, 11, dispatched=True)
    async with owner_engine.connect() as conn:
        row = (await conn.execute(text("SELECT external_id, access_token_enc FROM social_accounts WHERE id = :id"),
                                  {"id": x})).one()
    sent = await XClient(sandbox, timeout=2).publish(AccountRef(row.external_id, pub_settings.vault().decrypt(
        row.access_token_enc)), PublishRequest(text="Se cayó el worker"))
    await _sweep(app_role_engine, pub_worker)
    variants = await _settled(owner_engine, post["id"], "published")
    assert variants[str(variant_id)]["external_id"] == sent.external_id
    assert [a["outcome"] for a in await _attempts(owner_engine, str(variant_id))] == ["published"]
    assert await _publish_calls(sandbox, "x", who) == 1


async def test_a_claimed_variant_whose_job_was_lost_goes_out_on_a_new_attempt(
        tenant, owner_engine, pub_settings, sandbox, pub_worker, app_role_engine):
    brand = await tenant.brand()
    who = _who("plj")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Trabajo perdido"}])
    [(variant_id, attempt_id)] = await _claim(app_role_engine, tenant)
    await _backdate(owner_engine, attempt_id, 11, dispatched=False)  # claimed, never sent
    await _sweep(app_role_engine, pub_worker)  # resolves the stuck attempt: back to scheduled
    await _settled(owner_engine, post["id"], "scheduled")
    await _sweep(app_role_engine, pub_worker)  # claims it again
    await _settled(owner_engine, post["id"], "published")
    assert [a["outcome"] for a in await _attempts(owner_engine, str(variant_id))] == ["abandoned", "published"]
    assert await _publish_calls(sandbox, "x", who) == 1


async def test_a_post_hours_late_fails_loudly_instead_of_going_out(tenant, owner_engine, pub_settings, sandbox,
                                                                   app_role_engine):
    brand = await tenant.brand()
    who = _who("plt")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Demasiado tarde"}])
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE posts SET scheduled_at = now() - interval '3 hours' WHERE id = :id"),
                           {"id": post["id"]})
    assert await _claim(app_role_engine, tenant) == []
    variant = next(iter((await _variants(owner_engine, post["id"])).values()))
    assert variant["status"] == "failed" and variant["error"]["code"] == "too_late"
    assert [a["outcome"] for a in await _attempts(owner_engine, str(variant["id"]))] == ["abandoned"]
    assert await _post_status(owner_engine, post["id"]) == "failed"
    assert await _publish_calls(sandbox, "x", who) == 0


async def test_the_deployments_limits_reach_the_sweep_and_the_jobs(tenant, owner_engine, pub_settings, sandbox,
                                                                   app_role_engine):
    """CHORUS_PUBLISH_* settings, not constants: a worker whose lateness limit is 30 s fails a
    post due a minute ago (the default, 2 h, would publish it), and with one attempt allowed a
    rate-limited variant fails at its next claim instead of going out."""
    from workers.broker import InProcessWorker

    brand = await tenant.brand()
    who = _who("plm")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    late = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Con prisa"}])
    strict = dataclasses.replace(pub_settings, publish_max_lateness_seconds=30.0, publish_max_attempts=1)
    worker = InProcessWorker(strict, threads=2)
    worker.start()
    try:
        await _sweep(app_role_engine, worker)
        variant = next(iter((await _settled(owner_engine, late["id"], "failed")).values()))
        assert variant["error"]["code"] == "too_late"
        assert await _publish_calls(sandbox, "x", who) == 0
        await _fault(sandbox, network="x", match="publish", kind="status", status=429, identity=who, retry_after=1)
        post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Una vez"}])
        async with owner_engine.begin() as conn:
            await conn.execute(text("UPDATE posts SET scheduled_at = now() WHERE id = :id"), {"id": post["id"]})
        await _sweep(app_role_engine, worker)

        async def limited():
            variant = next(iter((await _variants(owner_engine, post["id"])).values()))
            return variant if variant["status"] == "scheduled" and variant["not_before"] else None

        variant = await eventually(limited, what="rate limited")
        async with owner_engine.begin() as conn:
            await conn.execute(text("UPDATE post_variants SET not_before = now() - interval '1 second' WHERE id = :id"),
                               {"id": variant["id"]})
        await _sweep(app_role_engine, worker)
        variant = next(iter((await _settled(owner_engine, post["id"], "failed")).values()))
        assert variant["error"]["code"] == "too_many_attempts"
        assert await _publish_calls(sandbox, "x", who) == 1
    finally:
        worker.stop(timeout_ms=5_000)


async def test_an_attempt_claimed_long_ago_but_just_sent_is_live_not_stuck(tenant, owner_engine, pub_settings,
                                                                          sandbox, app_role_engine):
    """Stuck is counted from the dispatch stamp: a job that waited in a long queue and is now
    mid-call (its post not on the account yet) must not be looked up, found missing, and sent
    again by a new attempt."""
    from domain.core.db import session_factory
    from domain.publishing.service import Publisher, network_settings

    brand = await tenant.brand()
    who = _who("pql")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "En la cola"}])
    [(variant_id, attempt_id)] = await _claim(app_role_engine, tenant)
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "UPDATE publish_attempts SET started_at = now() - interval '11 minutes',"
            " response = jsonb_build_object('dispatched_at', CAST(:at AS text)) WHERE id = :id"),
            {"id": str(attempt_id), "at": datetime.now(UTC).isoformat()})
    publisher = Publisher(agency_id=uuid.UUID(tenant.agency_id), factory=session_factory(app_role_engine),
                          vault=pub_settings.vault(), networks=network_settings(pub_settings), after_commit=[])
    assert await publisher.check_attempt(variant_id, attempt_id) == "live"
    calls = await _sandbox(sandbox, "GET", "/_sandbox/calls", params={"network": "x", "identity": who})
    assert calls["by_kind"].get("lookup", 0) == 0
    [attempt] = await _attempts(owner_engine, str(variant_id))
    assert attempt["outcome"] == "sending" and attempt["finished_at"] is None


async def test_a_sweep_that_claims_a_full_batch_claims_the_next_one_at_once(tenant, owner_engine, pub_settings,
                                                                            sandbox, app_role_engine):
    """A busy minute is not capped at one batch per scheduler tick: one sweep with a batch of 2
    publishes all 5 due variants. A sweep without checks leaves open attempts alone."""
    from workers.broker import InProcessWorker
    from workers.publishing import sweep

    brand = await tenant.brand()
    who = _who("pbt")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    posts = [await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": f"Lote {i}"}])
             for i in range(5)]
    worker = InProcessWorker(dataclasses.replace(pub_settings, publish_claim_batch=2), threads=2)
    worker.start()
    try:
        await sweep(app_role_engine, worker.broker, checks=False)
        for post in posts:
            await _settled(owner_engine, post["id"], "published")
    finally:
        worker.stop(timeout_ms=5_000)
    assert await _publish_calls(sandbox, "x", who) == 5


async def test_a_second_sweep_of_an_agency_returns_while_one_runs(tenant, owner_engine, pub_settings, sandbox,
                                                                  app_role_engine):
    """Sweeps of one agency do not pile up on the same claim query: while one holds the agency's
    sweep lock, another claims nothing and sends nothing; once it is released, the next claims."""
    from domain.core.db import scoped_session, session_factory
    from workers.broker import JobContext, Runtime
    from workers.publishing import _SWEEP_LOCK, sweep_agency

    brand = await tenant.brand()
    who = _who("psl")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x, "text": "Uno a uno"}])
    agency = uuid.UUID(tenant.agency_id)
    factory = session_factory(app_role_engine)

    async def run_sweep() -> JobContext:
        async with scoped_session(factory, agency_id=agency) as session, session.begin():
            job = JobContext(session=session, agency_id=agency, runtime=Runtime(pub_settings))
            await sweep_agency(job, checks=False)
            return job

    async with owner_engine.connect() as holder:
        async with holder.begin():
            assert await holder.scalar(text("SELECT pg_try_advisory_xact_lock(:k, hashtext(:a))"),
                                       {"k": _SWEEP_LOCK, "a": str(agency)})
            job = await run_sweep()
            assert job.after_commit == []  # no publish job buffered
            assert next(iter((await _variants(owner_engine, post["id"])).values()))["status"] == "scheduled"
    job = await run_sweep()
    assert [j.actor for j in job.jobs.pending] == ["publishing.publish_batch"]  # sent after the commit
    assert next(iter((await _variants(owner_engine, post["id"])).values()))["status"] == "publishing"


async def test_a_batch_records_each_outcome_and_a_rerun_sends_nothing(tenant, owner_engine, pub_settings, sandbox,
                                                                      app_role_engine):
    """One publish_batch job over a mixed batch: a publishable variant, one whose approval lapsed,
    one whose account needs reconnecting and one the provider rate-limits (on the same post as
    the publishable one). Each gets its own outcome; the post roll-ups are right; running the
    same batch job again (a redelivery) sends nothing and changes nothing."""
    from domain.core.db import scoped_session, session_factory
    from workers.broker import JobContext, Runtime
    from workers.publishing import publish_batch

    brand, gated_brand = await tenant.brand(), await tenant.brand()
    wok, wrl, wap, wrc = _who("pbo"), _who("pbr"), _who("pba"), _who("pbc")
    ok = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, wok)
    limited = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, wrl)
    lapsed = await _link(tenant, owner_engine, pub_settings, sandbox, gated_brand["id"], Network.X, wap)
    gone = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, wrc)
    await _fault(sandbox, network="x", match="publish", kind="status", status=429, identity=wrl, retry_after=600)
    mixed = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": ok, "text": "Sale"},
                                                                {"social_account_id": limited, "text": "Espera"}])
    unapproved = await _due_post(tenant, owner_engine, gated_brand["id"],
                                 [{"social_account_id": lapsed, "text": "Sin aprobar"}])
    reconnect = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": gone, "text": "Sin cuenta"}])
    factory = session_factory(app_role_engine)
    agency = uuid.UUID(tenant.agency_id)

    async def run_batch(attempts) -> JobContext:
        async with scoped_session(factory, agency_id=agency) as session, session.begin():
            job = JobContext(session=session, agency_id=agency, runtime=Runtime(pub_settings))
            await publish_batch(job, attempts=attempts)
        for task in job.after_commit:
            await task()
        return job

    # Claimed by the real sweep code, as one batch.
    from domain.publishing.service import claim_due

    async with scoped_session(factory, agency_id=agency) as session, session.begin():
        claimed = await claim_due(session, agency)
    assert len(claimed) == 4
    # After the claim: the gated brand now requires approval (nothing approved this content),
    # and one account was disconnected.
    r = await tenant.req("PUT", f"/v1/brands/{gated_brand['id']}/approval-workflow",
                         json={"steps": [{"name": "Equipo", "kind": "internal", "roles": ["manager"]}]})
    assert r.status_code == 200, r.text
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE social_accounts SET status = 'needs_reconnect' WHERE id = :id"), {"id": gone})
    batch = [[str(v), str(a)] for v, a in claimed]
    await run_batch(batch)

    def by_account(variants: dict[str, dict]) -> dict[str, dict]:
        return {str(v["social_account_id"]): v for v in variants.values()}

    async def snapshot():
        rows = {}
        for post in (mixed, unapproved, reconnect):
            for account, variant in by_account(await _variants(owner_engine, post["id"])).items():
                rows[account] = (variant["status"], variant["external_id"], (variant["error"] or {}).get("code"),
                                 [a["outcome"] for a in await _attempts(owner_engine, str(variant["id"]))])
            rows[post["id"]] = await _post_status(owner_engine, post["id"])
        return rows

    first = await snapshot()
    assert first[ok][0] == "published" and first[ok][1] and first[ok][3] == ["published"]
    assert first[limited][0] == "scheduled" and first[limited][3] == ["rate_limited"]
    assert first[lapsed][:1] + first[lapsed][2:] == ("failed", "approval_lapsed", ["not_publishable"])
    assert first[gone][:1] + first[gone][2:] == ("failed", "needs_reconnect", ["auth_failed"])
    assert first[unapproved["id"]] == "failed" and first[reconnect["id"]] == "failed"
    assert first[mixed["id"]] != "published"  # one variant still waits for its reset
    calls = {who: await _publish_calls(sandbox, "x", who) for who in (wok, wrl, wap, wrc)}
    assert calls == {wok: 1, wrl: 1, wap: 0, wrc: 0}

    await run_batch(batch)  # the same job again: a redelivery
    assert await snapshot() == first
    assert {who: await _publish_calls(sandbox, "x", who) for who in (wok, wrl, wap, wrc)} == calls
