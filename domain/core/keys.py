"""`chorus keys rotate`: every secret at rest re-encrypted under the newest vault key.

Runs as the owner role (CHORUS_DATABASE_URL), which must see every agency's rows: a
superuser or a role with BYPASSRLS. Each row is updated in its own short transaction and
only when it is not under the newest key yet, so the command can be stopped and rerun.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text, update

from domain.core.crypto import VaultError
from domain.core.db import create_engine
from domain.core.settings import Settings
from domain.networks.models import NetworkApp, OAuthLink, SocialAccount
from domain.webhooks.models import WebhookEndpoint

# Every encrypted column in the schema. A new one must be listed here (a test checks).
ENCRYPTED_COLUMNS: dict[Any, tuple[str, ...]] = {
    SocialAccount: ("access_token_enc", "refresh_token_enc"),
    OAuthLink: ("code_verifier_enc", "grant_enc"),
    NetworkApp: ("client_secret_enc",),
    WebhookEndpoint: ("secret_enc",),
}


class RotationNotAllowedError(RuntimeError):
    pass


async def rotate_all(settings: Settings) -> dict[str, int]:
    vault = settings.vault()
    engine = create_engine(settings.owner_url(), pool_size=1)
    counts: dict[str, int] = {}
    try:
        async with engine.connect() as conn:
            sees_all = (
                await conn.execute(
                    text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
                )
            ).scalar()
            await conn.rollback()
        if not sees_all:
            raise RotationNotAllowedError(
                "key rotation must run as a role that bypasses row-level security (superuser or BYPASSRLS)"
            )
        for model, columns in ENCRYPTED_COLUMNS.items():
            for column in columns:
                attr = getattr(model, column)
                name = f"{model.__tablename__}.{column}"
                counts[name] = 0
                async with engine.connect() as conn:
                    rows = (await conn.execute(select(model.id, attr).where(attr.is_not(None)))).all()
                    await conn.rollback()
                for row_id, sealed in rows:
                    if vault.is_current(sealed):
                        continue
                    try:
                        rotated = vault.rotate(sealed)
                    except VaultError:
                        # Made with a key no longer configured: say so, rotate the rest.
                        counts["unreadable"] = counts.get("unreadable", 0) + 1
                        continue
                    async with engine.begin() as conn:
                        result = await conn.execute(
                            update(model)
                            .where(model.id == row_id, attr == sealed)  # unchanged since we read it
                            .values({column: rotated})
                            .execution_options(synchronize_session=False)
                        )
                        counts[name] += result.rowcount
    finally:
        await engine.dispose()
    return counts
