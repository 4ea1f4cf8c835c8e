"""The client share page and its JSON twin on a plan with and without white-label."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.billing.helpers import set_plan

LOGO = "https://cdn.agency.example/logo.png"


async def _link(tenant) -> str:
    brand = await tenant.brand()
    start = datetime.now(UTC).date() + timedelta(days=1)
    r = await tenant.req("POST", f"/v1/brands/{brand['id']}/share-links",
                         json={"range": {"from": start.isoformat(), "to": (start + timedelta(days=3)).isoformat()}})
    assert r.status_code == 201, r.text
    return r.json()["url"].rsplit("/share/", 1)[1]


async def test_share_page_keeps_chorus_look_without_white_label(client, tenant, owner_engine):
    # Branding set while the plan allowed it (or before billing was on).
    async with owner_engine.begin() as conn:
        await conn.execute(text("UPDATE agencies SET branding = CAST(:b AS jsonb) WHERE id = :a"), {
            "a": tenant.agency_id, "b": json.dumps({"logo_url": LOGO, "primary_color": "#112233"})})
    await set_plan(owner_engine, tenant.agency_id, "growth")
    token = await _link(tenant)
    page = await client.get(f"/share/{token}")
    assert page.status_code == 200, page.text
    assert LOGO not in page.text and "#112233" not in page.text
    assert "Powered by Chorus" in page.text
    shared = (await client.get(f"/v1/shared/{token}")).json()
    assert shared["branding"]["logo_url"] is None and shared["branding"]["white_label"] is False

    await set_plan(owner_engine, tenant.agency_id, "agency")
    page = await client.get(f"/share/{token}")
    assert LOGO in page.text and "Powered by Chorus" not in page.text
    shared = (await client.get(f"/v1/shared/{token}")).json()
    assert shared["branding"]["logo_url"] == LOGO and shared["branding"]["primary_color"] == "#112233"
