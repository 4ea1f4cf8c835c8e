"""Comments on posts and variants: threads, internal or client-visible, mentions that notify."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.api.test_approvals import domain_context, new_post, notifications, share_link


@pytest.fixture
async def shop(tenant, owner_engine, settings):
    brand = await tenant.brand()
    account = await tenant.social_account(owner_engine, settings.vault(), brand["id"], "x")
    return brand, account


async def test_threads_visibility_and_variants(app_engine, tenant, shop, owner_engine):
    from domain.approvals.models import ShareLink, ShareReviewer
    from domain.approvals.service import CommentService

    brand, account = shop
    post = await new_post(tenant, brand, account)
    path = f"/v1/posts/{post['id']}/comments"
    r = await tenant.req("POST", path, json={"body": "¿Foto más cálida?"})
    assert r.status_code == 201, r.text
    root = r.json()
    assert root["visibility"] == "internal" and root["author_type"] == "member" and root["author_name"] == "Owner"
    assert root["revision"] == post["revision"] and root["parent_id"] is None
    variant = post["variants"][0]["id"]
    r = await tenant.req("POST", path, json={"body": "Para el cliente: ¿os vale?", "visibility": "client",
                                             "parent_id": root["id"], "variant_id": variant})
    reply = r.json()
    assert r.status_code == 201 and reply["parent_id"] == root["id"] and reply["variant_id"] == variant

    # A thread stays on its post; a variant must be the post's own.
    other = await new_post(tenant, brand, account, text_="Otro")
    r = await tenant.req("POST", f"/v1/posts/{other['id']}/comments", json={"body": "x", "parent_id": root["id"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "parent_id"
    r = await tenant.req("POST", path, json={"body": "x", "variant_id": other["variants"][0]["id"]})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "variant_id"
    for body in ({"body": ""}, {"body": "x", "visibility": "public"}, {"body": "x" * 10_001}):
        assert (await tenant.req("POST", path, json=body)).status_code == 422

    # The client sees only client-visible comments, and replies in the client-visible thread.
    link_id, reviewer_id = await share_link(owner_engine, tenant, brand, [post["id"]])
    async with domain_context(app_engine, tenant.agency_id) as ctx:
        link = await ctx.get(ShareLink, uuid.UUID(link_id))
        reviewer = await ctx.get(ShareReviewer, uuid.UUID(reviewer_id))
        comments = CommentService(ctx)
        seen = await comments.list(uuid.UUID(post["id"]), client_visible_only=True)
        assert [c.body for c in seen.items] == ["Para el cliente: ¿os vale?"]
        from domain.core.errors import ValidationFailedError
        with pytest.raises(ValidationFailedError):  # the internal comment is not the client's to answer
            await comments.add_client_comment(share_link=link, reviewer=reviewer, post_id=uuid.UUID(post["id"]),
                                              body="Hola", parent_id=uuid.UUID(root["id"]), variant_id=None)
        client = await comments.add_client_comment(
            share_link=link, reviewer=reviewer, post_id=uuid.UUID(post["id"]), body="Sí, perfecto",
            parent_id=uuid.UUID(reply["id"]), variant_id=uuid.UUID(variant))
        assert client.visibility == "client" and client.author_type == "client"
    items = (await tenant.req("GET", path)).json()["items"]
    assert [(c["body"], c["author_type"], c["author_name"]) for c in items] == [
        ("¿Foto más cálida?", "member", "Owner"), ("Para el cliente: ¿os vale?", "member", "Owner"),
        ("Sí, perfecto", "client", "Lucía (client)")]
    assert items[2]["parent_id"] == reply["id"]
    # Paged, oldest first.
    first = (await tenant.req("GET", path, params={"limit": 2})).json()
    second = (await tenant.req("GET", path, params={"limit": 2, "cursor": first["next_cursor"]})).json()
    assert [c["id"] for c in first["items"] + second["items"]] == [c["id"] for c in items]


async def test_mentions_notify_members_who_can_see_the_brand(tenant, shop, owner_engine):
    brand, account = shop
    other_brand = await tenant.brand()
    _, editor = await tenant.member("editor")
    _, analyst = await tenant.member("analyst")
    _, elsewhere = await tenant.member("editor", brand_ids=[other_brand["id"]])
    post = await new_post(tenant, brand, account)
    path = f"/v1/posts/{post['id']}/comments"
    r = await tenant.req("POST", path, json={"body": f"@[{elsewhere['user_id']}] ¿lo ves?"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "mentions"
    r = await tenant.req("POST", path, json={"body": "¿lo ves?", "mentions": [str(uuid.uuid4())]})
    assert r.status_code == 422
    r = await tenant.req("POST", path, json={"body": f"@[{editor['user_id']}] cambia la foto",
                                             "mentions": [analyst["user_id"], editor["user_id"]]})
    assert r.status_code == 201, r.text
    assert set(r.json()["mentions"]) == {editor["user_id"], analyst["user_id"]}
    for member in (editor, analyst):
        got = await notifications(owner_engine, member["user_id"], "comment.mention")
        assert len(got) == 1 and got[0]["data"]["comment_id"] == r.json()["id"]
    assert await notifications(owner_engine, elsewhere["user_id"]) == []
    async with owner_engine.connect() as conn:
        audited = (await conn.execute(text(
            "SELECT count(*) FROM audit_events WHERE agency_id = :a AND action = 'comment.added'"),
            {"a": tenant.agency_id})).scalar()
    assert audited == 1


async def test_a_member_limited_to_other_brands_cannot_read_or_comment(tenant, shop):
    brand, account = shop
    other_brand = await tenant.brand()
    token, _ = await tenant.member("editor", brand_ids=[other_brand["id"]])
    post = await new_post(tenant, brand, account)
    path = f"/v1/posts/{post['id']}/comments"
    assert (await tenant.req("GET", path, token=token)).status_code == 404
    assert (await tenant.req("POST", path, token=token, json={"body": "hola"})).status_code == 404
