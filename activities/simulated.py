"""The simulated outside world (payment channels, CA, support desk, notices): each records its
effect in the system of record, once, so that "paid exactly once" can be checked."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.exc import IntegrityError

from activities.gateways import ChannelTransaction
from activities.payloads import CustomerNotice, PaymentReturnRequest, SupportTicketRequest
from domain.certificates import CertificateStatus, Channel
from domain.errors import StatusConflictError
from domain.ledger import digest
from storage.certificates import CertificateStore, to_cents
from storage.schema import (
    notifications,
    revocations,
    simulated_channel_returns,
    support_tickets,
)


class SimulatedPaymentChannel:
    """A payment channel that keeps its own record of returns, one per request id, as a real
    channel does: asked again with the same id, it answers with the first transaction."""

    def __init__(self, engine: Engine, channel: Channel) -> None:
        self.engine = engine
        self.channel = channel

    def return_payment(self, request: PaymentReturnRequest) -> ChannelTransaction:
        transaction_id = f"{self.channel.value}-{digest(request.idempotency_key)}"
        _insert_once(
            self.engine,
            simulated_channel_returns,
            channel=self.channel.value,
            request_id=request.idempotency_key,
            amount_cents=to_cents(request.amount),
            currency=request.currency,
            reference=request.reference,
            transaction_id=transaction_id,
            returned_at=datetime.now(UTC),
        )
        return ChannelTransaction(transaction_id)


class SimulatedCertificateAuthority:
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


class SimulatedSupportDesk:
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


class SimulatedNotifier:
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
