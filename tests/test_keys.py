"""`chorus keys rotate` re-encrypts every secret at rest under the newest key."""

from __future__ import annotations

import uuid
from dataclasses import replace

from sqlalchemy import text

from domain.core.crypto import Vault, new_key
from domain.core.keys import ENCRYPTED_COLUMNS, rotate_all
from domain.models import metadata


def test_every_encrypted_column_is_rotated():
    declared = {(t.name, c.name) for t in metadata.tables.values() for c in t.columns if c.name.endswith("_enc")}
    rotated = {(model.__tablename__, column) for model, columns in ENCRYPTED_COLUMNS.items() for column in columns}
    assert declared == rotated


async def test_rotate_moves_every_secret_to_the_new_key(settings, owner_engine, tenant):
    old_vault = settings.vault()
    brand = await tenant.brand()
    secrets_in = {"access": f"at-{uuid.uuid4().hex}", "refresh": f"rt-{uuid.uuid4().hex}", "app": f"cs-{uuid.uuid4().hex}"}
    account_id, app_id = uuid.uuid4(), uuid.uuid4()
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO social_accounts (id, agency_id, brand_id, network, external_id, account_kind, handle, display_name,"
            " scopes, status, access_token_enc, refresh_token_enc, details, version, created_at, updated_at)"
            " VALUES (:id, :agency, :brand, 'x', '42', 'profile', 'sol', 'Sol', '{}', 'connected', :at, :rt, '{}', 1, now(), now())"),
            {"id": account_id, "agency": tenant.agency_id, "brand": brand["id"],
             "at": old_vault.encrypt(secrets_in["access"]), "rt": old_vault.encrypt(secrets_in["refresh"])})
        await conn.execute(text(
            "INSERT INTO network_apps (id, agency_id, network, client_id, client_secret_enc, created_at, updated_at)"
            " VALUES (:id, :agency, 'x', 'client', :cs, now(), now())"),
            {"id": app_id, "agency": tenant.agency_id, "cs": old_vault.encrypt(secrets_in["app"])})

    newer = replace(settings, encryption_keys=f"{new_key()},{settings.encryption_keys}")
    counts = await rotate_all(newer)
    assert counts["social_accounts.access_token_enc"] >= 1 and counts["network_apps.client_secret_enc"] >= 1
    new_vault: Vault = newer.vault()
    async with owner_engine.connect() as conn:
        at, rt = (await conn.execute(text(
            "SELECT access_token_enc, refresh_token_enc FROM social_accounts WHERE id = :id"), {"id": account_id})).one()
        cs = (await conn.execute(text("SELECT client_secret_enc FROM network_apps WHERE id = :id"), {"id": app_id})).scalar()
        dump = (await conn.execute(text(
            "SELECT string_agg(t::text, ' ') FROM (SELECT * FROM social_accounts UNION ALL SELECT * FROM social_accounts) t"))).scalar()
    for sealed, plain in [(at, secrets_in["access"]), (rt, secrets_in["refresh"]), (cs, secrets_in["app"])]:
        assert new_vault.is_current(sealed) and new_vault.decrypt(sealed) == plain
    assert all(v not in dump for v in secrets_in.values())
    # Running it again has nothing left to do for these rows, and the old key alone no longer opens them.
    again = await rotate_all(newer)
    assert again["social_accounts.access_token_enc"] == 0
    import pytest

    from domain.core.crypto import VaultError

    with pytest.raises(VaultError):
        Vault((settings.encryption_keys,)).decrypt(at)


def test_keys_new_prints_a_usable_key(capsys):
    from api.cli import main

    main(["keys", "new"])
    key = capsys.readouterr().out.strip()
    assert Vault((key,)).decrypt(Vault((key,)).encrypt("x")) == "x"


async def test_secrets_under_a_dropped_key_are_reported_not_fatal(settings, owner_engine, tenant):
    lost = Vault((new_key(),))
    async with owner_engine.begin() as conn:
        await conn.execute(text(
            "INSERT INTO network_apps (id, agency_id, network, client_id, client_secret_enc, created_at, updated_at)"
            " VALUES (:id, :agency, 'pinterest', 'client', :cs, now(), now())"),
            {"id": uuid.uuid4(), "agency": tenant.agency_id, "cs": lost.encrypt("gone")})
    counts = await rotate_all(replace(settings, encryption_keys=f"{new_key()},{settings.encryption_keys}"))
    assert counts["unreadable"] >= 1
