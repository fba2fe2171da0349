"""A money activity the system of record refused: recorded, logged as an error and counted, then
failed for good so no retry runs it again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.errors import PAYMENT_UNAUTHORIZED, PaymentUnauthorizedError
from domain.values import shown_id

if TYPE_CHECKING:
    from storage.payment_refusals import PaymentRefusals

REFUSED_METRIC = "refunds_payments_refused_total"


REFUND_WORKFLOW = "RefundWorkflow"


def scheduled_by_the_refund(refund_id: str) -> None:
    """Money and the certificate's records move only for the refund's own workflow: an activity
    scheduled by any other (a workflow of someone else's on the refunds queue, replaying a
    refund's payloads while it runs) is refused, whatever its input says."""
    info = activity.info()
    if info.workflow_id != refund_id or info.workflow_type != REFUND_WORKFLOW:
        raise PaymentUnauthorizedError(
            f"scheduled by {shown_id(info.workflow_id or '')} "
            f"({shown_id(info.workflow_type or '')}), not by the refund {shown_id(refund_id)}"
        )


def refused(
    refusals: PaymentRefusals, *, refund_id: str, leg_index: int | None, reason: str
) -> ApplicationError:
    """Record the refusal (who scheduled the activity, for what, why) and the error to raise."""
    info = activity.info()
    refusals.record(
        activity=info.activity_type,
        refund_id=refund_id,
        leg_index=leg_index,
        workflow_id=info.workflow_id or "",
        workflow_type=info.workflow_type or "",
        reason=reason,
    )
    activity.metric_meter().create_counter(
        REFUSED_METRIC, "money activities the system of record refused"
    ).add(1, {"activity": info.activity_type})
    activity.logger.error(
        "refused by the system of record",
        extra={
            "refund_id": shown_id(refund_id),
            "leg": leg_index,
            "scheduled_by": shown_id(info.workflow_id or ""),
            "workflow_type": shown_id(info.workflow_type or ""),
            "reason": reason,
        },
    )
    return ApplicationError(
        f"refused by the system of record: {reason}",
        type=PAYMENT_UNAUTHORIZED,
        non_retryable=True,
    )
