"""The publishing engine's limits come from CHORUS_PUBLISH_* (defaults unchanged)."""

from __future__ import annotations

from datetime import timedelta

from domain.core.settings import Settings
from domain.publishing.rules import DEFAULT_LIMITS, PublishLimits


def test_the_defaults_are_the_engines_documented_limits():
    assert DEFAULT_LIMITS == PublishLimits(max_attempts=5, max_lateness=timedelta(hours=2), claim_batch=100,
                                           stuck_after=timedelta(minutes=10), unknown_grace=timedelta(minutes=2),
                                           processing_max_age=timedelta(hours=1),
                                           unreachable_backoff=timedelta(minutes=1))
    assert Settings().publish_sweep_seconds == 1.0
    assert Settings().publish_check_seconds == 15.0


def test_each_limit_is_read_from_its_environment_variable(monkeypatch):
    for name, value in {"MAX_ATTEMPTS": "7", "MAX_LATENESS_SECONDS": "90", "CLAIM_BATCH": "500",
                        "STUCK_AFTER_SECONDS": "4.5", "UNKNOWN_GRACE_SECONDS": "1", "PROCESSING_MAX_AGE_SECONDS": "30",
                        "UNREACHABLE_BACKOFF_SECONDS": "2", "SWEEP_SECONDS": "0.5", "CHECK_SECONDS": "3"}.items():
        monkeypatch.setenv(f"CHORUS_PUBLISH_{name}", value)
    settings = Settings.from_env()
    assert PublishLimits.from_settings(settings) == PublishLimits(
        max_attempts=7, max_lateness=timedelta(seconds=90), claim_batch=500, stuck_after=timedelta(seconds=4.5),
        unknown_grace=timedelta(seconds=1), processing_max_age=timedelta(seconds=30),
        unreachable_backoff=timedelta(seconds=2))
    assert settings.publish_sweep_seconds == 0.5
    assert settings.publish_check_seconds == 3.0


def test_the_scheduler_sweeps_publishing_at_the_configured_interval():
    from workers.publishing import SWEEP
    from workers.scheduler import SWEEPS, load_sweep_modules

    load_sweep_modules()
    sweep = SWEEPS.sweeps[SWEEP]
    assert sweep.interval(Settings(publish_sweep_seconds=2.5)) == 2.5
    assert sweep.interval(Settings()) == 1.0
