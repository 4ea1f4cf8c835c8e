"""Sandbox tests need no database: a fresh in-memory sandbox app per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from litestar.testing import AsyncTestClient

from api.sandbox.app import create_sandbox_app


@pytest.fixture
async def sandbox() -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(create_sandbox_app()) as client:
        yield client
