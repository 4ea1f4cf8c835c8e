import pytest

from domain.core.crypto import Vault, VaultError, key_id, new_key


def test_round_trip_and_key_id_prefix():
    key = new_key()
    vault = Vault((key,))
    secret = "EAAB-page-token-1234567890"
    sealed = vault.encrypt(secret)
    assert sealed.startswith(key_id(key) + ":") and secret not in sealed
    assert vault.decrypt(sealed) == secret
    assert vault.encrypt(secret) != sealed  # Fernet is randomised


def test_rotation_keeps_old_secrets_readable_and_moves_them_to_the_new_key():
    old, new = new_key(), new_key()
    before = Vault((old,))
    sealed = before.encrypt("refresh-token")
    after = Vault((new, old))  # newest first
    assert after.decrypt(sealed) == "refresh-token"
    assert not after.is_current(sealed)
    rotated = after.rotate(sealed)
    assert after.is_current(rotated) and after.decrypt(rotated) == "refresh-token"
    assert after.rotate(rotated) == rotated
    with pytest.raises(VaultError) as err:
        Vault((new_key(),)).decrypt(sealed)
    assert "refresh-token" not in str(err.value)


def test_unprefixed_or_unknown_key_id_falls_back_to_every_key():
    key = new_key()
    vault = Vault((key,))
    bare = vault.encrypt("s").partition(":")[2]
    assert vault.decrypt("deadbeef:" + bare) == "s"


def test_from_setting_and_empty():
    a, b = new_key(), new_key()
    assert Vault.from_setting(f" {a} , {b} ").keys == (a, b)
    with pytest.raises(ValueError):
        Vault(())
