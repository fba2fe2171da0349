"""Payload encryption: AES-256-GCM with key ids, so personal data is ciphertext in Temporal.

Every payload (workflow input with contacts and feedback, activity arguments, results) is
encrypted with the current key before it leaves the process; each carries the id of its key, so a
rotation only adds a key: new payloads use the new one, old histories still decrypt with the old.
Keys come from ``REFUNDS_ENCRYPTION_KEYS`` as ``id:base64-of-32-bytes`` pairs, comma separated.

Where keys are set, a payload that arrives in plain text is refused: whoever reaches Temporal
without the key cannot hand a worker an input it believes. It decodes to ``REFUSED_PLAINTEXT``,
which no model of the refund accepts but an action refused for it: a signal is audited as
refused, an update is refused and an activity fails, instead of the payload being read. Only the
Web UI's codec endpoint shows plain payloads as they are.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, PayloadCodec

from converter import DATA_CONVERTER
from domain.values import PLAINTEXT_REFUSED, UNREADABLE

ENCODING = b"binary/encrypted"
REFUSED_PLAINTEXT = Payload(
    metadata={"encoding": b"json/plain"},
    data=json.dumps({UNREADABLE: PLAINTEXT_REFUSED}).encode(),
)
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12


class EncryptionKeyError(ValueError):
    """A key is malformed, or a payload names a key this process does not have."""


def parse_keys(spec: str) -> dict[str, bytes]:
    """``id:base64key,id2:base64key2`` into a mapping; every key must be 32 bytes."""
    keys: dict[str, bytes] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        key_id, sep, encoded = item.partition(":")
        if not sep or not key_id:
            raise EncryptionKeyError("each encryption key is ID:BASE64")
        try:
            key = base64.b64decode(encoded, validate=True)
        except ValueError as err:
            raise EncryptionKeyError(f"encryption key {key_id!r} is not base64") from err
        if len(key) != 32:
            raise EncryptionKeyError(f"encryption key {key_id!r} must be 32 bytes (AES-256)")
        keys[key_id] = key
    return keys


def new_key() -> str:
    """A fresh random key, base64, for ``REFUNDS_ENCRYPTION_KEYS``."""
    return base64.b64encode(os.urandom(32)).decode()


class EncryptionCodec(PayloadCodec):
    def __init__(
        self, keys: Mapping[str, bytes], current: str, *, refuse_plaintext: bool = True
    ) -> None:
        if current not in keys:
            raise EncryptionKeyError(
                f"the current encryption key {current!r} is not among the keys"
            )
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._current = current
        self.refuse_plaintext = refuse_plaintext

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self._current]
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), self._current.encode())
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID: self._current.encode()},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(REFUSED_PLAINTEXT if self.refuse_plaintext else payload)
                continue
            key_id = payload.metadata.get(KEY_ID, b"").decode()
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise EncryptionKeyError(f"no encryption key {key_id!r} to decrypt this payload")
            nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
            try:
                plain = cipher.decrypt(nonce, sealed, key_id.encode())
            except InvalidTag as err:
                raise EncryptionKeyError(
                    "a payload failed authentication: tampered or wrong key"
                ) from err
            decoded.append(Payload.FromString(plain))
        return decoded


def codec_from(
    keys_spec: str, current: str | None, *, refuse_plaintext: bool = True
) -> EncryptionCodec | None:
    keys = parse_keys(keys_spec)
    if not keys:
        return None
    return EncryptionCodec(keys, current or next(iter(keys)), refuse_plaintext=refuse_plaintext)


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic data converter, encrypting when a codec is configured."""
    if codec is None:
        return DATA_CONVERTER
    return dataclasses.replace(DATA_CONVERTER, payload_codec=codec)
