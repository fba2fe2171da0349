"""Signed actions in the tests: each test person's key is derived from their id, the harness's
people directory holds the cast the tests use, and the harness's client signs every action a test
sends as its named sender, as ``refunds approve`` does. A test that means to send an unsigned or
forged action uses the environment's own client, which signs nothing."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    SignalWorkflowInput,
    StartWorkflowInput,
    StartWorkflowUpdateInput,
    WorkflowHandle,
    WorkflowUpdateHandle,
)

from domain.signatures import Role, public_key_text
from starter.signing import ActionT, request_signed_with, signed_with
from storage.people import PeopleDirectory
from workflows.contract import (
    ActionInput,
    ApproveInput,
    CancelInput,
    OperatorInput,
    RefundRequest,
    RejectInput,
    ReviewAction,
    signed_fields,
)

CAST: Mapping[Role, Sequence[str]] = {
    Role.REVIEWER: ("rev-1", "rev-2"),
    Role.OPERATOR: ("operator-1",),
    Role.CUSTOMER: ("user-1", "user-2", "user-3", "someone-else", "intruder"),
}
MODEL_FOR: Mapping[ReviewAction, type[ActionInput]] = {
    ReviewAction.APPROVE: ApproveInput,
    ReviewAction.REJECT: RejectInput,
    ReviewAction.CANCEL: CancelInput,
    ReviewAction.RETRY: OperatorInput,
    ReviewAction.RESOLVE: OperatorInput,
}
ACTION_FOR = {
    "approve_request": ReviewAction.APPROVE,
    "reject_request": ReviewAction.REJECT,
    "cancel_request": ReviewAction.CANCEL,
    "retry_payments": ReviewAction.RETRY,
    "resolve_manually": ReviewAction.RESOLVE,
    "approve": ReviewAction.APPROVE,
    "reject": ReviewAction.REJECT,
    "cancel": ReviewAction.CANCEL,
}


def key_of(person_id: str) -> Ed25519PrivateKey:
    seed = hashlib.sha256(f"refunds-test-person:{person_id}".encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def enrol(engine: Engine, people: Mapping[Role, Iterable[str]]) -> None:
    """Put these people in the directory with their test keys (those already there stay)."""
    directory = PeopleDirectory(engine)
    present = directory.active()
    for role, ids in people.items():
        for person_id in ids:
            if person_id not in present:
                directory.add(person_id, role, public_key_text(key_of(person_id)))


def signed_as_sent(refund_id: str, action: ReviewAction, message: ActionT, at: datetime) -> ActionT:
    """``message`` signed by its sender's test key."""
    return signed_with(key_of(signed_fields(message)[0]), refund_id, action, message, at)


def signed_request(
    refund_id: str, request: RefundRequest, at: datetime | None = None
) -> RefundRequest:
    """``request`` signed by its requester's test key, as ``refunds submit`` signs it."""
    return request_signed_with(
        key_of(request.requester), refund_id, request, at or datetime.now(UTC)
    )


class SigningInterceptor(Interceptor):
    """Signs unsigned requests and actions with the sender's test key, dated by the refund's
    clock: ``ahead[refund_id]`` is how far the tests moved that refund's time forward."""

    def __init__(self, ahead: dict[str, timedelta]) -> None:
        self.ahead = ahead

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Signing(next, self)


class _Signing(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, owner: SigningInterceptor) -> None:
        super().__init__(next)
        self.owner = owner

    def _signed(self, refund_id: str, name: str, args: Sequence[Any]) -> Sequence[Any]:
        action = ACTION_FOR.get(name)
        if action is None or len(args) != 1:
            return args
        [message] = args
        if isinstance(message, dict) and "signature" not in message:
            try:  # a plain-JSON action, as the Web UI sends: signed as its sender would
                message = MODEL_FOR[action].model_validate(message)
            except ValueError:
                return args
        if not isinstance(message, ActionInput) or message.signature is not None:
            return args
        at = datetime.now(UTC) + self.owner.ahead.get(refund_id, timedelta(0))
        return [signed_as_sent(refund_id, action, message, at)]

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
        args = list(input.args)
        if len(args) == 1 and isinstance(args[0], RefundRequest) and args[0].signature is None:
            args[0] = signed_request(input.id, args[0])
            input.args = args
        return await super().start_workflow(input)

    async def start_workflow_update(
        self, input: StartWorkflowUpdateInput
    ) -> WorkflowUpdateHandle[Any]:
        input.args = self._signed(input.id, input.update, input.args)
        return await super().start_workflow_update(input)

    async def signal_workflow(self, input: SignalWorkflowInput) -> None:
        input.args = self._signed(input.id, input.signal, input.args)
        await super().signal_workflow(input)


def signing_client(client: Client, ahead: dict[str, timedelta]) -> Client:
    """``client`` (same connection) whose actions are signed as their senders."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], SigningInterceptor(ahead)]
    return Client(**config)
