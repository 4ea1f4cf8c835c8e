"""The network sandbox on loopback, shared by the end-to-end tests of this folder."""

from __future__ import annotations

import pytest

from api.sandbox.app import create_sandbox_app
from tests.loopback import serve


@pytest.fixture(scope="session")
def sandbox_url():
    with serve(create_sandbox_app()) as base:
        yield base
