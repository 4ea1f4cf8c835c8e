"""The network sandbox on loopback, for linking against the plan's limits."""

from __future__ import annotations

from dataclasses import replace

import pytest
from litestar.testing import AsyncTestClient


@pytest.fixture(scope="session")
def billing_sandbox_url():
    from api.sandbox.app import create_sandbox_app
    from tests.loopback import serve

    with serve(create_sandbox_app()) as base:
        yield base


@pytest.fixture(scope="module")
async def linked_client(settings, billing_sandbox_url):
    from api.app import create_app

    app = create_app(replace(settings, network_sandbox_url=billing_sandbox_url, network_apps=(),
                             network_timeout_seconds=2.0))
    async with AsyncTestClient(app, base_url="http://testserver.local") as c:
        yield c
