"""Signing a person's action on this machine, with their key from ``REFUNDS_KEY_DIR``: what the
CLI (and every client of ``RefundClient``) sends is proven, not just named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.signatures import sign
from starter.people_keys import load_key
from workflows.contract import (
    SUBMIT,
    ActionInput,
    RefundRequest,
    ReviewAction,
    request_text,
    signed_fields,
)

ActionT = TypeVar("ActionT", bound=ActionInput)


def signed(key_dir: Path, refund_id: str, action: ReviewAction, message: ActionT) -> ActionT:
    """``message`` signed now by its sender's key (kept as is if it is signed already)."""
    if message.signature is not None:
        return message
    key = load_key(key_dir, signed_fields(message)[0])
    return signed_with(key, refund_id, action, message, datetime.now(UTC))


def signed_with(
    key: Ed25519PrivateKey, refund_id: str, action: ReviewAction, message: ActionT, at: datetime
) -> ActionT:
    """``message`` with ``key``'s signature over what it does to this refund, dated ``at``."""
    actor, text = signed_fields(message)
    signature = sign(key, refund_id, action.value, actor, text, at)
    return cast(ActionT, message.model_copy(update={"signature": signature}))


def signed_request(key_dir: Path, refund_id: str, request: RefundRequest) -> RefundRequest:
    """The customer's request signed now by the requester's key (kept as is if signed)."""
    if request.signature is not None:
        return request
    key = load_key(key_dir, request.requester)
    return request_signed_with(key, refund_id, request, datetime.now(UTC))


def request_signed_with(
    key: Ed25519PrivateKey, refund_id: str, request: RefundRequest, at: datetime
) -> RefundRequest:
    """``request`` with ``key``'s signature over it for this refund, dated ``at``."""
    signature = sign(key, refund_id, SUBMIT, request.requester, request_text(request), at)
    return request.model_copy(update={"signature": signature})
