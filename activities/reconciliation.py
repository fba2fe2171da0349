"""The reconciliation activity: the books against running refunds, as logs and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import structlog
from temporalio import activity
from temporalio.client import Client

from activities.payloads import BooksSummary
from activities.temporal_history import refund_is_running

if TYPE_CHECKING:
    from storage.reconcile import Reconciliation, RunningCheck

    BooksCheck = Callable[[RunningCheck], Awaitable[Reconciliation]]

MAX_LISTED = 50

log = structlog.get_logger("refunds.reconciliation")


class ReconciliationActivities:
    def __init__(
        self,
        books: BooksCheck,
        client: Client,
        journal: Callable[[], list[str]] = list,
        refused: Callable[[], int] = int,
    ) -> None:
        """``books``: the system of record's reconciliation, given a way to ask Temporal
        whether a refund runs (``storage.reconcile.reconcile_with_refunds`` on an engine);
        ``journal``: the account balance's problems; ``refused``: payments the system of record
        refused in the last day."""
        self.books = books
        self.client = client
        self.journal = journal
        self.refused = refused

    @activity.defn(name="check_books")
    async def check_books(self) -> BooksSummary:
        async def running(refund_id: str) -> bool:
            return await refund_is_running(self.client, refund_id)

        recon = await self.books(running)
        troubled = [
            b for b in recon.balances if b.problem or b.outcome in ("paid_twice", "missing")
        ]
        summary = BooksSummary(
            certificates=len(recon.balances),
            orphaned_holds=recon.orphaned_holds or 0,
            divergent=recon.divergent or 0,
            paid_twice=recon.paid_twice,
            missing_amount=recon.missing_amount,
            certificates_to_check=[b.certificate_id for b in troubled][:MAX_LISTED],
            journal_problems=len(await asyncio.to_thread(self.journal)),
            payments_refused=await asyncio.to_thread(self.refused),
        )
        meter = activity.metric_meter()
        for name, value in (
            ("refunds_orphaned_holds", summary.orphaned_holds),
            ("refunds_divergent_certificates", summary.divergent),
            ("refunds_paid_twice", summary.paid_twice),
            ("refunds_missing_amount", int(summary.missing_amount * 100)),
            ("refunds_journal_problems", summary.journal_problems),
            ("refunds_payments_refused_last_day", summary.payments_refused),
        ):
            meter.create_gauge(name, "from the last reconciliation").set(value)
        fields = summary.model_dump(mode="json", exclude={"certificates_to_check"})
        if summary.problems:
            log.error("the books do not agree", **fields, check=summary.certificates_to_check)
        else:
            log.info("the books agree", **fields)
        return summary
