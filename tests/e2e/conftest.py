"""The network sandbox on loopback, shared by the end-to-end tests of this folder."""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest
import uvicorn

from api.sandbox.app import create_sandbox_app


@pytest.fixture(scope="session")
def sandbox_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_sandbox_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"{base}/_sandbox/clock", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)


