"""Alembic environment: runs as the owner role over asyncpg. Never imports app models
except for autogenerate (`target_metadata`), which is only read when generating."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config


def _target_metadata():
    if config.attributes.get("autogenerate"):
        from domain.models import metadata

        return metadata
    return None


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=_target_metadata(), compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _main() -> None:
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"))
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_main())


run()
