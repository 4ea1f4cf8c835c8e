"""`chorus worker` as operators run it: a separate process on the same database that sends
the emails, and stops cleanly on Ctrl-C (SIGINT)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.workers.conftest import eventually

CHORUS = Path(sys.executable).parent / "chorus"
ROOT = Path(__file__).resolve().parents[2]


async def test_chorus_worker_sends_emails_and_stops_on_ctrl_c(notify_client, tenant, smtp_inbox, database_url,
                                                               tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHORUS_")}
    env.update({"CHORUS_DATABASE_URL": database_url, "CHORUS_SMTP_URL": smtp_inbox.url,
                "CHORUS_DATA_DIR": str(tmp_path), "CHORUS_LOG_LEVEL": "WARNING"})
    proc = subprocess.Popen([str(CHORUS), "worker", "--threads", "1"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = ""
        for _ in range(50):
            line = proc.stdout.readline()
            if not line or "worker running" in line:
                break
        assert "worker running" in line and "notifications" in line, line

        _, member = await tenant.member("analyst")
        r = await notify_client.post("/test/notify", headers=tenant.auth(), json={
            "user_ids": [member["user_id"]], "title": "From the worker process"})
        assert r.status_code == 201, r.text
        await eventually(lambda: [m for m in smtp_inbox.to(member["email"])
                                  if m["Subject"].endswith("From the worker process")], what="the email")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    rest = proc.stdout.read()
    assert proc.returncode == 0, rest
    assert "worker stopped" in rest
