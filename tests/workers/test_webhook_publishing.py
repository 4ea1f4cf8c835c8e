"""post.published and post.failed reach the integrator: the publishing engine against the
network sandbox, a real worker, and a webhook receiver on loopback."""

from __future__ import annotations

import dataclasses
import json

import pytest
from litestar.testing import AsyncTestClient

from domain.networks.adapters.base import Network
from tests.api.test_webhooks import documented_verifier
from tests.workers.conftest import eventually
from tests.workers.test_publishing import (  # noqa: F401 - fixtures
    _due_post, _fault, _link, _settled, _sweep, _who, app_role_engine, pub_settings, sandbox,
)
from tests.loopback import Receiver, serve


@pytest.fixture
def hook_settings(pub_settings):
    return dataclasses.replace(pub_settings, webhooks_allow_private=True)


@pytest.fixture
def hook_worker(hook_settings):
    from workers.broker import InProcessWorker

    running = InProcessWorker(hook_settings, threads=2)
    running.start()
    yield running
    running.stop(timeout_ms=5_000)


@pytest.fixture
async def hook_client(hook_settings):
    from api.app import create_app

    async with AsyncTestClient(create_app(hook_settings), base_url="http://testserver.local") as c:
        yield c


@pytest.fixture
def receiver():
    app = Receiver()
    with serve(app, ready_path="/ready") as base:
        app.base = base
        yield app


async def test_published_and_failed_posts_reach_the_receiver(tenant, owner_engine, hook_settings, sandbox, hook_worker,
                                                             app_role_engine, hook_client, receiver):
    r = await hook_client.post("/v1/webhook-endpoints", headers=tenant.auth(), json={
        "url": f"{receiver.base}/h", "events": ["post.published", "post.failed"]})
    assert r.status_code == 201, r.text
    secret = r.json()["signing_secret"]
    brand = await tenant.brand()
    ok, bad = _who("whp"), _who("whf")
    x_ok = await _link(tenant, owner_engine, hook_settings, sandbox, brand["id"], Network.X, ok)
    x_bad = await _link(tenant, owner_engine, hook_settings, sandbox, brand["id"], Network.X, bad)
    await _fault(sandbox, network="x", match="publish", kind="status", status=403, identity=bad,
                 body={"title": "Forbidden", "detail": "Duplicate content.", "type": "about:blank", "status": 403})
    post = await _due_post(tenant, owner_engine, brand["id"], [{"social_account_id": x_ok, "text": "Sale"},
                                                               {"social_account_id": x_bad, "text": "Sale!"}])
    await _sweep(app_role_engine, hook_worker)
    variants = await _settled(owner_engine, post["id"], "published", "failed")
    await eventually(lambda: len(receiver.received) == 2, what="both events")
    verify = documented_verifier()
    by_type = {}
    for got in receiver.received:
        assert verify(secret, got["headers"]["chorus-signature"], got["body"])
        payload = json.loads(got["body"])
        by_type[payload["type"]] = payload["data"]
    published = next(v for v in variants.values() if v["status"] == "published")
    assert by_type["post.published"]["post_id"] == post["id"]
    assert by_type["post.published"]["network_post_id"] == published["external_id"]
    assert by_type["post.published"]["url"] == published["external_url"]
    assert by_type["post.published"]["social_account_id"] == x_ok
    assert by_type["post.failed"]["social_account_id"] == x_bad
    assert "Duplicate content" in by_type["post.failed"]["message"]
