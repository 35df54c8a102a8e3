"""Encryption at rest: one MultiFernet column type, and keyed hashes (blind indexes) for lookups.

Names, phone numbers, chat ids, message text, answers and notes are stored only as Fernet tokens.
Phone numbers and chat ids are found by an HMAC of their normalised form, never by plaintext.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import date
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Text
from sqlalchemy.types import TypeDecorator


class FieldCipher:
    """Encrypts and decrypts fields with the configured keys (newest first) and computes indexes."""

    def __init__(self, keys: list[str], index_key: str | None = None):
        if not keys:
            raise ValueError("at least one Fernet key is needed")
        try:
            self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in keys])
        except (ValueError, TypeError) as error:
            raise ValueError(
                "FIELD_ENCRYPTION_KEYS must be comma-separated Fernet keys "
                "(32 url-safe base64-encoded bytes each)"
            ) from error
        if index_key:
            self._index_key = index_key.encode()
        else:
            # Derived from the oldest key, which stays listed until `keys rotate` has run and
            # the blind indexes no longer need it. Set BLIND_INDEX_KEY to decouple the two.
            self._index_key = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"reviewline blind index"
            ).derive(base64.urlsafe_b64decode(keys[-1].strip()))

    @classmethod
    def from_setting(cls, keys: str, index_key: str | None = None) -> FieldCipher:
        return cls([k for k in keys.split(",") if k.strip()], index_key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")

    def rotate(self, token: str) -> str:
        """The same plaintext re-encrypted under the newest key."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")

    def blind_index(self, value: str) -> str:
        """A keyed hash for equality lookups; reveals nothing without the key."""
        return hmac.new(self._index_key, value.encode("utf-8"), hashlib.sha256).hexdigest()


_cipher: FieldCipher | None = None


def configure(cipher: FieldCipher) -> None:
    """Install the cipher the column type and blind indexes use."""
    global _cipher
    _cipher = cipher


def cipher() -> FieldCipher:
    if _cipher is None:
        raise RuntimeError("field encryption is not configured; create the app first")
    return _cipher


def blind_index(value: str) -> str:
    return cipher().blind_index(value)


class Encrypted(TypeDecorator):
    """A column stored as a Fernet token. ``kind`` is ``text``, ``date`` or ``json``."""

    impl = Text
    cache_ok = True

    def __init__(self, kind: str = "text"):
        super().__init__()
        if kind not in {"text", "date", "json"}:
            raise ValueError(f"unknown encrypted kind {kind!r}")
        self.kind = kind

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if self.kind == "date":
            plaintext = value.isoformat()
        elif self.kind == "json":
            plaintext = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        else:
            plaintext = str(value)
        return cipher().encrypt(plaintext)

    def process_result_value(self, value: str | None, dialect: Any) -> Any:
        if value is None:
            return None
        try:
            plaintext = cipher().decrypt(value)
        except InvalidToken as error:
            raise RuntimeError(
                "a stored field cannot be decrypted with FIELD_ENCRYPTION_KEYS: is a key missing?"
            ) from error
        if self.kind == "date":
            return date.fromisoformat(plaintext)
        if self.kind == "json":
            return json.loads(plaintext)
        return plaintext
