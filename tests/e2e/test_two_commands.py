"""`chorus run` as a new user runs it: embedded PostgreSQL, migrations, demo data, the
API on loopback, and Ctrl-C stopping everything it started."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
CHORUS = Path(sys.executable).parent / "chorus"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def data_dir():
    path = ROOT / ".data" / f"e2e-{os.getpid()}-{time.time_ns()}"
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env.update({"CHORUS_DATA_DIR": str(data_dir), "CHORUS_PORT": str(port), "CHORUS_ARGON2_TIME_COST": "1",
                "CHORUS_ARGON2_MEMORY_KIB": "1024"})
    return env


def _postgres_running(data_dir: Path) -> bool:
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_chorus_run_serves_the_demo_and_stops_cleanly(data_dir):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([str(CHORUS), "run"], env=_env(data_dir, port), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            if "Chorus API on" in line:
                break
        text = "".join(output)
        assert "Chorus API on" in text, text
        # The background worker runs beside the API in the same process (one Ctrl-C for both).
        assert "worker running beside the API" in text, text
        # So does the scheduler, with the approval and token sweeps registered.
        assert "scheduler running beside the API" in text, text
        assert "approvals.remind_and_expire" in text and "accounts.token_refresh" in text, text
        key = re.search(r"Bearer (chk_\S+)", text).group(1)
        for _ in range(100):
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=5) as http:
            brands = http.get("/v1/brands", headers={"Authorization": f"Bearer {key}"}).json()["items"]
            assert [b["name"] for b in brands] == ["Panadería Sol"]
            signin = http.post("/v1/auth/token", json={"email": "demo@chorus.local", "password": "chorus-demo-password"})
            assert signin.status_code == 200
            assert http.get("/docs/openapi.json").json()["info"]["title"] == "Chorus API"
            assert http.get("/docs").status_code == 200
            # Link the demo brand's X account through the sandbox this same process serves.
            token = signin.json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            brand_id = brands[0]["id"]
            started = http.post(f"/v1/brands/{brand_id}/social-account-links", json={"network": "x"}, headers=auth)
            assert started.status_code == 201, started.text
            assert started.json()["authorize_url"].startswith(f"{base}/sandbox/x/i/oauth2/authorize?")
            page = http.get(started.json()["authorize_url"], follow_redirects=True)
            assert page.status_code == 200 and "Account connected" in page.text
            linked = http.get("/v1/social-accounts", headers=auth).json()["items"]
            assert [a["network"] for a in linked] == ["x"] and linked[0]["status"] == "connected"
            # The demo plan has ideas; give one an X variant and schedule it.
            ideas = http.get("/v1/posts", params={"brand_id": brand_id, "sort": "created_at"}, headers=auth).json()
            assert [p["title"] for p in ideas["items"]][:2] == ["Roscón pre-orders open",
                                                               "Behind the oven: the sourdough"]
            idea = ideas["items"][0]
            variant = http.post(f"/v1/posts/{idea['id']}/variants", headers=auth, json={
                "social_account_id": linked[0]["id"], "text": "¡Ya podéis reservar vuestro roscón! 🥐"})
            assert variant.status_code == 201, variant.text
            scheduled = http.post(f"/v1/posts/{idea['id']}/schedule", json={}, headers=auth)
            assert scheduled.status_code == 200 and scheduled.json()["status"] == "scheduled", scheduled.text
        assert _postgres_running(data_dir)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, "".join(output) + (proc.stdout.read() or "")
    assert not _postgres_running(data_dir), "Ctrl-C left the embedded PostgreSQL running"

    # Seeding again (a second `make run`) finds everything in place and prints the same key.
    again = subprocess.run([str(CHORUS), "seed"], env=_env(data_dir, port), cwd=ROOT,
                           capture_output=True, text=True, timeout=90)
    assert again.returncode == 0, again.stdout + again.stderr
    assert key in again.stdout
