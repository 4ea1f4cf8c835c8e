"""Every route, called with every role and with API keys, against the role x action table."""

from __future__ import annotations

import uuid

import pytest

from domain.agencies.rules import ACTION_SCOPES, PERMISSIONS, SCOPES, Action, Role
from tests.api.objects import one_of_each
from tests.api.routes import api_routes, routes


def test_every_route_declares_its_access(app):
    for case in routes(app):
        assert case.opt.get("public") or isinstance(case.opt.get("action"), Action), (
            f"{case.method} {case.path} declares neither an action nor public")


@pytest.fixture
async def world(tenant, owner_engine, settings):
    """One object of every kind, and a token for every role."""
    tokens = {Role.OWNER: tenant.owner_token}
    members = {}
    for role in [Role.ADMIN, Role.MANAGER, Role.EDITOR, Role.ANALYST]:
        tokens[role], members[role] = await tenant.member(role.value)
    # A member nobody's call can remove for good: the analyst (removal by owner is allowed).
    ids = await one_of_each(tenant, owner_engine, settings, member_id=members[Role.ANALYST]["id"])
    return tenant, tokens, ids


def _is_denied(response) -> bool:
    return response.status_code == 403 and response.json()["type"].endswith("/forbidden")


async def test_every_route_with_every_role(app, world):
    tenant, tokens, ids = world
    checked = 0
    # Read-only calls first, destructive ones last, so later calls still find their objects.
    order = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 2, "DELETE": 3}
    # Removing the analyst's membership comes last of all: their token stops working after it.
    for case in sorted(api_routes(app), key=lambda c: (order[c.method], "member_id" in c.params)):
        for role, token in tokens.items():
            if case.method == "DELETE" and role is Role.ANALYST and "member_id" in case.params:
                continue  # the analyst may always leave; that self-removal is tested elsewhere
            url = case.url(ids)
            kwargs = {"json": {}} if case.method in ("POST", "PUT", "PATCH") else {}
            response = await tenant.req(case.method, url, token=token, **kwargs)
            allowed = case.opt["action"] in PERMISSIONS[role]
            assert _is_denied(response) is (not allowed), (
                f"{role.value} {case.method} {case.path}: {response.status_code} {response.text[:200]}")
            assert response.status_code < 500, f"{case.method} {case.path}: {response.text}"
            checked += 1
    assert checked >= 5 * 20


async def test_every_route_with_api_key_scopes(app, tenant):
    brand = await tenant.brand()
    ids = {"brand_id": brand["id"], "campaign_id": str(uuid.uuid4()), "member_id": str(uuid.uuid4()),
           "invitation_id": str(uuid.uuid4()), "key_id": str(uuid.uuid4()), "link_id": str(uuid.uuid4()),
           "account_id": str(uuid.uuid4()), "network": "x", "post_id": str(uuid.uuid4()),
           "variant_id": str(uuid.uuid4()), "number": "1", "brief_id": str(uuid.uuid4()),
           "media_id": str(uuid.uuid4()), "feed_id": str(uuid.uuid4()), "import_id": str(uuid.uuid4()), "request_id": str(uuid.uuid4()),
           "share_link_id": str(uuid.uuid4()), "notification_id": str(uuid.uuid4()),
           "endpoint_id": str(uuid.uuid4()), "delivery_id": str(uuid.uuid4())}
    for case in api_routes(app):
        action = case.opt["action"]
        needed = ACTION_SCOPES[action]
        other_scopes = sorted(SCOPES - {needed, needed.replace(":read", ":write")} if needed else SCOPES)
        without = await tenant.api_key(other_scopes)
        r = await tenant.req(case.method, case.url(ids), token=without, **({"json": {}} if case.method in ("POST", "PUT", "PATCH") else {}))
        assert _is_denied(r), f"{case.method} {case.path} allowed a key without {needed}"
        if needed is not None:
            with_scope = await tenant.api_key([needed])
            r = await tenant.req(case.method, case.url(ids), token=with_scope, **({"json": {}} if case.method in ("POST", "PUT", "PATCH") else {}))
            assert not _is_denied(r), f"{case.method} {case.path} refused a key with {needed}: {r.text}"


async def test_no_credential_is_401_on_every_private_route(app, client):
    ids = {p: str(uuid.uuid4()) for p in ["brand_id", "campaign_id", "member_id", "invitation_id", "key_id",
                                          "link_id", "account_id", "post_id", "variant_id", "brief_id",
                                          "media_id", "feed_id", "import_id", "request_id", "share_link_id", "notification_id",
                                          "endpoint_id", "delivery_id"]} | {"network": "x",
                                                                                                 "number": "1"}
    for case in api_routes(app):
        r = await client.request(case.method, case.url(ids), content=b"{not json")
        assert r.status_code == 401, f"{case.method} {case.path}: {r.status_code}"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["type"].endswith("/authentication-required")
