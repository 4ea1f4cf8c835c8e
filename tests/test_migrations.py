"""The migrations build exactly the schema the models describe, and they go both ways."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from domain.models import metadata


def _diff(sync_conn):
    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
    return compare_metadata(context, metadata)


async def test_models_match_migrations(owner_engine):
    async with owner_engine.connect() as conn:
        diff = await conn.run_sync(_diff)
    assert diff == [], f"models and migrations differ; write a migration: {diff}"


def test_downgrade_and_upgrade_again(database_url):
    """Run in a scratch database so the shared one keeps its data."""
    import secrets

    from sqlalchemy.engine import make_url

    from domain.core import migrate
    from tests.conftest import run_admin_sql

    name = f"chorus_mig_{secrets.token_hex(4)}"
    run_admin_sql(database_url, f'CREATE DATABASE "{name}"')
    try:
        url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
        migrate.upgrade(url)
        migrate.downgrade(url, "base")
        migrate.upgrade(url)
    finally:
        run_admin_sql(database_url, f'DROP DATABASE "{name}" WITH (FORCE)')
