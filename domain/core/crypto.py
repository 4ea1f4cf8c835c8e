"""The token vault: secrets encrypted at rest with MultiFernet.

Keys come newest first. Each ciphertext starts with the id of the key that made it
(`<key id>:<fernet token>`), so decryption goes straight to the right key, any listed key
still decrypts, and `chorus keys rotate` can find what is not under the newest key yet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultError(Exception):
    """A ciphertext that no configured key opens. Its text never contains the secret."""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


def new_key() -> str:
    return Fernet.generate_key().decode()


@dataclass(frozen=True)
class Vault:
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("the vault needs at least one key")
        fernets = [Fernet(k.encode()) for k in self.keys]
        object.__setattr__(self, "_by_id", {key_id(k): f for k, f in zip(self.keys, fernets, strict=True)})
        object.__setattr__(self, "_multi", MultiFernet(fernets))
        object.__setattr__(self, "current_id", key_id(self.keys[0]))

    @classmethod
    def from_setting(cls, value: str) -> Vault:
        return cls(tuple(k.strip() for k in value.split(",") if k.strip()))

    def encrypt(self, plaintext: str) -> str:
        token = self._by_id[self.current_id].encrypt(plaintext.encode())  # type: ignore[attr-defined]
        return f"{self.current_id}:{token.decode()}"

    def decrypt(self, value: str) -> str:
        kid, _, token = value.partition(":")
        fernet = self._by_id.get(kid)  # type: ignore[attr-defined]
        try:
            if fernet is not None:
                return fernet.decrypt(token.encode()).decode()
            return self._multi.decrypt(token.encode()).decode()  # type: ignore[attr-defined]
        except InvalidToken:
            raise VaultError(f"no configured key opens a secret made with key {kid!r}") from None

    def is_current(self, value: str) -> bool:
        return value.partition(":")[0] == self.current_id

    def rotate(self, value: str) -> str:
        """The same secret under the newest key."""
        return value if self.is_current(value) else self.encrypt(self.decrypt(value))
