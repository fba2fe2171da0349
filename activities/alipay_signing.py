"""Alipay OpenAPI RSA2 signatures, shared by the Alipay channel and the local Alipay simulator.

A request is signed over its sign content (every parameter but ``sign``, empty ones dropped, sorted
by key, ``k=v`` joined by ``&``, nothing URL-encoded); a response over the exact characters of its
``<method>_response`` (or ``error_response``) value as sent, never over a re-serialisation.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from activities.secret_files import SecretFileError, read_secret

MIN_KEY_BITS = 2048
MAX_SIGN_CHARS = 1024
"""A base64 RSA signature of a 2048-bit key is 344 characters; 4096-bit keys stay far below."""
ERROR_RESPONSE = "error_response"


class KeyFormatError(ValueError):
    """A key that cannot be used: the message is one line and holds nothing of the key."""


class ResponseFormatError(ValueError):
    """A response body that is not one JSON object with exactly one answer and its ``sign``."""


def sign_content(params: Mapping[str, str | None]) -> str:
    """The text an OpenAPI request's ``sign`` is computed over."""
    kept = sorted((k, v) for k, v in params.items() if k != "sign" and v not in (None, ""))
    return "&".join(f"{k}={v}" for k, v in kept)


def sign(content: str, key: rsa.RSAPrivateKey) -> str:
    """SHA256withRSA (PKCS#1 v1.5) of ``content``'s UTF-8 bytes, in base64."""
    signature = key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())
    return base64.b64encode(signature).decode("ascii")


def verify(content: str, signature: str, key: rsa.RSAPublicKey) -> bool:
    """Whether ``signature`` (base64) is ``key``'s RSA2 signature of ``content``."""
    if not signature or len(signature) > MAX_SIGN_CHARS:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, content.encode(), padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True


def sign_params(params: Mapping[str, str], key: rsa.RSAPrivateKey) -> dict[str, str]:
    """``params`` with their ``sign`` added."""
    return {**params, "sign": sign(sign_content(params), key)}


def response_name(method: str) -> str:
    """``alipay.trade.refund`` answers under ``alipay_trade_refund_response``."""
    return method.replace(".", "_") + "_response"


def signed_body(name: str, answer: Mapping[str, Any], key: rsa.RSAPrivateKey) -> str:
    """A response body as Alipay sends it: the answer's compact JSON, and its signature over
    exactly those characters."""
    text = json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
    return f'{{"{name}":{text},"sign":"{sign(text, key)}"}}'


@dataclass(frozen=True)
class RawAnswer:
    """A response's answer as sent: its key, its exact JSON text, the parsed object, the sign."""

    name: str
    text: str
    answer: dict[str, Any]
    sign: str | None


def split_response(body: str, method: str) -> RawAnswer:
    """The answer to ``method`` (or the gateway's ``error_response``) in ``body``, with the exact
    raw text of its value. Raises ``ResponseFormatError`` on anything else."""
    decoder = json.JSONDecoder(parse_float=str, parse_int=str, parse_constant=_no_constant)
    members = _top_level_members(body, decoder)
    wanted = {response_name(method), ERROR_RESPONSE}
    found = [(k, start, end) for k, start, end in members if k in wanted]
    names = [k for k, _, _ in members]
    if len(found) != 1 or len(set(names)) != len(names):
        raise ResponseFormatError("expected exactly one answer and no repeated member")
    name, start, end = found[0]
    text = body[start:end]
    answer, _ = decoder.raw_decode(text)
    if not isinstance(answer, dict):
        raise ResponseFormatError(f"{name} is not an object")
    signs = [body[s:e] for k, s, e in members if k == "sign"]
    signature = json.loads(signs[0]) if signs else None
    if signature is not None and not isinstance(signature, str):
        raise ResponseFormatError("sign is not a string")
    return RawAnswer(name, text, answer, signature)


def _top_level_members(body: str, decoder: json.JSONDecoder) -> list[tuple[str, int, int]]:
    """Each member of the top-level object: its key and where its value's text starts and ends."""
    members: list[tuple[str, int, int]] = []
    pos = _skip(body, 0)
    if body[pos : pos + 1] != "{":
        raise ResponseFormatError("not a JSON object")
    pos = _skip(body, pos + 1)
    if body[pos : pos + 1] == "}":
        return members
    try:
        while True:
            key, pos = decoder.raw_decode(body, pos)
            pos = _skip(body, pos)
            if not isinstance(key, str) or body[pos : pos + 1] != ":":
                raise ResponseFormatError("malformed object member")
            start = _skip(body, pos + 1)
            _, end = decoder.raw_decode(body, start)
            members.append((key, start, end))
            pos = _skip(body, end)
            if body[pos : pos + 1] == "}":
                break
            if body[pos : pos + 1] != ",":
                raise ResponseFormatError("malformed object")
            pos = _skip(body, pos + 1)
    except (ValueError, RecursionError):
        raise ResponseFormatError("not valid JSON") from None
    if body[_skip(body, pos + 1) :]:
        raise ResponseFormatError("text after the JSON object")
    return members


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def load_private_key(data: bytes) -> rsa.RSAPrivateKey:
    """An RSA private key of at least 2048 bits from PEM (PKCS#1 or PKCS#8), or from the bare
    base64 DER that Alipay's key tool writes."""
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(_bare_der(data), password=None)
    except TypeError:
        raise KeyFormatError("is encrypted: give the key unencrypted, mode 0600") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFormatError("is not a PEM private key (PKCS#1 or PKCS#8)") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFormatError("is not an RSA private key")
    if key.key_size < MIN_KEY_BITS:
        raise KeyFormatError(f"is a {key.key_size}-bit key: RSA2 needs at least {MIN_KEY_BITS}")
    return key


def load_public_key(data: bytes) -> rsa.RSAPublicKey:
    """An RSA public key from PEM (SubjectPublicKeyInfo or PKCS#1), or bare base64 DER."""
    try:
        if b"-----BEGIN" in data:
            key = serialization.load_pem_public_key(data)
        else:
            key = serialization.load_der_public_key(_bare_der(data))
    except (ValueError, UnsupportedAlgorithm):
        raise KeyFormatError("is not a PEM public key (SubjectPublicKeyInfo or PKCS#1)") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyFormatError("is not an RSA public key")
    if key.key_size < MIN_KEY_BITS:
        raise KeyFormatError(f"is a {key.key_size}-bit key: RSA2 needs at least {MIN_KEY_BITS}")
    return key


def read_private_key(path: Path, what: str) -> rsa.RSAPrivateKey:
    """The private key in ``path`` (0600); a bad file is a one-line ``SecretFileError``."""
    try:
        return load_private_key(read_secret(path, what))
    except KeyFormatError as err:
        raise SecretFileError(f"{what}: {path} {err}") from None


def read_public_key(path: Path, what: str) -> rsa.RSAPublicKey:
    """The public key in ``path`` (0600, as every key file here); else ``SecretFileError``."""
    try:
        return load_public_key(read_secret(path, what))
    except KeyFormatError as err:
        raise SecretFileError(f"{what}: {path} {err}") from None


def _bare_der(data: bytes) -> bytes:
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except binascii.Error:
        raise ValueError("not base64") from None


def new_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=MIN_KEY_BITS)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
