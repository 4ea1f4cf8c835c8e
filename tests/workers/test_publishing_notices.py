"""Who is told when a post fails to publish: the author and the brand's members whose role
may manage it, once each; an account that needs reconnecting is told once per account, not
once per failed variant. Real worker, network sandbox on loopback."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from domain.networks.adapters.base import Network
from tests.workers.test_publishing import (  # noqa: F401 - fixtures
    _due_post, _fault, _link, _publish_calls, _settled, _sweep, _who, app_role_engine, pub_settings, pub_worker,
    sandbox,
)


async def _kinds(tenant, token: str) -> Counter:
    r = await tenant.req("GET", "/v1/notifications", token=token, params={"limit": 100})
    assert r.status_code == 200, r.text
    return Counter(n["kind"] for n in r.json()["items"])


async def _post_by(tenant, owner_engine, token: str, brand_id: str, account_id: str, text_: str) -> dict:
    r = await tenant.req("POST", f"/v1/brands/{brand_id}/posts", token=token, json={
        "title": "Fallo", "scheduled_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        "variants": [{"social_account_id": account_id, "text": text_}]})
    assert r.status_code == 201, r.text
    post = r.json()
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE posts SET scheduled_at = now() - interval '1 minute', status = 'scheduled'"
                                " WHERE id = :id"), {"id": post["id"]})
        await conn.execute(text("UPDATE post_variants SET status = 'scheduled' WHERE post_id = :id"), {"id": post["id"]})
    return post


async def test_a_rejected_post_tells_its_author_and_the_brands_managers_once_each(
        tenant, owner_engine, pub_settings, sandbox, pub_worker, app_role_engine):
    brand, other = await tenant.brand(), await tenant.brand()
    author, _ = await tenant.member("editor", [brand["id"]])
    manager, _ = await tenant.member("manager", [brand["id"]])
    admin, _ = await tenant.member("admin")
    other_manager, _ = await tenant.member("manager", [other["id"]])
    analyst, _ = await tenant.member("analyst", [brand["id"]])
    bystander, _ = await tenant.member("editor", [brand["id"]])
    who = _who("pnr")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    await _fault(sandbox, network="x", match="publish", kind="status", status=403, identity=who,
                 body={"title": "Forbidden", "detail": "Duplicate content.", "type": "about:blank", "status": 403})
    post = await _post_by(tenant, owner_engine, author, brand["id"], x, "Repetido")
    await _sweep(app_role_engine, pub_worker)
    await _settled(owner_engine, post["id"], "failed")
    for token in (author, manager, admin, tenant.owner_token):
        assert (await _kinds(tenant, token))["publish.failed"] == 1
    for token in (other_manager, analyst, bystander):
        assert (await _kinds(tenant, token))["publish.failed"] == 0


async def test_an_account_that_needs_reconnecting_is_told_once_not_per_variant(
        tenant, owner_engine, pub_settings, sandbox, pub_worker, app_role_engine):
    brand = await tenant.brand()
    author, _ = await tenant.member("editor", [brand["id"]])
    manager, _ = await tenant.member("manager", [brand["id"]])
    who = _who("pnc")
    x = await _link(tenant, owner_engine, pub_settings, sandbox, brand["id"], Network.X, who)
    posts = [await _post_by(tenant, owner_engine, author, brand["id"], x, f"Cuenta caída {i}") for i in range(4)]
    async with owner_engine.begin() as conn:  # the network refused the account's refresh earlier
        await conn.execute(text("UPDATE social_accounts SET status = 'needs_reconnect' WHERE id = :id"), {"id": x})
    await _sweep(app_role_engine, pub_worker)  # four variants fail, two worker threads at a time
    for post in posts:
        variants = await _settled(owner_engine, post["id"], "failed")
        assert next(iter(variants.values()))["error"]["code"] == "needs_reconnect"
    for token in (author, manager, tenant.owner_token):
        kinds = await _kinds(tenant, token)
        assert kinds["account.needs_reconnect"] == 1 and kinds["publish.failed"] == 0, kinds
    assert await _publish_calls(sandbox, "x", who) == 0

    # Reconnected, then refused again: the team is told again, once.
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE social_accounts SET status = 'needs_reconnect', connected_at = now()"
                                " WHERE id = :id"), {"id": x})
    more = [await _post_by(tenant, owner_engine, author, brand["id"], x, f"Otra vez {i}") for i in range(2)]
    await _sweep(app_role_engine, pub_worker)
    for post in more:
        await _settled(owner_engine, post["id"], "failed")
    assert (await _kinds(tenant, manager))["account.needs_reconnect"] == 2
