"""Property tests: any valid certificate and time get exactly one decision and the right amount."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.certificates import Certificate
from domain.decisions import Outcome
from workflows.business_days import BusinessCalendar
from workflows.policy import evaluate

SHANGHAI = ZoneInfo("Asia/Shanghai")

offsets = st.integers(min_value=-12 * 4, max_value=14 * 4).map(
    lambda q: timezone(timedelta(minutes=15 * q))
)
instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=offsets
)
amounts = st.decimals(
    min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2, allow_nan=False
)
legs = st.fixed_dictionaries(
    {
        "channel": st.sampled_from(["alipay", "bank", "account_balance", "voucher"]),
        "amount": amounts.map(str),
        "reference": st.text("abc123-", min_size=1, max_size=8),
    }
)


@st.composite
def certificates(draw: st.DrawFn) -> Certificate:
    purchased = draw(instants)
    after_purchase = st.timedeltas(timedelta(0), timedelta(days=60)).map(purchased.__add__)
    issued: datetime | None = draw(st.none() | after_purchase)
    lifetime = st.timedeltas(timedelta(seconds=1), timedelta(days=800))
    expires: datetime | None = draw(lifetime.map((issued or purchased).__add__))
    if issued is None and draw(st.booleans()):
        expires = None
    payments = draw(st.lists(legs, max_size=4))
    free = draw(st.booleans()) and all(p["channel"] == "voucher" for p in payments)
    return Certificate.model_validate(
        {
            "certificate_id": "cas-prop",
            "owner": "user-1",
            "product": draw(st.sampled_from(["DV", "OV", "EV"])),
            "free": free,
            "validation": "validated"
            if issued
            else draw(st.sampled_from(["not_submitted", "submitted", "validated"])),
            "purchased_at": purchased,
            "issued_at": issued,
            "expires_at": expires,
            "status": draw(
                st.sampled_from([None, None, None, "refunded", "revoked", "refund_pending"])
            ),
            "order": {"order_id": "ord-prop", "currency": "CNY", "payments": payments},
        }
    )


def local(value: datetime) -> object:
    return value.astimezone(SHANGHAI).date()


def table_row(cert: Certificate, now: datetime) -> tuple[str, str]:
    """The SPEC's table written out as plainly as possible, independent of ``policy``."""
    today = local(now)
    paid = sum((p.amount for p in cert.order.payments if p.channel != "voucher"), Decimal(0))
    if cert.status in ("refunded", "revoked"):
        return "denied", "already-refunded"
    if cert.free and cert.product == "DV":
        return "denied", "free-dv"
    if paid == 0:
        return "denied", "voucher-only"
    if cert.expires_at is not None and now >= cert.expires_at:
        return "denied", "expired"
    if cert.expires_at is not None and (local(cert.expires_at) - today).days < 15:  # type: ignore[operator]
        return "denied", "near-expiry"
    if cert.issued_at is not None:
        if (today - local(cert.issued_at)).days > 28:  # type: ignore[operator]
            return "denied", "issued-over-28-days"
        return "manual_review", "issued-within-28-days"
    if cert.validation == "validated":
        return "denied", "unissued-validated"
    if (today - local(cert.purchased_at)).days <= 5:  # type: ignore[operator]
        return "auto_approve", "unissued-within-5-days"
    return "manual_review", "unissued-after-5-days"


@st.composite
def cases(draw: st.DrawFn) -> tuple[Certificate, datetime]:
    cert = draw(certificates())
    after = draw(st.timedeltas(timedelta(0), timedelta(days=900)))
    return cert, (cert.purchased_at + after).astimezone(UTC)


@settings(max_examples=400, deadline=None)
@given(cases())
def test_exactly_one_decision_matching_the_table(case: tuple[Certificate, datetime]) -> None:
    cert, now = case
    decision = evaluate(cert, now)
    assert (decision.outcome.value, decision.rule.value) == table_row(cert, now)


@settings(max_examples=400, deadline=None)
@given(cases())
def test_refund_amount_is_the_sum_of_non_voucher_legs(case: tuple[Certificate, datetime]) -> None:
    cert, now = case
    decision = evaluate(cert, now)
    non_voucher = sum(
        (p.amount for p in cert.order.payments if p.channel != "voucher"), Decimal("0.00")
    )
    if decision.outcome is Outcome.DENIED:
        assert decision.refund_amount == Decimal("0.00")
        assert decision.legs == []
    else:
        assert decision.refund_amount == non_voucher > 0
        assert all(leg.channel != "voucher" for leg in decision.legs)
        assert sum(leg.amount for leg in decision.legs) == decision.refund_amount


@settings(max_examples=200, deadline=None)
@given(cases())
def test_evaluation_is_deterministic(case: tuple[Certificate, datetime]) -> None:
    cert, now = case
    assert evaluate(cert, now) == evaluate(cert, now)


@settings(max_examples=300, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2027, 12, 1)).map(
        lambda naive: naive.replace(tzinfo=UTC)
    ),
    days_left=st.timedeltas(timedelta(days=15), timedelta(days=45)),
    bought_days_ago=st.integers(min_value=0, max_value=20),
)
def test_expiry_warning_exactly_when_fewer_than_15_business_days_remain(
    now: datetime, days_left: timedelta, bought_days_ago: int
) -> None:
    purchased = now - timedelta(days=bought_days_ago)
    cert = Certificate.model_validate(
        {
            "certificate_id": "cas-prop",
            "owner": "user-1",
            "product": "DV",
            "validation": "not_submitted",
            "purchased_at": purchased,
            "expires_at": now + days_left,
            "order": {
                "order_id": "ord-prop",
                "payments": [{"channel": "alipay", "amount": "10.00", "reference": "a"}],
            },
        }
    )
    decision = evaluate(cert, now)
    if decision.outcome is Outcome.DENIED:
        return
    left = BusinessCalendar().business_days_between(local(now), local(now + days_left))  # type: ignore[arg-type]
    warned = [w for w in decision.warnings if "business days remain" in w]
    assert bool(warned) == (left < 15)
    if warned:
        assert warned[0].startswith(f"only {left} business days remain")
