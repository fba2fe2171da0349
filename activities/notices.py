"""What the customer is told at each outcome: templates the notify activity renders."""

from __future__ import annotations

from string import Template

from activities.payloads import CustomerNotice
from domain.certificates import Channel
from workflows.contract import LegState, LegStatus, RefundState

DESTINATIONS = {
    Channel.ALIPAY: "your Alipay account",
    Channel.BANK: "your online bank account",
    Channel.ACCOUNT_BALANCE: "your Alibaba Cloud account balance",
}

REFUNDED = Template(
    "Your refund $refund_id for certificate $certificate_id is complete.\n"
    "We returned $total $currency:\n"
    "${lines}"
    "${kept}"
    "Money returned to Alipay or a bank usually arrives within 1-5 business days."
)
REFUNDED_LINE = Template("- $amount $currency to $destination$note\n")
VOUCHERS_KEPT = "Payments made with vouchers are not returned.\n"
REJECTED = Template(
    "Your refund request $refund_id for certificate $certificate_id was not approved.\n"
    "Reason: $reason\n"
    "$usable"
)
CANCELLED = Template(
    "Your refund request $refund_id for certificate $certificate_id was cancelled "
    "as you asked. Nothing was charged or returned, and you can continue to use the certificate."
)
WITHDRAWN = Template(
    "Your refund request $refund_id for certificate $certificate_id was withdrawn by our support "
    "team. Nothing was charged or returned, and you can continue to use the certificate."
)
STILL_USABLE = "You can continue to use the certificate."
SETTLING = Template(
    "Your refund $refund_id for certificate $certificate_id was accepted:\n"
    "${lines}"
    "${returned}"
    "Money returned to a bank account arrives within $days business days; we will write again "
    "when it has arrived."
)
SETTLING_LINE = Template("- $amount $currency to $destination: accepted, on its way\n")


def _returned_line(leg: LegStatus, currency: str) -> str:
    channel = leg.returned_via or leg.channel
    note = ""
    if leg.returned_via is not None:
        note = f" (the {leg.channel.value} payment could not be returned there)"
    if leg.status is LegState.RETURNED_MANUALLY:
        return REFUNDED_LINE.substitute(
            amount=leg.amount,
            currency=currency,
            destination="you by our billing team",
            note=" (returned by hand; they will contact you)",
        )
    return REFUNDED_LINE.substitute(
        amount=leg.amount,
        currency=currency,
        destination=DESTINATIONS.get(channel, channel.value),
        note=note,
    )


def render_notice(notice: CustomerNotice) -> str:
    """The message for ``notice``: amounts per channel, or the reviewer's reason as written."""
    names = {"refund_id": notice.refund_id, "certificate_id": notice.certificate_id}
    if notice.state is RefundState.REFUNDED:
        returned = [
            leg
            for leg in notice.legs
            if leg.status in (LegState.RETURNED, LegState.RETURNED_MANUALLY)
        ]
        kept = any(leg.channel is Channel.VOUCHER for leg in notice.legs)
        return REFUNDED.substitute(
            names,
            total=sum(leg.amount for leg in returned),
            currency=notice.currency,
            lines="".join(_returned_line(leg, notice.currency) for leg in returned),
            kept=VOUCHERS_KEPT if kept else "",
        )
    settling = [leg for leg in notice.legs if leg.status is LegState.SETTLING]
    if notice.state is RefundState.REFUNDING and settling:
        returned = [leg for leg in notice.legs if leg.status is LegState.RETURNED]
        return SETTLING.substitute(
            names,
            lines="".join(
                SETTLING_LINE.substitute(
                    amount=leg.amount,
                    currency=notice.currency,
                    destination=DESTINATIONS.get(leg.channel, leg.channel.value),
                )
                for leg in settling
            ),
            returned="".join(_returned_line(leg, notice.currency) for leg in returned),
            days=notice.settlement_days,
        )
    if notice.state is RefundState.REJECTED:
        reason = notice.message or "the request does not meet the refund conditions"
        expired = notice.rule is not None and notice.rule.value == "expired"
        return REJECTED.substitute(names, reason=reason, usable="" if expired else STILL_USABLE)
    if notice.state is RefundState.CANCELLED:
        # A message means someone other than the customer cancelled it (through Temporal).
        return (WITHDRAWN if notice.message else CANCELLED).substitute(names)
    return f"Refund {notice.refund_id}: {notice.state.value}. {notice.message}".strip()
