"""The payment activity keeps the exactly-once record, whatever channel adapter it is given."""

from __future__ import annotations

from decimal import Decimal

import pytest
from temporalio.exceptions import ApplicationError

from activities.gateways import ChannelTransaction
from activities.payloads import ManualReturn, PaymentReturnRequest
from activities.payments import PaymentActivities
from domain.certificates import Channel
from domain.errors import PAYMENT_REJECTED, PaymentRejectedError
from domain.ledger import manual_transaction_id
from storage.ledger import Ledger


class CountingChannel:
    """A channel that issues a new transaction on every call (it would pay every time)."""

    def __init__(self, refuse: bool = False) -> None:
        self.calls = 0
        self.refuse = refuse

    def return_payment(self, request: PaymentReturnRequest) -> ChannelTransaction:
        self.calls += 1
        if self.refuse:
            raise PaymentRejectedError("account closed")
        return ChannelTransaction(f"alipay-{self.calls}")


def leg(index: int = 0) -> PaymentReturnRequest:
    return PaymentReturnRequest(
        refund_id="refund-cas-1",
        certificate_id="cas-1",
        leg_index=index,
        channel=Channel.ALIPAY,
        amount=Decimal("199.00"),
        currency="CNY",
        reference="ali-1",
        idempotency_key=f"refund-cas-1:leg-{index}",
    )


def settled_by_hand(request: PaymentReturnRequest) -> ManualReturn:
    """An operator's record that ``request``'s leg was returned outside the system."""
    return ManualReturn(
        **request.model_dump(exclude={"channel"}),
        original_channel=request.channel,
        operator="operator-1",
        note="wired by hand",
    )


def test_a_leg_recorded_once_is_never_sent_to_its_channel_again(store):
    channel = CountingChannel()
    payments = PaymentActivities({Channel.ALIPAY: channel}, Ledger(store.engine))
    first = payments.return_to_alipay(leg())
    again = payments.return_to_alipay(leg())
    assert channel.calls == 1
    assert (first.already_returned, again.already_returned) == (False, True)
    assert again.transaction_id == first.transaction_id == "alipay-1"
    assert [e.transaction_id for e in Ledger(store.engine).entries()] == ["alipay-1"]


def test_a_refusal_is_final_and_records_nothing(store):
    payments = PaymentActivities(
        {Channel.ALIPAY: CountingChannel(refuse=True)}, Ledger(store.engine)
    )
    with pytest.raises(ApplicationError) as refused:
        payments.return_to_alipay(leg())
    assert refused.value.type == PAYMENT_REJECTED and refused.value.non_retryable
    assert Ledger(store.engine).entries() == []


def test_a_leg_settled_by_hand_is_never_paid_by_a_channel_afterwards(store):
    channel = CountingChannel()
    payments = PaymentActivities({Channel.ALIPAY: channel}, Ledger(store.engine))
    settled = payments.record_manual_return(settled_by_hand(leg()))
    assert settled.channel == "manual"
    assert payments.return_to_alipay(leg()).already_returned
    assert channel.calls == 0


def test_every_money_movement_is_logged_with_what_an_operator_needs(store, caplog):
    payments = PaymentActivities({Channel.ALIPAY: CountingChannel()}, Ledger(store.engine))
    caplog.set_level("INFO", logger="temporalio.activity")
    first = payments.return_to_alipay(leg())
    payments.return_to_alipay(leg())
    payments.record_manual_return(
        settled_by_hand(
            leg(1).model_copy(
                update={"channel": Channel.BANK, "amount": Decimal("50.00"), "reference": "bank-1"}
            )
        )
    )
    fields = ("refund_id", "leg", "channel", "amount", "transaction_id", "operator")
    logged = [(r.msg, {f: getattr(r, f) for f in fields if hasattr(r, f)}) for r in caplog.records]
    paid = {
        "refund_id": "refund-cas-1",
        "leg": 0,
        "channel": "alipay",
        "amount": "199.00",
        "transaction_id": first.transaction_id,
    }
    assert logged == [
        ("payment returned", paid),
        ("payment already returned", paid),
        ("leg settled by hand", {"refund_id": "refund-cas-1", "leg": 1, "operator": "operator-1"}),
        (
            "payment returned",
            {
                "refund_id": "refund-cas-1",
                "leg": 1,
                "channel": "manual",
                "amount": "50.00",
                "transaction_id": manual_transaction_id("refund-cas-1:leg-1"),
            },
        ),
    ]
