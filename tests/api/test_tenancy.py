"""Tenant isolation, enforced twice: scoped queries, and PostgreSQL RLS underneath."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from domain.agencies.rules import SCOPES
from domain.core.settings import APP_DB_ROLE
from tests.api.objects import one_of_each
from tests.api.routes import api_routes

# A valid body for routes whose body has required fields, so the call reaches the id lookup.
BODIES = {
    "/v1/brands/{brand_id}/social-account-links": {"network": "x"},
    "/v1/posts/{post_id}/variants": {"social_account_id": str(uuid.uuid4())},
    "/v1/posts/{post_id}/copy-suggestions": {"network": "x"},
    "/v1/brands/{brand_id}/briefs": {"title": "B", "kind": "image", "networks": ["x"]},
    "/v1/briefs/{brief_id}/deliveries": {"media_ids": [str(uuid.uuid4())]},
    "/v1/brands/{brand_id}/posting-slots": {"slots": [{"network": "x", "weekday": 1, "local_time": "09:00"}]},
    "/v1/posts/{post_id}/reschedule": {"scheduled_at": "2030-01-01T09:00:00Z"},
    "/v1/brands/{brand_id}/approval-workflow": {"steps": [{"name": "Client", "kind": "client"}]},
    "/v1/approval-requests/{request_id}/decisions": {"decision": "approve"},
    "/v1/posts/{post_id}/comments": {"body": "hi"},
    "/v1/brands/{brand_id}/share-links": {"range": {"from": "2030-01-01", "to": "2030-01-31"}},
    "/v1/brands/{brand_id}/publishing/pause": {"reason": "Crisis"},
}
ID_PARAMS = {"notification_id", "brand_id", "campaign_id", "member_id", "invitation_id", "key_id", "link_id", "account_id", "post_id",
             "variant_id", "number", "brief_id", "media_id", "feed_id", "import_id", "request_id", "share_link_id",
             "endpoint_id", "delivery_id"}


async def _objects(tenant, owner_engine=None, settings=None) -> dict[str, str]:
    _, member = await tenant.member("editor")
    return await one_of_each(tenant, owner_engine, settings, member_id=member["id"])


async def test_every_route_taking_an_id_is_404_for_another_agency(app, tenant, other_tenant, owner_engine, settings):
    mine = await _objects(tenant, owner_engine, settings)
    # Routes keyed by a network name, not an id, act on the caller's own agency by construction.
    cases = [c for c in api_routes(app) if set(c.params) - {"network"}]
    assert cases, "no routes with ids?"
    for case in cases:
        assert set(case.params) <= ID_PARAMS, f"add {case.params} to this test"
        kwargs = {"json": BODIES.get(case.path, {})} if case.method in ("POST", "PUT", "PATCH") else {}
        r = await other_tenant.req(case.method, case.url(mine), **kwargs)
        assert r.status_code == 404, f"{case.method} {case.path}: {r.status_code} {r.text[:200]}"
        assert r.json()["type"].endswith("/not-found")
        # Same with an API key holding every scope.
        key = await other_tenant.api_key(sorted(SCOPES))
        r = await other_tenant.req(case.method, case.url(mine), token=key, **kwargs)
        assert r.status_code in (403, 404), f"{case.method} {case.path} with key: {r.status_code}"
    # And nothing changed for the owner.
    for name, path in [("brand_id", "/v1/brands/{}"), ("campaign_id", "/v1/campaigns/{}"),
                       ("member_id", "/v1/members/{}"), ("key_id", "/v1/api-keys/{}"),
                       ("account_id", "/v1/social-accounts/{}"), ("link_id", "/v1/social-account-links/{}"),
                       ("post_id", "/v1/posts/{}"), ("brief_id", "/v1/briefs/{}"), ("media_id", "/v1/media/{}")]:
        assert (await tenant.req("GET", path.format(mine[name]))).status_code == 200


async def test_lists_never_carry_a_foreign_id(app, tenant, other_tenant, owner_engine, settings):
    # Ids only: the walk's objects also carry names such as the network "x" and revision "1".
    mine = {v for v in (await _objects(tenant, owner_engine, settings)).values() if len(v) == 36}
    mine.add(tenant.agency_id)
    theirs = await _objects(other_tenant, owner_engine, settings)
    lists = [c for c in api_routes(app) if c.method == "GET" and not c.params]
    for case in lists:
        r = await other_tenant.req("GET", case.path, params={"limit": 200} if case.path != "/v1/agency" else None)
        assert r.status_code == 200, case.path
        if r.headers["content-type"].startswith("text/csv"):  # the calendar export, the import template
            assert not any(value in r.text for value in mine), f"{case.path} leaked another agency's ids"
            continue
        assert not (mine & set(_all_strings(r.json()))), f"{case.path} leaked another agency's ids"
    # The lists do show the caller's own objects.
    brands = (await other_tenant.req("GET", "/v1/brands")).json()["items"]
    assert theirs["brand_id"] in {b["id"] for b in brands}


def _all_strings(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _all_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _all_strings(v)
    elif isinstance(value, str):
        yield value


async def test_catalog_every_agency_table_has_forced_rls(owner_engine):
    async with owner_engine.connect() as conn:
        tables = (await conn.execute(text("""
            SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
                   (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
              AND (EXISTS (SELECT 1 FROM information_schema.columns col
                           WHERE col.table_schema = 'public' AND col.table_name = c.relname
                             AND col.column_name = 'agency_id')
                   OR c.relname = 'agencies')
        """))).all()
        names = {t.relname for t in tables}
        assert {"brands", "campaigns", "memberships", "api_keys", "audit_events", "agencies"} <= names
        for t in tables:
            assert t.relrowsecurity and t.relforcerowsecurity and t.policies >= 1, t.relname
        role = (await conn.execute(text(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = :r"), {"r": APP_DB_ROLE})).one()
        assert not role.rolsuper and not role.rolbypassrls
        owned = (await conn.execute(text(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner = :r"), {"r": APP_DB_ROLE})).scalar()
        assert owned == 0
        views = (await conn.execute(text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'v' "
            "AND NOT coalesce(c.reloptions::text[] @> ARRAY['security_invoker=true'], false)"))).all()
        assert views == []


async def test_rls_hides_rows_from_the_app_role_whatever_the_query(app_engine, tenant, other_tenant):
    """Bypass the app's scoping: raw SQL as the app role sees only the tenant it set."""
    await tenant.brand("Only mine")
    await other_tenant.brand("Only theirs")
    engine = app_engine
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT current_user"))).scalar() == APP_DB_ROLE
        assert (await conn.execute(text("SELECT count(*) FROM brands"))).scalar() == 0
        await conn.execute(text("SELECT set_config('app.agency_id', :a, true)"), {"a": tenant.agency_id})
        names = set((await conn.execute(text("SELECT name FROM brands"))).scalars())
        assert "Only mine" in names and "Only theirs" not in names
        # Writing a row into another agency is refused by the policy's WITH CHECK.
        from sqlalchemy.exc import DBAPIError

        try:
            await conn.execute(text(
                "INSERT INTO brands (id, agency_id, name, slug, time_zone, language, status, profile, version, created_at, updated_at) "
                "VALUES (gen_random_uuid(), :other, 'x', 'x', 'UTC', 'en', 'active', '{}', 1, now(), now())"),
                {"other": other_tenant.agency_id})
            raise AssertionError("RLS let a row into another agency")
        except DBAPIError as err:
            assert "row-level security" in str(err)
        await conn.rollback()


async def test_tenant_setting_does_not_leak_between_transactions(app_engine, tenant):
    engine = app_engine
    async with engine.connect() as conn:
        await conn.execute(text("SELECT set_config('app.agency_id', :a, true)"), {"a": tenant.agency_id})
        await conn.commit()
        assert (await conn.execute(text("SELECT current_setting('app.agency_id', true)"))).scalar() in ("", None)
        await conn.rollback()


async def test_a_refused_entry_leaves_no_transaction_or_tenant_behind(app_engine, tenant):
    import pytest

    from domain.core.db import enter_request
    from domain.core.errors import AccessTokenStaleError

    user_id = (await tenant.req("GET", "/v1/members")).json()["items"][0]["user_id"]
    with pytest.raises(AccessTokenStaleError):
        await enter_request(app_engine, agency_id=uuid.UUID(tenant.agency_id), user_id=uuid.UUID(user_id),
                            membership_version=999)
    good = await enter_request(app_engine, agency_id=uuid.UUID(tenant.agency_id), user_id=uuid.UUID(user_id),
                               membership_version=1)
    try:
        assert (await good.execute(text("SELECT current_setting('app.agency_id', true)"))).scalar() == tenant.agency_id
    finally:
        await good.close()
    for _ in range(3):  # every pooled connection is clean
        async with app_engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert not raw.is_in_transaction()
            assert (await conn.execute(text("SELECT current_setting('app.agency_id', true)"))).scalar() in ("", None)
            await conn.rollback()


async def test_the_pool_never_keeps_a_transaction_sqlalchemy_did_not_see(app_engine, tenant):
    """Backstop for a request cut short between our BEGIN and SQLAlchemy learning of it."""
    async with app_engine.connect() as conn:
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.execute(f"BEGIN; SELECT set_config('app.agency_id', '{tenant.agency_id}', true)")
        assert raw.is_in_transaction()
    async with app_engine.connect() as conn:
        raw2 = (await conn.get_raw_connection()).driver_connection
        assert not raw2.is_in_transaction()
        assert (await conn.execute(text("SELECT count(*) FROM brands"))).scalar() == 0
        await conn.rollback()
