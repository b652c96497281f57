"""Encryption at rest and keyed hashes for personal data.

Message bodies, channel addresses and locations are stored encrypted with
Fernet (``MultiFernet``: the first key encrypts, every key decrypts, so keys
can be rotated). Lookups by channel address use a keyed HMAC so that the
database never holds a phone number or chat id in clear.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet

from bot.settings import get_settings


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def encrypt(plain: str) -> str:
    """Encrypts text with the current key."""
    return _fernet(get_settings().secret_keys).encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypts text encrypted with any configured key."""
    return _fernet(get_settings().secret_keys).decrypt(token.encode()).decode()


def keyed_hash(value: str) -> str:
    """A stable, keyed, one-way hash for lookups (HMAC-SHA256, hex)."""
    key = get_settings().hash_key.encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def previous_keyed_hashes(value: str) -> list[str]:
    """``value``'s hashes under the hash keys used before the current one (rotation)."""
    return [
        hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()
        for key in get_settings().previous_hash_keys
    ]
