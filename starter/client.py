"""Talking to Temporal for the CLI: start refunds, act on them, read them back.

Every failure a user can cause or fix (no server, no worker, unknown refund, refused action)
becomes a ``UserError`` with one readable line.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from codec import data_converter
from settings import Settings
from starter.errors import UserError
from starter.local_keys import encryption_codec
from starter.not_ready import is_not_ready, not_ready_message, when_ready
from starter.review_pages import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    Cursor,
    PendingReview,
    ReviewPage,
    in_review,
    review_page,
)
from starter.signing import signed, signed_request
from workflows.contract import (
    ActionResult,
    ApproveInput,
    CancelInput,
    OperatorInput,
    RefundReason,
    RefundRequest,
    RefundState,
    RefundStatus,
    RejectInput,
    ReviewAction,
)
from workflows.refund import RefundWorkflow
from workflows.search_attributes import REFUND_STATE

RPC_TIMEOUT = timedelta(seconds=15)
RefundHandle = WorkflowHandle[RefundWorkflow, RefundStatus]
SETTLED_STATES = frozenset(
    {
        RefundState.VALIDATING_APPLICATION,
        RefundState.REFUNDED,
        RefundState.REJECTED,
        RefundState.CANCELLED,
        RefundState.NEEDS_ATTENTION,
    }
)
"""States in which a refund waits for a person or is done: ``status --wait`` stops there."""

NO_WORKER = "no worker answered; is `refunds up` or `refunds worker` running?"


def _read(path: str | None) -> bytes | None:
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}") from None


def tls_config(settings: Settings) -> TLSConfig | bool:
    """TLS from a CA and a client certificate and key (mTLS), or plain TLS for an API key."""
    if settings.tls_ca or settings.tls_cert or settings.tls_key:
        if bool(settings.tls_cert) != bool(settings.tls_key):
            raise UserError("REFUNDS_TLS_CERT and REFUNDS_TLS_KEY go together")
        return TLSConfig(
            server_root_ca_cert=_read(settings.tls_ca),
            client_cert=_read(settings.tls_cert),
            client_private_key=_read(settings.tls_key),
        )
    return settings.api_key is not None


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client with encryption, TLS and API key as configured."""
    codec = encryption_codec(settings)
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.namespace,
            data_converter=data_converter(codec),
            tls=tls_config(settings),
            api_key=settings.api_key,
            runtime=runtime,
        )
    except RuntimeError as err:
        raise UserError(
            f"cannot reach Temporal at {settings.temporal_address} ({_first_line(err)}); "
            "start it with `refunds up`"
        ) from None


def refund_id_for(certificate_id: str) -> str:
    """The workflow id of a certificate's refund: one live refund per certificate."""
    return f"refund-{certificate_id}"


