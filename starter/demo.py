"""``refunds demo``: every path through the engine, against a running ``refunds up``.

It seeds its own certificates (a fresh prefix per run), then walks auto-approval, approval with
revocation, rejection, cancellation, denial by rule and a refused duplicate, leaving one request
in review so the Web UI and ``refunds pending`` have something to show.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from settings import Settings
from starter.client import RefundClient
from starter.demo_data import demo_certificates
from starter.devserver import parse_address
from starter.errors import UserError
from storage.certificates import CertificateStore
from workflows.contract import (
    ApproveInput,
    CancelInput,
    RefundReason,
    RefundRequest,
    RefundState,
    RejectInput,
)


@dataclass
class DemoResult:
    path: str
    refund_id: str
    state: str
    rule: str
    amount: str
    link: str


class Demo:
    def __init__(
        self, refunds: RefundClient, store: CertificateStore, settings: Settings, console: Console
    ) -> None:
        self.refunds = refunds
        self.store = store
        self.settings = settings
        self.console = console
        self.prefix = f"demo{datetime.now(UTC):%H%M%S}"
        self.reviewer = settings.reviewers[0] if settings.reviewers else ""
        self.outcomes: list[DemoResult] = []
        self.owners: dict[str, str] = {}

    async def run(self) -> list[DemoResult]:
        if not self.reviewer:
            raise UserError("REFUNDS_REVIEWERS is empty: the demo needs a reviewer")
        certificates = demo_certificates(datetime.now(UTC), prefix=self.prefix)
        self.store.seed(certificates)
        self.owners = {c.certificate_id: c.owner for c in certificates}
        self.console.print(f"seeded {len(certificates)} certificates with prefix {self.prefix}-")
        steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
            ("auto-approval", self.auto),
            ("reviewer approves (revoke, then pay)", self.approve),
            ("reviewer rejects", self.reject),
            ("requester cancels", self.cancel),
            ("denied by rule", self.denied),
            ("duplicate refused, left in review", self.duplicate),
        ]
        for number, (title, step) in enumerate(steps, start=1):
            with self.console.status(f"[{number}/{len(steps)}] {title} ..."):
                await step()
            last = self.outcomes[-1]
            self.console.print(f"[green]✓[/] [{number}/{len(steps)}] {title}: {last.state}")
        return self.outcomes

    def _id(self, suffix: str) -> str:
        return f"{self.prefix}-{suffix}"

    async def _submit(self, suffix: str, reason: RefundReason, **extra: str) -> str:
        certificate_id = self._id(suffix)
        request = RefundRequest.model_validate(
            {
                "certificate_id": certificate_id,
                "requester": self.owners[certificate_id],
                "reason": reason,
                **extra,
            }
        )
        handle = await self.refunds.submit(request)
        return handle.id

    async def _settle(self, path: str, refund_id: str) -> None:
        status = await self.refunds.wait_until_settled(refund_id, timeout=60)
        self.outcomes.append(
            DemoResult(
                path=path,
                refund_id=refund_id,
                state=status.state.value,
                rule=status.rule.value if status.rule else "-",
                amount=f"{status.refund_amount} {status.currency}",
                link=await self._link(refund_id),
            )
        )

    async def _in_review(self, refund_id: str) -> None:
        status = await self.refunds.wait_until_settled(refund_id, timeout=60)
        if status.state is not RefundState.VALIDATING_APPLICATION:
            raise UserError(f"{refund_id} is {status.state.value}, expected it in review")

    async def _link(self, refund_id: str) -> str:
        host, _ = parse_address(self.settings.temporal_address)
        host = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
        handle = self.refunds.client.get_workflow_handle(refund_id)
        run_id = (await handle.describe()).run_id
        return (
            f"http://{host}:{self.settings.ui_port}/namespaces/{self.settings.namespace}"
            f"/workflows/{refund_id}/{run_id}/history"
        )

    async def auto(self) -> None:
        refund_id = await self._submit("auto", RefundReason.NO_LONGER_NEEDED)
        await self._settle("auto-approval", refund_id)

    async def approve(self) -> None:
        refund_id = await self._submit(
            "issued", RefundReason.INSTALL_FAILED, support_contact="dingtalk:demo_user"
        )
        await self._in_review(refund_id)
        await self.refunds.approve(
            refund_id,
            ApproveInput(reviewer=self.reviewer, note="installation logs confirm the failure"),
        )
        await self._settle("approved by a reviewer", refund_id)

    async def reject(self) -> None:
        refund_id = await self._submit(
            "reject", RefundReason.OTHER, feedback="I bought the wrong product"
        )
        await self._in_review(refund_id)
        await self.refunds.reject(
            refund_id,
            RejectInput(reviewer=self.reviewer, reason="The certificate is installed and in use"),
        )
        await self._settle("rejected by a reviewer", refund_id)

    async def cancel(self) -> None:
        refund_id = await self._submit("cancel", RefundReason.RENEWAL_TYPE_MISMATCH)
        await self._in_review(refund_id)
        owner = self.owners[self._id("cancel")]
        await self.refunds.cancel(refund_id, CancelInput(requester=owner))
        await self._settle("cancelled by the requester", refund_id)

    async def denied(self) -> None:
        refund_id = await self._submit("old", RefundReason.NO_LONGER_NEEDED)
        await self._settle("denied by rule", refund_id)

    async def duplicate(self) -> None:
        refund_id = await self._submit("review", RefundReason.VALIDATION_STUCK)
        await self._in_review(refund_id)
        try:
            await self._submit("review", RefundReason.VALIDATION_STUCK)
        except UserError as refused:
            self.console.print(f"  second request refused as it should be: {refused}")
        else:
            raise UserError("a second live request for one certificate was accepted")
        await self._settle("duplicate refused; waits for review", refund_id)


def outcome_table(outcomes: list[DemoResult]) -> Table:
    table = Table(title="demo outcomes", title_justify="left")
    for column in ("path", "refund", "state", "rule", "amount"):
        table.add_column(column)
    colours = {"refunded": "green", "rejected": "red", "validating_application": "yellow"}
    for o in outcomes:
        table.add_row(
            o.path,
            o.refund_id,
            Text(o.state, style=colours.get(o.state, "")),
            o.rule,
            o.amount,
        )
    return table


def link_lines(outcomes: list[DemoResult]) -> list[Text]:
    """One whole, clickable Web UI link per refund (a table would cut or fold them)."""
    return [
        Text.assemble((f"{o.refund_id}  ", "bold"), (o.link, f"link {o.link}")) for o in outcomes
    ]
