"""The simulated rest of the outside world (the CA, the support desk, notices): each records its
effect in the system of record, once. The payment channels are real adapters (``activities``
``alipay``, ``bank``, ``balance_channel``) in front of the local simulators (``simulators``)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, insert, select
from sqlalchemy.exc import IntegrityError

from activities.payloads import CustomerNotice, SupportTicketRequest
from domain.certificates import CertificateStatus
from domain.errors import StatusConflictError
from storage.certificates import CertificateStore
from storage.schema import notifications, revocations, support_tickets


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