@dataclass
class RefundClient:
    client: Client
    settings: Settings

    async def submit(self, request: RefundRequest) -> WorkflowHandle[Any, Any]:
        """Start the refund of ``request``, signed with the requester's key."""
        refund_id = refund_id_for(request.certificate_id)
        request = signed_request(self.settings.key_dir, refund_id, request)
        try:
            return await self.client.start_workflow(
                RefundWorkflow.run,
                request,
                id=refund_id,
                task_queue=self.settings.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                static_summary=f"Refund of certificate {request.certificate_id}",
                static_details=f"reason: {request.reason.value}",
            )
        except WorkflowAlreadyStartedError:
            raise UserError(
                f"certificate {request.certificate_id} already has a refund in progress: "
                f"{refund_id}"
            ) from None

    async def approve(self, refund_id: str, approval: ApproveInput) -> ActionResult:
        approval = signed(self.settings.key_dir, refund_id, ReviewAction.APPROVE, approval)
        handle = await self._running(refund_id)
        return await self._act(
            refund_id,
            lambda: handle.execute_update(
                RefundWorkflow.approve_request, approval, rpc_timeout=RPC_TIMEOUT
            ),
        )

    async def reject(self, refund_id: str, rejection: RejectInput) -> ActionResult:
        rejection = signed(self.settings.key_dir, refund_id, ReviewAction.REJECT, rejection)
        handle = await self._running(refund_id)
        return await self._act(
            refund_id,
            lambda: handle.execute_update(
                RefundWorkflow.reject_request, rejection, rpc_timeout=RPC_TIMEOUT
            ),
        )

    async def cancel(self, refund_id: str, cancellation: CancelInput) -> ActionResult:
        cancellation = signed(self.settings.key_dir, refund_id, ReviewAction.CANCEL, cancellation)
        handle = await self._running(refund_id)
        return await self._act(
            refund_id,
            lambda: handle.execute_update(
                RefundWorkflow.cancel_request, cancellation, rpc_timeout=RPC_TIMEOUT
            ),
        )

    async def retry(self, refund_id: str, action: OperatorInput) -> ActionResult:
        action = signed(self.settings.key_dir, refund_id, ReviewAction.RETRY, action)
        handle = await self._running(refund_id)
        return await self._act(
            refund_id,
            lambda: handle.execute_update(
                RefundWorkflow.retry_payments, action, rpc_timeout=RPC_TIMEOUT
            ),
        )

    async def resolve(self, refund_id: str, action: OperatorInput) -> ActionResult:
        action = signed(self.settings.key_dir, refund_id, ReviewAction.RESOLVE, action)
        handle = await self._running(refund_id)
        return await self._act(
            refund_id,
            lambda: handle.execute_update(
                RefundWorkflow.resolve_manually, action, rpc_timeout=RPC_TIMEOUT
            ),
        )

    async def _act(
        self, refund_id: str, update: Callable[[], Awaitable[ActionResult]]
    ) -> ActionResult:
        """An update's result (sent again while the refund is not ready), or its refusal as one
        line."""
        try:
            return await when_ready(update)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            message = getattr(cause, "message", None) or str(cause)
            raise UserError(f"refused: {message}") from None
        except RPCError as err:
            raise UserError(self._rpc_message(refund_id, err)) from None

    async def status(self, refund_id: str) -> RefundStatus:
        handle: RefundHandle = self.client.get_workflow_handle_for(RefundWorkflow.run, refund_id)
        description = await self._describe(handle)
        if description.status is WorkflowExecutionStatus.COMPLETED:
            return await handle.result()
        if description.status is not WorkflowExecutionStatus.RUNNING:
            state = description.status.name.lower() if description.status else "unknown"
            raise UserError(
                f"refund {refund_id} ended without a result ({state}): `refunds ledger` shows "
                "what it left behind and `refunds repair CERTIFICATE` settles it"
            )
        try:
            return await handle.query(RefundWorkflow.status, rpc_timeout=RPC_TIMEOUT)
        except WorkflowQueryFailedError as err:
            raise UserError(f"status of {refund_id} unavailable: {err}") from None
        except RPCError as err:
            raise UserError(self._rpc_message(refund_id, err)) from None

    async def wait_until_settled(self, refund_id: str, timeout: float) -> RefundStatus:
        async def poll() -> RefundStatus:
            while True:
                status = await self.status(refund_id)
                if status.state in SETTLED_STATES and not status.decision_pending:
                    return status
                await asyncio.sleep(0.1)

        try:
            return await asyncio.wait_for(poll(), timeout)
        except TimeoutError:
            raise UserError(f"{refund_id} did not settle within {timeout:g} s") from None

    async def review_page(
        self, cursor: Cursor, *, limit: int = PAGE_SIZE, reason: RefundReason | None = None
    ) -> ReviewPage:
        """One page of the review queue, from visibility alone (``starter.review_pages``)."""
        try:
            return await review_page(self.client, cursor, limit=limit, reason=reason)
        except RPCError as err:
            raise UserError(f"Temporal refused the request: {_first_line(err)}") from None

    async def every_review(
        self, cursor: Cursor, *, limit: int = MAX_PAGE_SIZE, reason: RefundReason | None = None
    ) -> list[PendingReview]:
        """Every page of the review queue from ``cursor`` on."""
        reviews: list[PendingReview] = []
        at: Cursor | None = cursor
        while at is not None:
            page = await self.review_page(at, limit=limit, reason=reason)
            reviews += page.reviews
            at = Cursor.decode(page.after) if page.after else None
        return reviews

    async def in_review(self) -> int:
        try:
            return await in_review(self.client)
        except RPCError as err:
            raise UserError(f"Temporal refused the request: {_first_line(err)}") from None

    async def needing_attention(self, limit: int = 200) -> list[RefundStatus]:
        """Running refunds waiting for an operator, as their status queries answer."""
        query = (
            "WorkflowType = 'RefundWorkflow' AND ExecutionStatus = 'Running' "
            f"AND {REFUND_STATE.name} = '{RefundState.NEEDS_ATTENTION.value}'"
        )
        found: list[RefundStatus] = []
        async for execution in self.client.list_workflows(query, limit=limit):
            try:
                found.append(await self.status(execution.id))
            except UserError:
                continue  # it finished since the listing
        return found

    async def announce_people_change(self) -> Announcement:
        """Tell every running refund the people directory changed.

        The signal carries nothing: each refund reads the directory again itself."""
        query = "WorkflowType = 'RefundWorkflow' AND ExecutionStatus = 'Running'"
        try:
            ids = [execution.id async for execution in self.client.list_workflows(query)]
        except RPCError as err:
            raise UserError(f"Temporal refused the request: {_first_line(err)}") from None
        return await self._tell(ids, RefundWorkflow.people_changed)

    async def announce_calendar_change(self, refund_ids: list[str]) -> Announcement:
        """Tell these refunds the calendar changed: each counts its review deadline again."""
        return await self._tell(refund_ids, RefundWorkflow.calendar_changed)

    async def _tell(
        self, refund_ids: list[str], signal: Callable[[RefundWorkflow], Awaitable[None]]
    ) -> Announcement:
        limit = asyncio.Semaphore(16)

        async def tell(refund_id: str) -> bool:
            async with limit:
                handle: RefundHandle = self.client.get_workflow_handle_for(
                    RefundWorkflow.run, refund_id
                )
                await handle.signal(signal, rpc_timeout=RPC_TIMEOUT)
                return True

        results = await asyncio.gather(*map(tell, refund_ids), return_exceptions=True)
        finished = sum(
            1 for r in results if isinstance(r, RPCError) and r.status is RPCStatusCode.NOT_FOUND
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        return Announcement(told=results.count(True), failed=len(failed) - finished)

    async def _running(self, refund_id: str) -> RefundHandle:
        handle: RefundHandle = self.client.get_workflow_handle_for(RefundWorkflow.run, refund_id)
        description = await self._describe(handle)
        if description.status is not WorkflowExecutionStatus.RUNNING:
            raise UserError(f"refund {refund_id} is already finished")
        return handle

    async def _describe(self, handle: WorkflowHandle[Any, Any]) -> Any:
        try:
            return await handle.describe(rpc_timeout=RPC_TIMEOUT)
        except RPCError as err:
            raise UserError(self._rpc_message(handle.id, err)) from None

    def _rpc_message(self, refund_id: str, err: RPCError) -> str:
        if err.status is RPCStatusCode.NOT_FOUND:
            return f"no refund {refund_id!r}"
        if is_not_ready(err):
            return not_ready_message(refund_id)
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return NO_WORKER
        if "already completed" in str(err):
            return f"refund {refund_id} is already finished"
        return f"Temporal refused the request: {_first_line(err)}"


@dataclass(frozen=True)
class Announcement:
    told: int
    failed: int
    """Refunds still running that could not be told (those that finished meanwhile are not)."""


@asynccontextmanager
async def refund_client(settings: Settings) -> AsyncIterator[RefundClient]:
    client = await connect(settings)
    try:
        yield RefundClient(client, settings)
    except WorkflowFailureError as err:
        raise UserError(f"the refund failed: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
