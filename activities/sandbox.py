"""Sandbox external systems: each records its effect in the system of record, once."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.exc import IntegrityError

from activities.payloads import (
    CustomerNotice,
    PaymentReceipt,
    PaymentReturnRequest,
    SupportTicketRequest,
)
from domain.certificates import CertificateStatus, Channel
from domain.errors import StatusConflictError
from storage.certificates import CertificateStore
from storage.ledger import Ledger, receipt
from storage.schema import notifications, revocations, support_tickets


class SandboxPaymentGateway:
    """A payment channel that 'pays' by writing the ledger under the idempotency key."""

    def __init__(self, ledger: Ledger, channel: Channel) -> None:
        self.ledger = ledger
        self.channel = channel

    def return_payment(self, request: PaymentReturnRequest) -> PaymentReceipt:
        return receipt(*self.ledger.record(request, channel=self.channel))


class SandboxCertificateAuthority:
    def __init__(self, engine: Engine, store: CertificateStore) -> None:
        self.engine = engine
        self.store = store

    def revoke(self, certificate_id: str, refund_id: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                select(revocations.c.refund_id).where(
                    revocations.c.certificate_id == certificate_id
                )
            ).scalar()
            if done is not None:
                if done != refund_id:
                    raise StatusConflictError(f"{certificate_id} was revoked by {done}")
                return
            conn.execute(
                insert(revocations).values(
                    certificate_id=certificate_id,
                    refund_id=refund_id,
                    revoked_at=datetime.now(UTC),
                )
            )
            self.store.set_status(conn, certificate_id, CertificateStatus.REVOKED)


class SandboxSupportDesk:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open_ticket(self, request: SupportTicketRequest) -> str:
        _insert_once(
            self.engine,
            support_tickets,
            refund_id=request.refund_id,
            certificate_id=request.certificate_id,
            reason=request.reason.value,
            contact_kind=request.contact.kind,
            contact_value=request.contact.value,
            opened_at=datetime.now(UTC),
        )
        return f"ticket-{request.refund_id}"


class SandboxNotifier:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def notify(self, notice: CustomerNotice) -> None:
        _insert_once(
            self.engine,
            notifications,
            refund_id=notice.refund_id,
            owner=notice.owner,
            state=notice.state.value,
            message=notice.message,
            sent_at=datetime.now(UTC),
        )


def _insert_once(engine: Engine, table: Table, **values: Any) -> None:
    """Insert a row whose unique key makes it once-only; an earlier attempt's row wins."""
    with contextlib.suppress(IntegrityError), engine.begin() as conn:
        conn.execute(insert(table), values)
