"""One object of every kind in an agency, made through the API, for the tests that walk
every route (permissions, tenancy). Add a new kind of object here once."""

from __future__ import annotations

import uuid

from tests.media_files import image


async def notification_for_owner(tenant, owner_engine) -> str:
    """A notification for the agency's owner (rows as notify() writes them)."""
    from tests.api.test_notifications import add_notifications

    members = (await tenant.req("GET", "/v1/members", params={"limit": 200})).json()["items"]
    owner = next(m["user_id"] for m in members if m["role"] == "owner")
    [notification_id] = await add_notifications(owner_engine, tenant.agency_id, owner)
    return notification_id


async def webhook_endpoint_and_delivery(tenant) -> tuple[str, str]:
    """An inactive endpoint at a public address (registration resolves nothing: an IP
    literal) and a `ping` delivery to it; the worker fails it without sending anything."""
    endpoint = (await tenant.req("POST", "/v1/webhook-endpoints", json={
        "url": "https://93.184.215.14/chorus-hook", "events": ["post.approved"], "active": False})).json()
    delivery = (await tenant.req("POST", f"/v1/webhook-endpoints/{endpoint['id']}/test")).json()
    return endpoint["id"], delivery["id"]


async def one_of_each(tenant, owner_engine, settings, *, member_id: str) -> dict[str, str]:
    """Ids by path-parameter name. `member_id`: the member the walk may act on."""
    brand = await tenant.brand()
    campaign = (await tenant.req("POST", "/v1/campaigns", json={
        "brand_id": brand["id"], "name": "C", "objective": "sales", "start_date": "2027-01-01",
        "end_date": "2027-01-31"})).json()
    invitation = (await tenant.req("POST", "/v1/invitations", json={
        "email": f"{uuid.uuid4().hex[:8]}@example.test", "role": "analyst"})).json()
    key = (await tenant.req("POST", "/v1/api-keys", json={"name": "k", "scopes": ["brands:read"]})).json()
    link = (await tenant.req("POST", f"/v1/brands/{brand['id']}/social-account-links", json={"network": "x"})).json()
    account_id = await tenant.social_account(owner_engine, settings.vault(), brand["id"])
    post = (await tenant.req("POST", f"/v1/brands/{brand['id']}/posts", json={
        "variants": [{"social_account_id": account_id, "text": "hi"}]})).json()
    brief = (await tenant.req("POST", f"/v1/brands/{brand['id']}/briefs", json={
        "title": "B", "kind": "image", "post_id": post["id"]})).json()
    media = (await tenant.client.post(f"/v1/brands/{brand['id']}/media", headers=tenant.auth(),
                                      files={"file": ("a.png", image("PNG", (8, 8)), "image/png")})).json()
    feed = (await tenant.req("POST", f"/v1/brands/{brand['id']}/calendar-feeds", json={})).json()
    await tenant.req("PUT", f"/v1/brands/{brand['id']}/approval-workflow", json={
        "steps": [{"name": "Owner", "kind": "internal", "roles": ["owner"]}]})
    approval = (await tenant.req("POST", f"/v1/posts/{post['id']}/submit", json={})).json()
    share = (await tenant.req("POST", f"/v1/brands/{brand['id']}/share-links", json={"posts": [post["id"]]})).json()
    upload = await tenant.client.post(f"/v1/brands/{brand['id']}/imports", headers=tenant.auth(),
                                      files={"file": ("posts.csv", b"account,text\nx:h,hi\n", "text/csv")})
    endpoint_id, delivery_id = await webhook_endpoint_and_delivery(tenant)
    return {
        "endpoint_id": endpoint_id,
        "delivery_id": delivery_id,
        "notification_id": await notification_for_owner(tenant, owner_engine),
        "import_id": upload.json()["id"],
        "feed_id": feed["id"],
        "request_id": approval["id"],
        "share_link_id": share["id"],
        "media_id": media["id"],
        "brief_id": brief["id"],
        "post_id": post["id"],
        "variant_id": post["variants"][0]["id"],
        "number": "1",
        "network": "x",
        "link_id": link["link_id"],
        "account_id": account_id,
        "brand_id": brand["id"],
        "campaign_id": campaign["id"],
        "member_id": member_id,
        "invitation_id": invitation["id"],
        "key_id": key["id"],
    }
