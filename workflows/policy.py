"""The refund rules: the seed's table made exact, checked in order, the first match decides.

Pure and deterministic: the same certificate, instant, time zone and calendar always give the same
decision. Calendar days are whole dates in the business time zone, so an instant just after
midnight in Shanghai counts as the next day even though it is still the previous day in UTC.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from domain.certificates import Certificate, CertificateStatus, Product
from domain.certificates import Validation as V
from domain.decisions import Decision, Outcome, RuleId
from workflows.business_days import BusinessCalendar

DEFAULT_TIMEZONE = "Asia/Shanghai"
AUTO_APPROVE_DAYS = 5
ISSUED_REFUND_DAYS = 28
NEAR_EXPIRY_DAYS = 15
REVIEW_BUSINESS_DAYS = 15
CONSOLE_REFUND_ACTION_DAYS = 30
REVOCATION_MARGIN = timedelta(hours=1)
"""How long before the end of day 28 an issued certificate's review must end, to revoke and pay."""


@dataclass(frozen=True)
class _Facts:
    certificate: Certificate
    now: datetime
    today: date
    zone: ZoneInfo

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def days_since(self, instant: datetime) -> int:
        return (self.today - self.local_date(instant)).days

    def days_until(self, instant: datetime) -> int:
        return (self.local_date(instant) - self.today).days


@dataclass(frozen=True)
class _Rule:
    rule: RuleId
    outcome: Outcome
    applies: Callable[[_Facts], bool]
    explain: Callable[[_Facts], str]


def _issue_age(f: _Facts) -> int:
    assert f.certificate.issued_at is not None
    return f.days_since(f.certificate.issued_at)


def _expiry_in(f: _Facts) -> int:
    assert f.certificate.expires_at is not None
    return f.days_until(f.certificate.expires_at)


def _purchase_age(f: _Facts) -> int:
    return f.days_since(f.certificate.purchased_at)


RULES: tuple[_Rule, ...] = (
    _Rule(
        RuleId.ALREADY_REFUNDED,
        Outcome.DENIED,
        lambda f: f.certificate.status in {CertificateStatus.REFUNDED, CertificateStatus.REVOKED},
        lambda f: f"the certificate is already {f.certificate.status}",
    ),
    _Rule(
        RuleId.FREE_DV,
        Outcome.DENIED,
        lambda f: f.certificate.free and f.certificate.product is Product.DV,
        lambda f: "free DV certificates are never refunded",
    ),
    _Rule(
        RuleId.VOUCHER_ONLY,
        Outcome.DENIED,
        lambda f: f.certificate.refundable_amount == 0,
        lambda f: "nothing was paid outside vouchers, and vouchers are not returned",
    ),
    _Rule(
        RuleId.EXPIRED,
        Outcome.DENIED,
        lambda f: f.certificate.expires_at is not None and f.now >= f.certificate.expires_at,
        lambda f: "the certificate has expired",
    ),
    _Rule(
        RuleId.NEAR_EXPIRY,
        Outcome.DENIED,
        lambda f: f.certificate.expires_at is not None and _expiry_in(f) < NEAR_EXPIRY_DAYS,
        lambda f: (
            f"it expires in {_expiry_in(f)} calendar days; "
            f"requests must come at least {NEAR_EXPIRY_DAYS} days before expiry"
        ),
    ),
    _Rule(
        RuleId.ISSUED_OVER_28_DAYS,
        Outcome.DENIED,
        lambda f: f.certificate.issued and _issue_age(f) > ISSUED_REFUND_DAYS,
        lambda f: (
            f"issued {_issue_age(f)} calendar days ago; "
            f"issued certificates are refunded only within {ISSUED_REFUND_DAYS} days"
        ),
    ),
    _Rule(
        RuleId.ISSUED_WITHIN_28_DAYS,
        Outcome.MANUAL_REVIEW,
        lambda f: f.certificate.issued,
        lambda f: (
            f"issued {_issue_age(f)} calendar days ago; a reviewer must approve, "
            "and the certificate is revoked before the money is returned"
        ),
    ),
    _Rule(
        RuleId.UNISSUED_VALIDATED,
        Outcome.DENIED,
        lambda f: f.certificate.validation is V.VALIDATED,
        lambda f: "domain validation has already passed for this unissued certificate",
    ),
    _Rule(
        RuleId.UNISSUED_WITHIN_5_DAYS,
        Outcome.AUTO_APPROVE,
        lambda f: _purchase_age(f) <= AUTO_APPROVE_DAYS,
        lambda f: f"unissued and bought {_purchase_age(f)} calendar days ago: refunded at once",
    ),
    _Rule(
        RuleId.UNISSUED_AFTER_5_DAYS,
        Outcome.MANUAL_REVIEW,
        lambda f: True,
        lambda f: (
            f"unissued and bought {_purchase_age(f)} calendar days ago; a reviewer must approve"
        ),
    ),
)


