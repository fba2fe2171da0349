"""The payout's pure decisions, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from domain.certificates import Channel
from domain.errors import PAYMENT_REJECTED
from tests.factories import certificate, shanghai
from workflows.contract import LegState, LegStatus
from workflows.payout_rules import (
    cause,
    leg_payment,
    leg_problem,
    may_fall_back,
    patience,
    unavailable,
    unsettled,
)

SINCE = datetime(2026, 12, 1, 10, 20, tzinfo=UTC)


def leg(index: int, status: LegState, channel: Channel = Channel.ALIPAY) -> LegStatus:
    return LegStatus(
        index=index,
        channel=channel,
        amount=Decimal("199.00"),
        reference=f"ref-{index}",
        status=status,
        idempotency_key=f"refund-cas-1:leg-{index}",
    )


def failed(inner: BaseException, retry_state: RetryState | None = None) -> ActivityError:
    err = ActivityError(
        "activity error",
        scheduled_event_id=1,
        started_event_id=2,
        identity="worker",
        activity_type="return_to_alipay",
        activity_id="1",
        retry_state=retry_state,
    )
    err.__cause__ = inner
    return err


def test_only_legs_still_to_pay_are_paid():
    legs = [
        leg(0, LegState.PENDING),
        leg(1, LegState.FAILED),
        leg(2, LegState.RETURNED),
        leg(3, LegState.RETURNED_MANUALLY),
        leg(4, LegState.NOT_REFUNDABLE),
    ]
    assert [x.index for x in unsettled(legs)] == [0, 1]


def test_a_leg_is_named_to_the_payment_activity_by_ids_and_its_own_key_alone():
    """Nothing a channel is paid from (amount, reference, channel) travels in the request: the
    activity reads them from the system of record."""
    cert = certificate("cas-1", purchased_at=shanghai(2026, 11, 20))
    payment = leg_payment("refund-cas-1", cert, leg(0, LegState.PENDING, Channel.BANK))
    assert payment.model_dump() == {
        "refund_id": "refund-cas-1",
        "certificate_id": "cas-1",
        "leg_index": 0,
        "idempotency_key": "refund-cas-1:leg-0",
    }


def test_only_a_refusal_for_good_falls_back_to_the_balance_and_only_if_allowed():
    refused = failed(ApplicationError("closed", type=PAYMENT_REJECTED, non_retryable=True))
    other = failed(ApplicationError("down", type="ConnectionError"))
    assert may_fall_back(Channel.ALIPAY, refused, allowed=True)
    assert may_fall_back(Channel.BANK, refused, allowed=True)
    assert not may_fall_back(Channel.ALIPAY, refused, allowed=False)
    assert not may_fall_back(Channel.ACCOUNT_BALANCE, refused, allowed=True)
    assert not may_fall_back(Channel.ALIPAY, other, allowed=True)


def test_patience_in_seconds_or_none():
    assert patience(3600.0) == timedelta(hours=1)
    assert patience(None) is None
    assert patience(0) is None


def test_a_failure_reads_as_its_cause():
    assert cause(failed(ApplicationError("account closed"))) == "account closed"
    assert cause(ApplicationError("rules failed")) == "rules failed"
    # An exception the SDK carried across as its type: the message, without the type's name.
    converted = ApplicationError("ca unreachable", type="ConnectionError")
    assert str(converted) == "ConnectionError: ca unreachable"
    assert cause(failed(converted)) == "ca unreachable"


def test_the_patience_running_out_reads_as_since_when():
    last = ApplicationError("gateway timed out")
    by_retry_state = failed(last, RetryState.TIMEOUT)
    assert unavailable("alipay", SINCE, by_retry_state) == (
        "alipay unavailable since 2026-12-01 10:20 UTC (last error: gateway timed out)"
    )
    timeout = TimeoutError(
        "timed out", type=TimeoutType.SCHEDULE_TO_CLOSE, last_heartbeat_details=[]
    )
    timeout.__cause__ = last
    assert unavailable("the CA", SINCE, failed(timeout)) == (
        "the CA unavailable since 2026-12-01 10:20 UTC (last error: gateway timed out)"
    )
    bare = TimeoutError("timed out", type=TimeoutType.SCHEDULE_TO_CLOSE, last_heartbeat_details=[])
    assert unavailable("bank", SINCE, failed(bare)) == (
        "bank unavailable since 2026-12-01 10:20 UTC (last error: timed out)"
    )
    silent = TimeoutError("", type=TimeoutType.SCHEDULE_TO_CLOSE, last_heartbeat_details=[])
    assert (
        unavailable("bank", SINCE, failed(silent)) == "bank unavailable since 2026-12-01 10:20 UTC"
    )


def test_other_failures_are_not_the_patience_running_out():
    assert unavailable("alipay", SINCE, failed(ApplicationError("closed"))) is None
    start_to_close = TimeoutError(
        "slow", type=TimeoutType.START_TO_CLOSE, last_heartbeat_details=[]
    )
    assert unavailable("alipay", SINCE, failed(start_to_close)) is None
    assert (
        unavailable(
            "alipay", SINCE, failed(ApplicationError("x"), RetryState.NON_RETRYABLE_FAILURE)
        )
        is None
    )


def test_a_leg_problem_names_channel_leg_and_amount():
    assert leg_problem(Channel.BANK, leg(2, LegState.FAILED), "closed") == (
        "bank leg 2 (199.00): closed"
    )
