"""What the customer is told at each outcome."""

from __future__ import annotations

from workflows.models import CustomerNotice, LegState, RefundState

CHANNEL_NAMES = {
    "alipay": "your Alipay account",
    "bank": "your online bank account",
    "account_balance": "your Alibaba Cloud account balance",
}


def render_notice(notice: CustomerNotice) -> str:
    """The message for ``notice``; amounts per channel, reasons as the reviewer wrote them."""
    head = f"Refund {notice.refund_id} for certificate {notice.certificate_id}"
    if notice.state is RefundState.REFUNDED:
        lines = [
            f"- {leg.amount} {notice.currency} to {CHANNEL_NAMES.get(leg.channel, leg.channel)}"
            for leg in notice.legs
            if leg.status is LegState.RETURNED
        ]
        kept = [leg for leg in notice.legs if leg.status is LegState.NOT_REFUNDABLE]
        text = f"{head} is complete. We returned:\n" + "\n".join(lines)
        if kept:
            text += "\nVoucher payments are not returned."
        return text
    if notice.state is RefundState.REJECTED:
        why = notice.message or "the request does not meet the refund conditions"
        return f"{head} was not approved: {why}. You can continue to use the certificate."
    if notice.state is RefundState.CANCELLED:
        return f"{head} was cancelled at your request. You can continue to use the certificate."
    return f"{head}: {notice.state.value}. {notice.message}".strip()
