"""What the customer is told at each outcome."""

from __future__ import annotations

from decimal import Decimal

from activities.notices import render_notice
from activities.payloads import CustomerNotice
from domain.decisions import RuleId
from workflows.contract import LegState, LegStatus, RefundState


def leg(index, channel, amount, status, **extra):
    return LegStatus(
        index=index, channel=channel, amount=Decimal(amount), reference="r", status=status, **extra
    )


def notice(state, legs=(), message="", rule=None):
    return CustomerNotice(
        refund_id="refund-cas-1",
        certificate_id="cas-1",
        owner="user-1",
        state=state,
        rule=rule,
        legs=list(legs),
        message=message,
    )


def test_refunded_lists_each_channel_and_where_the_money_goes():
    text = render_notice(
        notice(
            RefundState.REFUNDED,
            [
                leg(0, "alipay", "199.00", LegState.RETURNED),
                leg(1, "bank", "0.50", LegState.RETURNED),
                leg(2, "voucher", "50.00", LegState.NOT_REFUNDABLE),
            ],
        )
    )
    assert "refund-cas-1 for certificate cas-1 is complete" in text
    assert "We returned 199.50 CNY" in text
    assert "- 199.00 CNY to your Alipay account" in text
    assert "- 0.50 CNY to your online bank account" in text
    assert "vouchers are not returned" in text


def test_refunded_explains_a_fallback_and_a_manual_return():
    text = render_notice(
        notice(
            RefundState.REFUNDED,
            [
                leg(0, "alipay", "10.00", LegState.RETURNED, returned_via="account_balance"),
                leg(1, "bank", "20.00", LegState.RETURNED_MANUALLY),
            ],
        )
    )
    assert "- 10.00 CNY to your Alibaba Cloud account balance (the alipay payment" in text
    assert "- 20.00 CNY to you by our billing team (returned by hand" in text
    assert "vouchers" not in text


def test_rejected_quotes_the_reviewers_reason():
    text = render_notice(notice(RefundState.REJECTED, message="The certificate is in use"))
    assert "was not approved" in text
    assert "Reason: The certificate is in use" in text
    assert "continue to use the certificate" in text


def test_rejected_by_expiry_does_not_promise_a_usable_certificate():
    text = render_notice(notice(RefundState.REJECTED, message="expired", rule=RuleId.EXPIRED))
    assert "continue to use" not in text


def test_cancelled():
    text = render_notice(notice(RefundState.CANCELLED))
    assert "was cancelled as you asked" in text
    assert "continue to use the certificate" in text


def test_cancelled_through_temporal_says_who_withdrew_it():
    text = render_notice(
        notice(RefundState.CANCELLED, message="cancellation requested through Temporal")
    )
    assert "withdrawn by our support team" in text
    assert "as you asked" not in text
    assert "continue to use the certificate" in text