def evaluate(
    certificate: Certificate,
    now: datetime,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    calendar: BusinessCalendar | None = None,
) -> Decision:
    """Apply the rules to ``certificate`` at the instant ``now`` (timezone-aware)."""
    facts = _facts(certificate, now, timezone)
    rule = next(r for r in RULES if r.applies(facts))
    granted = rule.outcome is not Outcome.DENIED
    legs = certificate.refundable_legs if granted else []
    warnings = _warnings(facts, rule.outcome, calendar or BusinessCalendar()) if granted else []
    return Decision(
        certificate_id=certificate.certificate_id,
        outcome=rule.outcome,
        rule=rule.rule,
        explanation=rule.explain(facts),
        refund_amount=sum((leg.amount for leg in legs), Decimal("0.00")),
        currency=certificate.order.currency,
        legs=legs,
        warnings=warnings,
        evaluated_at=now,
        days_since_purchase=facts.days_since(certificate.purchased_at),
        days_since_issue=facts.days_since(certificate.issued_at) if certificate.issued_at else None,
        days_until_expiry=facts.days_until(certificate.expires_at)
        if certificate.expires_at
        else None,
        revoke_required=rule.rule is RuleId.ISSUED_WITHIN_28_DAYS,
    )


RECHECKED_RULES = frozenset({RuleId.ALREADY_REFUNDED, RuleId.EXPIRED, RuleId.ISSUED_OVER_28_DAYS})
"""What can stop a request that was valid when made from being paid later; ``near-expiry`` is
judged only at the moment of the request."""


def still_refundable(
    certificate: Certificate, now: datetime, *, timezone: str = DEFAULT_TIMEZONE
) -> tuple[RuleId, str] | None:
    """The rule that forbids paying ``certificate`` back at ``now``, with why, or ``None``.

    Run before any approval is carried out, by a reviewer or by the review deadline.
    """
    facts = _facts(certificate, now, timezone)
    for rule in RULES:
        if rule.rule in RECHECKED_RULES and rule.applies(facts):
            return rule.rule, rule.explain(facts)
    return None


def _facts(certificate: Certificate, now: datetime, timezone: str) -> _Facts:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if now < certificate.purchased_at:
        raise ValueError("purchased after the request")
    zone = ZoneInfo(timezone)
    return _Facts(certificate, now, now.astimezone(zone).date(), zone)


def _warnings(facts: _Facts, outcome: Outcome, calendar: BusinessCalendar) -> list[str]:
    warnings: list[str] = []
    review_end = calendar.add_business_days(facts.today, REVIEW_BUSINESS_DAYS)
    expires_at = facts.certificate.expires_at
    # Fewer than REVIEW_BUSINESS_DAYS remain exactly when expiry comes before the last of them;
    # only then are the remaining days counted (counting to an expiry a year away is costly).
    expiry_day = facts.local_date(expires_at) if expires_at is not None else None
    if expiry_day is not None and expiry_day < review_end.day:
        left = calendar.business_days_between(facts.today, expiry_day)
        warnings.append(
            f"only {left} business days remain before the certificate expires; "
            "the review may not finish before it expires"
        )
    if outcome is Outcome.MANUAL_REVIEW:
        warnings.extend(review_end.warnings)
    return warnings


def refund_action_shown(
    certificate: Certificate, now: datetime, *, timezone: str = DEFAULT_TIMEZONE
) -> bool:
    """Whether the console offers the Refund action (hidden once issued over 30 days ago)."""
    if certificate.issued_at is None:
        return True
    zone = ZoneInfo(timezone)
    age = (now.astimezone(zone).date() - certificate.issued_at.astimezone(zone).date()).days
    return age <= CONSOLE_REFUND_ACTION_DAYS


def assess(
    certificate: Certificate,
    now: datetime,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    calendar: BusinessCalendar | None = None,
) -> tuple[Decision, datetime | None]:
    """The decision at ``now`` and, for a manual review, its deadline, with every warning.

    The one composition of the rules: the assessment activity and ``refunds check`` both use it.
    """
    calendar = calendar or BusinessCalendar()
    decision = evaluate(certificate, now, timezone=timezone, calendar=calendar)
    if decision.outcome is not Outcome.MANUAL_REVIEW:
        return decision, None
    # The decision's warnings already hold the deadline's (the same count from the same day).
    deadline, _ = review_deadline(certificate, now, timezone=timezone, calendar=calendar)
    return decision, deadline


def review_deadline(
    certificate: Certificate,
    submitted_at: datetime,
    *,
    timezone: str = DEFAULT_TIMEZONE,
    calendar: BusinessCalendar | None = None,
) -> tuple[datetime, list[str]]:
    """When an unanswered review times out, with any calendar warnings.

    The end (local midnight) of the 15th business day after submission; for an issued
    certificate no later than ``REVOCATION_MARGIN`` before the end of day 28 after issuance,
    so that revocation and payment still happen within the 28 days.
    """
    zone = ZoneInfo(timezone)
    start = submitted_at.astimezone(zone).date()
    counted = (calendar or BusinessCalendar()).add_business_days(start, REVIEW_BUSINESS_DAYS)
    deadline = datetime.combine(counted.day + timedelta(days=1), time(), zone)
    if certificate.issued_at is not None:
        issued_on = certificate.issued_at.astimezone(zone).date()
        day_29 = issued_on + timedelta(days=ISSUED_REFUND_DAYS + 1)
        cap = datetime.combine(day_29, time(), zone) - REVOCATION_MARGIN
        deadline = min(deadline, cap)
    return deadline, counted.warnings
