"""Signed actions: a person's Ed25519 signature over what they do to one refund.

The signed message names the refund, the action, the actor, the action's text and when it was
signed, so a signature cannot be moved to another refund, action or wording, and goes stale after
``FRESH_FOR``. Checking is a pure function of its inputs (the directory, the refund's clock, the
signatures already used), so a workflow can run it deterministically.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import AwareDatetime, BaseModel, Field

FRESH_FOR = timedelta(minutes=10)
CLOCK_SKEW = timedelta(minutes=1)
"""A signature may be dated this far after the refund's clock (the signer's clock runs ahead)."""
PUBLIC_KEY_CHARS = 44
SIGNATURE_CHARS = 88


class Role(StrEnum):
    CUSTOMER = "customer"
    REVIEWER = "reviewer"
    OPERATOR = "operator"


class Person(BaseModel):
    """One entry of the people directory: who, in which role, with which public key."""

    person_id: str = Field(max_length=64)
    role: Role
    public_key: str = Field(min_length=PUBLIC_KEY_CHARS, max_length=PUBLIC_KEY_CHARS)


class ActionSignature(BaseModel):
    """What a signer adds to an action: when they signed it, and the signature (base64)."""

    signed_at: AwareDatetime
    value: str = Field(max_length=SIGNATURE_CHARS)


class SignedAction(BaseModel):
    """An accepted action exactly as its sender signed it, kept as evidence for the system of
    record (a reviewer's approval, an operator's resolve)."""

    actor: str = Field(max_length=64)
    text: str = Field(default="", max_length=2000)
    signature: ActionSignature


def message(refund_id: str, action: str, actor: str, text: str, signed_at: datetime) -> bytes:
    """The exact bytes signed for one action."""
    fields = ["refunds-action-v1", refund_id, action, actor, text, signed_at.isoformat()]
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def sign(
    key: Ed25519PrivateKey,
    refund_id: str,
    action: str,
    actor: str,
    text: str,
    signed_at: datetime,
) -> ActionSignature:
    value = key.sign(message(refund_id, action, actor, text, signed_at))
    return ActionSignature(signed_at=signed_at, value=base64.b64encode(value).decode())


def signature_bytes(signature: ActionSignature) -> bytes | None:
    """The signature's bytes, if ``value`` is their one canonical base64 spelling."""
    try:
        raw = base64.b64decode(signature.value, validate=True)
    except ValueError:
        return None
    return raw if base64.b64encode(raw).decode() == signature.value else None


def fingerprint(signature: ActionSignature) -> str:
    """A short digest of one signature's bytes, to refuse it the second time it is used."""
    raw = signature_bytes(signature) or signature.value.encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def signer_problem(directory: Mapping[str, Person], role: Role | None, actor: str) -> str | None:
    """Why ``actor`` cannot sign for ``role`` in ``directory`` (``None``: any role), or ``None``."""
    person = directory.get(actor)
    if person is None:
        return f"{actor} is not in the people directory"
    if role is not None and person.role is not role:
        article = "an" if role.value[0] in "aeiou" else "a"
        return f"{actor} is not {article} {role.value} in the people directory"
    return None


def proves(
    person: Person,
    refund_id: str,
    action: str,
    actor: str,
    text: str,
    signature: ActionSignature,
) -> bool:
    """Whether ``signature`` is ``person``'s over exactly this action (its bytes canonical)."""
    raw = signature_bytes(signature)
    if raw is None:
        return False
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(person.public_key))
        public.verify(raw, message(refund_id, action, actor, text, signature.signed_at))
    except (InvalidSignature, ValueError):
        return False
    return True


def signature_problem(
    directory: Mapping[str, Person],
    role: Role | None,
    refund_id: str,
    action: str,
    actor: str,
    text: str,
    signature: ActionSignature | None,
    now: datetime,
    used: Collection[str],
    not_before: datetime,
) -> str | None:
    """Why this signed action must be refused, or ``None`` when the signature proves the actor
    (``role``: the role the action needs; ``None``: anyone in the directory, in any role;
    ``not_before``: when the request acted on was submitted)."""
    if signature is None:
        return f"the action is not signed: `refunds {action}` signs it with {actor}'s key"
    problem = signer_problem(directory, role, actor)
    if problem is not None:
        return problem
    signed_at = signature.signed_at.astimezone(UTC)
    if signed_at < now - FRESH_FOR or signed_at > now + CLOCK_SKEW:
        return (
            f"the signature is stale: signed {signed_at:%Y-%m-%d %H:%M:%S} UTC, "
            f"accepted for {int(FRESH_FOR.total_seconds() // 60)} minutes"
        )
    if signed_at < not_before - CLOCK_SKEW:
        # A refund id is reused by a later request for the same certificate: an action signed
        # for the earlier one must not decide it.
        return "the signature was made before this request was submitted"
    mismatch = f"the signature does not match {actor}'s key for this action"
    if signature_bytes(signature) is None:
        return mismatch
    if fingerprint(signature) in used:
        return "this signed action was already used"
    if not proves(directory[actor], refund_id, action, actor, text, signature):
        return mismatch
    return None
