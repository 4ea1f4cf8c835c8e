"""The in-app feed: each member sees and marks only their own notifications."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from sqlalchemy import text


async def add_notifications(owner_engine, agency_id: str, user_id: str, count: int = 1, *, kind: str = "comment.mention",
                            read: bool = False) -> list[str]:
    """Rows as notify() writes them, with distinct creation instants (newest last)."""
    ids = []
    base = datetime.now(timezone.utc)
    async with owner_engine.begin() as conn:
        for i in range(count):
            row_id = str(uuid.uuid4())
            await conn.execute(text(
                "INSERT INTO notifications (id, agency_id, user_id, kind, title, body, data, read_at, created_at, updated_at)"
                " VALUES (:id, :agency, :user, :kind, :title, '', '{}', :read_at, :at, :at)"),
                {"id": row_id, "agency": agency_id, "user": user_id, "kind": kind, "title": f"N{i}",
                 "read_at": base if read else None, "at": base + timedelta(milliseconds=i)})
            ids.append(row_id)
    return ids


async def _me(tenant, token=None) -> str:
    members = (await tenant.req("GET", "/v1/members", token=token, params={"limit": 200})).json()["items"]
    return next(m["user_id"] for m in members if m["role"] == "owner")


async def test_each_member_sees_only_their_own(tenant, other_tenant, owner_engine):
    editor_token, editor = await tenant.member("editor")
    owner_id = await _me(tenant)
    [mine] = await add_notifications(owner_engine, tenant.agency_id, owner_id)
    [theirs] = await add_notifications(owner_engine, tenant.agency_id, editor["user_id"])

    owner_feed = (await tenant.req("GET", "/v1/notifications")).json()
    assert [n["id"] for n in owner_feed["items"]] == [mine] and owner_feed["next_cursor"] is None
    editor_feed = (await tenant.req("GET", "/v1/notifications", token=editor_token)).json()
    assert [n["id"] for n in editor_feed["items"]] == [theirs]

    # Someone else's notification, in the same agency or another, is not found.
    for who, token in ((tenant, editor_token), (other_tenant, None)):
        r = await who.req("POST", f"/v1/notifications/{mine}/read", token=token)
        assert r.status_code == 404 and r.json()["type"].endswith("/not-found"), r.text
    assert (await tenant.req("GET", "/v1/notifications", params={"unread": "true"})).json()["items"][0]["id"] == mine
    # Another agency's owner sees an empty feed.
    assert (await other_tenant.req("GET", "/v1/notifications")).json()["items"] == []


async def test_read_unread_and_read_all(tenant, owner_engine):
    analyst_token, analyst = await tenant.member("analyst")
    ids = await add_notifications(owner_engine, tenant.agency_id, analyst["user_id"], 3)
    [already] = await add_notifications(owner_engine, tenant.agency_id, analyst["user_id"], read=True)

    async def feed(**params):
        r = await tenant.req("GET", "/v1/notifications", token=analyst_token, params=params)
        assert r.status_code == 200, r.text
        return [n["id"] for n in r.json()["items"]]

    assert set(await feed(unread="true")) == set(ids)
    assert await feed(unread="false") == [already]

    r = await tenant.req("POST", f"/v1/notifications/{ids[0]}/read", token=analyst_token)
    assert r.status_code == 200 and r.json()["read_at"] is not None
    first_read_at = r.json()["read_at"]
    # Marking it again keeps the first instant.
    again = await tenant.req("POST", f"/v1/notifications/{ids[0]}/read", token=analyst_token)
    assert again.json()["read_at"] == first_read_at
    assert set(await feed(unread="true")) == set(ids[1:])

    r = await tenant.req("POST", "/v1/notifications/read-all", token=analyst_token)
    assert r.status_code == 200 and r.json() == {"marked_read": 2}
    assert await feed(unread="true") == []
    assert len(await feed()) == 4
    assert (await tenant.req("POST", "/v1/notifications/read-all", token=analyst_token)).json() == {"marked_read": 0}


async def test_read_all_leaves_other_members_alone(tenant, owner_engine):
    editor_token, editor = await tenant.member("editor")
    owner_id = await _me(tenant)
    await add_notifications(owner_engine, tenant.agency_id, owner_id, 2)
    await add_notifications(owner_engine, tenant.agency_id, editor["user_id"], 1)
    assert (await tenant.req("POST", "/v1/notifications/read-all", token=editor_token)).json() == {"marked_read": 1}
    assert len((await tenant.req("GET", "/v1/notifications", params={"unread": "true"})).json()["items"]) == 2


async def test_pagination_newest_first_without_gaps(tenant, owner_engine):
    editor_token, editor = await tenant.member("editor")
    ids = await add_notifications(owner_engine, tenant.agency_id, editor["user_id"], 5)
    seen, cursor = [], None
    for _ in range(5):
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await tenant.req("GET", "/v1/notifications", token=editor_token, params=params)).json()
        seen += [n["id"] for n in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    bad = await tenant.req("GET", "/v1/notifications", token=editor_token, params={"cursor": "not-a-cursor"})
    assert bad.status_code in (400, 422) and bad.headers["content-type"].startswith("application/problem+json")


async def test_api_keys_have_no_feed(tenant):
    key = await tenant.api_key(["posts:read", "agency:read"])
    for method, path in (("GET", "/v1/notifications"), ("POST", "/v1/notifications/read-all"),
                         ("POST", f"/v1/notifications/{uuid.uuid4()}/read")):
        r = await tenant.req(method, path, token=key)
        assert r.status_code == 403 and r.json()["type"].endswith("/forbidden"), (path, r.text)
