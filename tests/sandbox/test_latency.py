"""The sandbox's latency knob (POST /_sandbox/config {"publish": {"latency_ms": N}}): every call to
that network's API waits N ms before it is handled; other networks and the control API do not."""

from __future__ import annotations

import time
from typing import Any


async def test_latency_applies_to_one_networks_calls_until_reset(sandbox: Any) -> None:
    r = await sandbox.post("/_sandbox/config", json={"network": "x", "publish": {"latency_ms": 300}})
    assert r.status_code == 200, r.text
    assert r.json()["publish"]["latency_ms"] == 300
    started = time.monotonic()
    r = await sandbox.get("/x/2/users/me")  # no token: answered (401) after the wait
    assert r.status_code == 401
    assert time.monotonic() - started >= 0.3  # a lower bound: asyncio.sleep never returns early
    assert (await sandbox.get("/_sandbox/calls", params={"network": "x"})).json()["count"] == 1
    r = await sandbox.post("/_sandbox/config", json={"network": "x", "publish": {"latency_ms": -1}})
    assert r.status_code == 400
    await sandbox.post("/_sandbox/reset")
    r = await sandbox.post("/_sandbox/config", json={"network": "x"})
    assert r.json()["publish"]["latency_ms"] == 0
