"""The client's share page in a real browser: Debian's Chromium driven by Playwright, against
the app served by uvicorn on loopback. No JavaScript on the page: plain forms and redirects."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from domain.core.settings import ROOT
from tests.api.test_share_links import create_link, make_shared
from tests.loopback import serve

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / ".data" / "artifacts"


def _browser_or_fail():
    """Missing pieces fail the test with the fix (never a silent skip)."""
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("playwright is not installed: `make setup` (it is a dev dependency in pyproject.toml)")
    if not CHROMIUM.exists() and not shutil.which("chromium"):
        pytest.fail("Chromium is missing: `apt-get install -y chromium` (`make test` and .ci/run install it as root)")
    return async_playwright


async def test_client_reviews_three_posts_in_chromium(settings, tenant, owner_engine):
    async_playwright = _browser_or_fail()
    from api.app import create_app

    shared = await make_shared(tenant, owner_engine, settings, networks=("instagram", "facebook", "x"), workflow=True)
    ids = {n: p["id"] for n, p in shared.posts.items()}
    link = await create_link(tenant, shared.brand["id"], posts=list(ids.values()), permission="approve",
                             label="January posts")
    token = link["url"].rsplit("/share/", 1)[1]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "share-page.png"

    with serve(create_app(settings), ready_path="/healthz") as base:
        async with async_playwright() as p:
            browser = await p.chromium.launch(
                executable_path=str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")), headless=True,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            try:
                # Don Luis, on his phone, with JavaScript off: the page must not need it.
                context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True,
                                                    java_script_enabled=False)
                page = await context.new_page()
                response = await page.goto(f"{base}/share/{token}")
                assert response is not None and response.status == 200
                assert response.headers["cache-control"] == "no-store"
                cards = page.locator("section.card")
                assert await cards.count() == 3
                networks = {await cards.nth(i).get_attribute("data-network") for i in range(3)}
                assert networks == {"instagram", "facebook", "x"}
                for network in networks:
                    card = page.locator(f'article#post-{ids[network]} section.card[data-network="{network}"]')
                    assert await card.locator(".copy").inner_text() == (
                        f"Roscón de Reyes on {network}\nsecond line\n\n#roscon")
                    assert await card.locator(".handle").inner_text() == "@h"
                # The photo loads from our own signed media route.
                photo = page.locator(f"article#post-{ids['instagram']} .media img")
                assert await photo.evaluate("img => img.complete && img.naturalWidth") == 1080

                await page.fill("#reviewer-name", "Don Luis")
                await page.fill("#reviewer-email", "luis@panaderia.test")
                await page.click("text=Continue")
                await page.wait_for_load_state()
                assert "Reviewing as" in await page.inner_text("main")

                await page.locator(f"article#post-{ids['instagram']} button.approve").click()
                await page.wait_for_load_state()
                assert "Approved. Thank you!" in await page.inner_text(".flash")

                await page.fill(f"#changes-{ids['facebook']}", "Please use the photo with the kids.\nAnd no emoji.")
                await page.locator(f"article#post-{ids['facebook']} button.changes").click()
                await page.wait_for_load_state()
                assert "Your request for changes was sent." in await page.inner_text(".flash")
                decided = await page.locator(f"article#post-{ids['facebook']} li.decision").inner_text()
                assert "Don Luis" in decided and "asked for changes" in decided
                await page.screenshot(path=str(screenshot), full_page=True)
            finally:
                await browser.close()
    print(f"\nshare page screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000

    # The team sees both decisions, each with the reviewer who made it.
    detail = (await tenant.req("GET", f"/v1/share-links/{link['id']}")).json()
    decisions = {d["post_id"]: d for d in detail["decisions"]}
    assert set(decisions) == {ids["instagram"], ids["facebook"]}
    assert decisions[ids["instagram"]]["decision"] == "approve"
    assert decisions[ids["facebook"]]["decision"] == "request_changes"
    assert decisions[ids["facebook"]]["comment"] == "Please use the photo with the kids.\nAnd no emoji."
    assert {d["reviewer_name"] for d in decisions.values()} == {"Don Luis"}
    assert [r["email"] for r in detail["reviewers"]] == ["luis@panaderia.test"]
    posts = {p_id: (await tenant.req("GET", f"/v1/posts/{p_id}")).json() for p_id in ids.values()}
    assert posts[ids["instagram"]]["status"] == "approved"
    assert posts[ids["facebook"]]["status"] == "draft"
