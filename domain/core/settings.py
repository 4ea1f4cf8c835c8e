"""Settings from CHORUS_* environment variables (documented in README.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[2]
APP_DB_ROLE = "chorus_app"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(f"CHORUS_{name}")
    return value if value not in (None, "") else default


def _int(name: str, default: int) -> int:
    return int(_env(name, str(default)))  # type: ignore[arg-type]


def _float(name: str, default: float) -> float:
    return float(_env(name, str(default)))  # type: ignore[arg-type]


def _bool(name: str, default: bool) -> bool:
    return (_env(name, "1" if default else "0") or "").lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    # Owner URL: migrations and seeding run as the role that owns the tables.
    database_url: str | None = None
    # The app connects as a role that neither owns the tables nor bypasses RLS.
    app_database_url: str | None = None
    data_dir: Path = ROOT / ".data"
    secret_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    invitation_ttl_seconds: int = 7 * 24 * 3600
    idempotency_ttl_seconds: int = 24 * 3600
    max_body_bytes: int = 1_048_576
    db_pool_size: int = 10
    db_statement_timeout_ms: int = 15_000
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65_536
    log_level: str = "INFO"
    log_json: bool = True
    bench_endpoints: bool = False
    # Sign-up, sign-in, refresh and invitation acceptance, per client address and minute.
    auth_rate_limit_per_minute: int = 30
    # Requests per minute per client address over the whole share-link space (/share, /v1/shared).
    share_rate_limit_per_minute: int = 120
    public_base_url: str = "http://127.0.0.1:8000"
    # Vault keys for secrets at rest (tokens, app secrets), newest first, comma-separated.
    encryption_keys: str | None = None
    smtp_url: str | None = None
    # Where providers send people back after OAuth (this API's own public address).
    api_base_url: str = "http://127.0.0.1:8000"
    # Set to point every network adapter at the network sandbox instead of the real hosts.
    network_sandbox_url: str | None = None
    # Chorus's own app per network: {"x": ("client id", "client secret"), ...}.
    network_apps: tuple[tuple[str, str, str], ...] = ()
    # Timeout of every call to a network, in seconds.
    network_timeout_seconds: float = 10.0
    # Serve the network sandbox from this process under /sandbox (development: `make run`).
    mount_sandbox: bool = False
    mail_from: str = "Chorus <no-reply@chorus.local>"
    # Background jobs: unset or postgresql://... -> dramatiq-postgres (unset: the app's own
    # database, as the app role); redis://... or amqp://... for larger installations.
    broker_url: str | None = None
    # Redis broker only: a worker whose heartbeat is older than this is presumed dead and
    # its unfinished messages are put back on their queue (by another worker's periodic
    # maintenance, run on `redis_maintenance_chance` of a million broker commands).
    redis_heartbeat_seconds: float = 60.0
    redis_maintenance_chance: int = 1000
    worker_threads: int = 4
    # How often `chorus scheduler` sweeps for due approval reminders and expiries
    # (seconds; 0 disables the sweep).
    approval_sweep_seconds: float = 300.0
    # Outbound webhooks: development only, allow http and private/loopback targets.
    webhooks_allow_private: bool = False
    webhooks_timeout_seconds: float = 10.0
    # An attempt in flight holds its delivery this long (at least the timeout + 30 s); a
    # worker that dies mid-request leaves it to the sweep once the lease runs out.
    webhooks_lease_seconds: float = 120.0
    # An endpoint is disabled after this many failed attempts in a row (0: never by count),
    # or when every attempt has failed for this many hours (0: never by time).
    webhooks_disable_after_failures: int = 50
    webhooks_disable_after_hours: float = 24.0
    # How often the sweep re-sends due webhook retries (0: never).
    webhook_sweep_seconds: float = 30.0
    # How often it looks for access tokens to refresh ahead of expiry and accounts that
    # will need their user to reconnect (seconds; 0 disables the sweep).
    token_sweep_seconds: float = 600.0
    # The agency-facing web app; emails link to posts under it when set (no link otherwise).
    frontend_base_url: str | None = None
    # The media library: where the bytes live (`local` under media_dir, or `s3`), how big a
    # file may be, and how long a signed public link to one lives at most.
    media_storage: str = "local"
    media_dir: Path | None = None  # None: data_dir / "media"
    media_s3_endpoint_url: str | None = None  # None: AWS itself
    media_s3_bucket: str | None = None
    media_s3_region: str = "us-east-1"
    media_s3_access_key_id: str | None = None  # None: boto3's own chain (environment, role)
    media_s3_secret_access_key: str | None = None
    media_s3_addressing_style: str = "auto"  # path for most self-hosted S3-compatible servers
    media_s3_timeout_seconds: float = 30.0
    media_max_image_bytes: int = 20 * 1024 * 1024
    media_max_video_bytes: int = 1024 * 1024 * 1024
    media_url_ttl_seconds: int = 3600
    # Publishing (domain/publishing/rules.py PublishLimits): attempts per variant, how late a
    # post may still go out, variants claimed per agency per sweep, when a `sending` attempt is
    # stuck, when an unclear outcome is looked up, how long an asynchronous publish may
    # process, the back-off when the network was unreachable, the sweep's interval (due
    # variants are claimed within about that long) and how often open attempts are checked.
    publish_max_attempts: int = 5
    publish_max_lateness_seconds: float = 7200.0
    publish_claim_batch: int = 100
    publish_stuck_after_seconds: float = 600.0
    publish_unknown_grace_seconds: float = 120.0
    publish_processing_max_age_seconds: float = 3600.0
    publish_unreachable_backoff_seconds: float = 60.0
    publish_sweep_seconds: float = 1.0
    publish_check_seconds: float = 15.0
    # At most this many sends in flight (attempts `sending`) per social account, and per
    # network within one agency; claim_due hands out no more.
    publish_account_concurrency: int = 4
    publish_network_concurrency: int = 100
    # The networks' documented per-account publishing quotas (the adapters' LIMITS.publish_quotas)
    # times this: 0 turns them off, 2 suits an app granted twice the standard limits.
    publish_quota_scale: float = 1.0
    # Claimed variants per publishing.publish_batch job (sent concurrently, recorded in one
    # transaction); 1 sends one job per variant.
    publish_send_batch: int = 25
    # Billing (domain/billing). No Stripe key: self-hosted, billing off and every limit open.
    stripe_secret_key: str | None = None
    stripe_webhook_secret: str | None = None
    # Only to point the SDK at a Stripe test double; unset: Stripe itself.
    stripe_api_base: str | None = None
    stripe_timeout_seconds: float = 10.0
    stripe_max_network_retries: int = 2
    # The Stripe price of each plan: (plan key, price id), from CHORUS_STRIPE_PRICE_<PLAN>.
    stripe_prices: tuple[tuple[str, str], ...] = ()
    # A new agency tries this plan for this many days without a card (0: no trial).
    billing_trial_days: int = 14
    billing_trial_plan: str = "growth"
    # After a payment fails, the agency keeps everything this long (days), with emails to
    # its owners; then it is read-only for new scheduling until it pays.
    billing_grace_days: float = 7.0
    # How often the scheduler looks for ended trials and grace periods (seconds; 0: never).
    billing_sweep_seconds: float = 600.0
    # Where Checkout and the Customer Portal send people back (default: frontend_base_url).
    billing_return_url: str | None = None

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=_env("DATABASE_URL"),
            app_database_url=_env("APP_DATABASE_URL"),
            data_dir=Path(_env("DATA_DIR", str(ROOT / ".data"))),  # type: ignore[arg-type]
            secret_key=_env("SECRET_KEY"),
            host=_env("HOST", "127.0.0.1"),  # type: ignore[arg-type]
            port=_int("PORT", 8000),
            access_token_ttl_seconds=_int("ACCESS_TOKEN_TTL", 900),
            refresh_token_ttl_seconds=_int("REFRESH_TOKEN_TTL", 30 * 24 * 3600),
            invitation_ttl_seconds=_int("INVITATION_TTL", 7 * 24 * 3600),
            idempotency_ttl_seconds=_int("IDEMPOTENCY_TTL", 24 * 3600),
            max_body_bytes=_int("MAX_BODY_BYTES", 1_048_576),
            db_pool_size=_int("DB_POOL_SIZE", 10),
            db_statement_timeout_ms=_int("DB_STATEMENT_TIMEOUT_MS", 15_000),
            argon2_time_cost=_int("ARGON2_TIME_COST", 3),
            argon2_memory_kib=_int("ARGON2_MEMORY_KIB", 65_536),
            log_level=_env("LOG_LEVEL", "INFO"),  # type: ignore[arg-type]
            log_json=_bool("LOG_JSON", True),
            bench_endpoints=_bool("BENCH_ENDPOINTS", False),
            auth_rate_limit_per_minute=_int("AUTH_RATE_LIMIT_PER_MINUTE", 30),
            share_rate_limit_per_minute=_int("SHARE_RATE_LIMIT_PER_MINUTE", 120),
            public_base_url=_env("PUBLIC_BASE_URL", "http://127.0.0.1:8000"),  # type: ignore[arg-type]
            encryption_keys=_env("ENCRYPTION_KEYS"),
            smtp_url=_env("SMTP_URL"),
            api_base_url=_env("API_BASE_URL", "http://127.0.0.1:8000"),  # type: ignore[arg-type]
            network_sandbox_url=_env("NETWORK_SANDBOX_URL"),
            network_apps=_network_apps(),
            mount_sandbox=_bool("MOUNT_SANDBOX", False),
            network_timeout_seconds=float(_env("NETWORK_TIMEOUT", "10")),  # type: ignore[arg-type]
            mail_from=_env("MAIL_FROM", "Chorus <no-reply@chorus.local>"),  # type: ignore[arg-type]
            broker_url=_env("BROKER_URL"),
            redis_heartbeat_seconds=float(_env("REDIS_HEARTBEAT_SECONDS", "60")),  # type: ignore[arg-type]
            redis_maintenance_chance=_int("REDIS_MAINTENANCE_CHANCE", 1000),
            worker_threads=_int("WORKER_THREADS", 4),
            approval_sweep_seconds=float(_env("APPROVAL_SWEEP_SECONDS", "300")),  # type: ignore[arg-type]
            webhooks_allow_private=_bool("WEBHOOKS_ALLOW_PRIVATE", False),
            webhooks_timeout_seconds=float(_env("WEBHOOKS_TIMEOUT", "10")),  # type: ignore[arg-type]
            webhook_sweep_seconds=float(_env("WEBHOOK_SWEEP_SECONDS", "30")),  # type: ignore[arg-type]
            webhooks_lease_seconds=float(_env("WEBHOOKS_LEASE_SECONDS", "120")),  # type: ignore[arg-type]
            webhooks_disable_after_failures=_int("WEBHOOKS_DISABLE_AFTER_FAILURES", 50),
            webhooks_disable_after_hours=float(_env("WEBHOOKS_DISABLE_AFTER_HOURS", "24")),  # type: ignore[arg-type]
            token_sweep_seconds=float(_env("TOKEN_SWEEP_SECONDS", "600")),  # type: ignore[arg-type]
            frontend_base_url=_env("FRONTEND_BASE_URL"),
            media_storage=_env("MEDIA_STORAGE", "local"),  # type: ignore[arg-type]
            media_dir=Path(_env("MEDIA_DIR")) if _env("MEDIA_DIR") else None,  # type: ignore[arg-type]
            media_s3_endpoint_url=_env("MEDIA_S3_ENDPOINT_URL"),
            media_s3_bucket=_env("MEDIA_S3_BUCKET"),
            media_s3_region=_env("MEDIA_S3_REGION", "us-east-1"),  # type: ignore[arg-type]
            media_s3_access_key_id=_env("MEDIA_S3_ACCESS_KEY_ID"),
            media_s3_secret_access_key=_env("MEDIA_S3_SECRET_ACCESS_KEY"),
            media_s3_addressing_style=_env("MEDIA_S3_ADDRESSING_STYLE", "auto"),  # type: ignore[arg-type]
            media_s3_timeout_seconds=float(_env("MEDIA_S3_TIMEOUT", "30")),  # type: ignore[arg-type]
            media_max_image_bytes=_int("MEDIA_MAX_IMAGE_BYTES", 20 * 1024 * 1024),
            media_max_video_bytes=_int("MEDIA_MAX_VIDEO_BYTES", 1024 * 1024 * 1024),
            media_url_ttl_seconds=_int("MEDIA_URL_TTL", 3600),
            publish_max_attempts=_int("PUBLISH_MAX_ATTEMPTS", 5),
            publish_max_lateness_seconds=_float("PUBLISH_MAX_LATENESS_SECONDS", 7200.0),
            publish_claim_batch=_int("PUBLISH_CLAIM_BATCH", 100),
            publish_stuck_after_seconds=_float("PUBLISH_STUCK_AFTER_SECONDS", 600.0),
            publish_unknown_grace_seconds=_float("PUBLISH_UNKNOWN_GRACE_SECONDS", 120.0),
            publish_processing_max_age_seconds=_float("PUBLISH_PROCESSING_MAX_AGE_SECONDS", 3600.0),
            publish_unreachable_backoff_seconds=_float("PUBLISH_UNREACHABLE_BACKOFF_SECONDS", 60.0),
            publish_sweep_seconds=_float("PUBLISH_SWEEP_SECONDS", 1.0),
            publish_check_seconds=_float("PUBLISH_CHECK_SECONDS", 15.0),
            publish_account_concurrency=_int("PUBLISH_ACCOUNT_CONCURRENCY", 4),
            publish_network_concurrency=_int("PUBLISH_NETWORK_CONCURRENCY", 100),
            publish_quota_scale=_float("PUBLISH_QUOTA_SCALE", 1.0),
            publish_send_batch=max(1, _int("PUBLISH_SEND_BATCH", 25)),
            stripe_secret_key=_env("STRIPE_SECRET_KEY"),
            stripe_webhook_secret=_env("STRIPE_WEBHOOK_SECRET"),
            stripe_api_base=_env("STRIPE_API_BASE"),
            stripe_timeout_seconds=_float("STRIPE_TIMEOUT", 10.0),
            stripe_max_network_retries=_int("STRIPE_MAX_NETWORK_RETRIES", 2),
            stripe_prices=_stripe_prices(),
            billing_trial_days=_int("BILLING_TRIAL_DAYS", 14),
            billing_trial_plan=_env("BILLING_TRIAL_PLAN", "growth"),  # type: ignore[arg-type]
            billing_grace_days=_float("BILLING_GRACE_DAYS", 7.0),
            billing_sweep_seconds=_float("BILLING_SWEEP_SECONDS", 600.0),
            billing_return_url=_env("BILLING_RETURN_URL"),
        )

    @property
    def billing_enabled(self) -> bool:
        return bool(self.stripe_secret_key)

    def price_for(self, plan_key: str) -> str | None:
        return dict(self.stripe_prices).get(plan_key)

    def plan_for_price(self, price_id: str | None) -> str | None:
        return next((plan for plan, price in self.stripe_prices if price == price_id), None)

    def owner_url(self) -> str:
        if not self.database_url:
            raise RuntimeError("CHORUS_DATABASE_URL is not set (the CLI starts an embedded PostgreSQL when it is unset)")
        return to_asyncpg(self.database_url)

    def app_url(self) -> str:
        if self.app_database_url:
            return to_asyncpg(self.app_database_url)
        # Same server and database, as the non-owner application role.
        return make_url(self.owner_url()).set(username=APP_DB_ROLE, password=None).render_as_string(hide_password=False)

    def broker_database_url(self) -> str:
        """libpq URL of the PostgreSQL broker: CHORUS_BROKER_URL, else the app's database as
        the app role (the queue's schema is created by `chorus db upgrade`)."""
        if self.broker_url:
            return self.broker_url
        return make_url(self.app_url()).set(drivername="postgresql").render_as_string(hide_password=False)

    def vault(self):  # noqa: ANN201 - domain.core.crypto.Vault, imported lazily
        from domain.core.crypto import Vault

        if not self.encryption_keys:
            raise RuntimeError("CHORUS_ENCRYPTION_KEYS is not set")
        return Vault.from_setting(self.encryption_keys)

    def media_root(self) -> Path:
        return self.media_dir or self.data_dir / "media"

    def media_incoming_dir(self) -> Path:
        """Uploads land here while they stream in, before they are checked and stored."""
        return self.media_root() / ".incoming"

    def jwt_secret(self) -> str:
        if self.secret_key:
            return self.secret_key
        raise RuntimeError("CHORUS_SECRET_KEY is not set")


NETWORKS = ("x", "facebook", "instagram", "tiktok", "youtube", "linkedin", "threads", "pinterest")


def _network_apps() -> tuple[tuple[str, str, str], ...]:
    apps = []
    for network in NETWORKS:
        client_id = _env(f"{network.upper()}_CLIENT_ID")
        secret = _env(f"{network.upper()}_CLIENT_SECRET")
        if client_id and secret:
            apps.append((network, client_id, secret))
    return tuple(apps)


def _stripe_prices() -> tuple[tuple[str, str], ...]:
    from domain.billing.plans import PLAN_KEYS

    return tuple((key, price) for key in PLAN_KEYS if (price := _env(f"STRIPE_PRICE_{key.upper()}")))


def sandbox_app(network: str) -> tuple[str, str]:
    """The app the network sandbox knows by default."""
    return f"chorus-sandbox-{network}", f"sandbox-secret-{network}"


def to_asyncpg(url: str) -> str:
    parsed = make_url(url)
    if parsed.drivername in {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}:
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
