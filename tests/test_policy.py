"""Every row of the rule table, each boundary on both sides, time-zone traps and rule order."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from domain.decisions import Outcome, RuleId
from tests.factories import certificate, shanghai
from workflows.business_days import BusinessCalendar
from workflows.policy import (
    assess,
    evaluate,
    refund_action_shown,
    review_deadline,
    still_refundable,
)

PURCHASED = shanghai(2026, 11, 20, 12)


def rule_at(cert, now):
    return evaluate(cert, now).rule


class TestUnissued:
    def test_day_5_after_purchase_is_auto_approved(self):
        cert = certificate(purchased_at=PURCHASED)
        decision = evaluate(cert, shanghai(2026, 11, 25, 23, 59))
        assert (decision.outcome, decision.rule) == (
            Outcome.AUTO_APPROVE,
            RuleId.UNISSUED_WITHIN_5_DAYS,
        )
        assert decision.days_since_purchase == 5

    def test_day_6_after_purchase_needs_review(self):
        cert = certificate(purchased_at=PURCHASED)
        decision = evaluate(cert, shanghai(2026, 11, 26, 0, 0))
        assert (decision.outcome, decision.rule) == (
            Outcome.MANUAL_REVIEW,
            RuleId.UNISSUED_AFTER_5_DAYS,
        )
        assert decision.days_since_purchase == 6

    def test_day_0_is_auto_approved(self):
        cert = certificate(purchased_at=PURCHASED)
        assert rule_at(cert, PURCHASED) is RuleId.UNISSUED_WITHIN_5_DAYS

    def test_validated_but_unissued_is_denied(self):
        cert = certificate(purchased_at=PURCHASED, validation="validated")
        decision = evaluate(cert, PURCHASED + timedelta(days=1))
        assert (decision.outcome, decision.rule) == (Outcome.DENIED, RuleId.UNISSUED_VALIDATED)
        assert decision.refund_amount == Decimal("0.00")
        assert decision.legs == []

    def test_submitted_but_not_validated_is_refundable(self):
        cert = certificate(purchased_at=PURCHASED, validation="submitted")
        assert rule_at(cert, PURCHASED + timedelta(days=2)) is RuleId.UNISSUED_WITHIN_5_DAYS

    def test_unissued_without_expiry_never_expires(self):
        cert = certificate(purchased_at=PURCHASED, expires_at=None)
        decision = evaluate(cert, PURCHASED + timedelta(days=3000))
        assert decision.rule is RuleId.UNISSUED_AFTER_5_DAYS
        assert decision.days_until_expiry is None


class TestIssued:
    ISSUED = shanghai(2026, 11, 1, 9)

    def cert(self):
        return certificate(purchased_at=self.ISSUED - timedelta(days=2), issued_at=self.ISSUED)

    def test_day_28_after_issuance_needs_review_and_revocation(self):
        decision = evaluate(self.cert(), shanghai(2026, 11, 29, 23, 59))
        assert (decision.outcome, decision.rule) == (
            Outcome.MANUAL_REVIEW,
            RuleId.ISSUED_WITHIN_28_DAYS,
        )
        assert decision.revoke_required
        assert decision.days_since_issue == 28

    def test_day_29_after_issuance_is_denied(self):
        decision = evaluate(self.cert(), shanghai(2026, 11, 30, 0, 0))
        assert (decision.outcome, decision.rule) == (Outcome.DENIED, RuleId.ISSUED_OVER_28_DAYS)
        assert not decision.revoke_required

    def test_issued_within_5_days_of_purchase_still_needs_review(self):
        decision = evaluate(self.cert(), self.ISSUED + timedelta(hours=1))
        assert decision.outcome is Outcome.MANUAL_REVIEW


class TestExpiry:
    EXPIRES = shanghai(2027, 1, 15, 12)

    def cert(self):
        return certificate(purchased_at=PURCHASED, expires_at=self.EXPIRES)

    def test_15_days_before_expiry_is_allowed(self):
        decision = evaluate(self.cert(), shanghai(2026, 12, 31, 23, 59))
        assert decision.days_until_expiry == 15
        assert decision.rule is RuleId.UNISSUED_AFTER_5_DAYS

    def test_14_days_before_expiry_is_denied(self):
        decision = evaluate(self.cert(), shanghai(2027, 1, 1, 0, 0))
        assert decision.days_until_expiry == 14
        assert (decision.outcome, decision.rule) == (Outcome.DENIED, RuleId.NEAR_EXPIRY)

    def test_the_expiry_instant_itself_is_expired(self):
        assert rule_at(self.cert(), self.EXPIRES) is RuleId.EXPIRED

    def test_just_before_the_expiry_instant_is_near_expiry(self):
        assert rule_at(self.cert(), self.EXPIRES - timedelta(microseconds=1)) is RuleId.NEAR_EXPIRY

    def test_an_issued_certificate_expires_too(self):
        issued = shanghai(2026, 11, 1)
        cert = certificate(
            purchased_at=issued, issued_at=issued, expires_at=issued + timedelta(days=20)
        )
        assert rule_at(cert, issued + timedelta(days=20)) is RuleId.EXPIRED

    def test_few_business_days_left_warns(self):
        cert = certificate(purchased_at=PURCHASED, expires_at=shanghai(2026, 12, 20))
        decision = evaluate(cert, shanghai(2026, 12, 1))
        assert decision.rule is RuleId.UNISSUED_AFTER_5_DAYS
        assert any("business days remain" in w for w in decision.warnings)

    def test_plenty_of_time_left_does_not_warn(self):
        decision = evaluate(self.cert(), shanghai(2026, 11, 27))
        assert not any("business days remain" in w for w in decision.warnings)


class TestTimeZone:
    def test_a_utc_instant_on_the_previous_utc_date_counts_the_shanghai_date(self):
        cert = certificate(purchased_at=PURCHASED)
        # 16:30 UTC on the 25th is 00:30 on the 26th in Shanghai: day 6, not day 5.
        now = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
        decision = evaluate(cert, now)
        assert decision.days_since_purchase == 6
        assert decision.outcome is Outcome.MANUAL_REVIEW

    def test_a_purchase_late_in_the_utc_day_is_dated_in_shanghai(self):
        # 17:00 UTC on the 19th is 01:00 on the 20th in Shanghai.
        cert = certificate(purchased_at=datetime(2026, 11, 19, 17, 0, tzinfo=UTC))
        decision = evaluate(cert, shanghai(2026, 11, 25, 23, 0))
        assert decision.days_since_purchase == 5
        assert decision.outcome is Outcome.AUTO_APPROVE

    def test_another_business_time_zone_changes_the_count(self):
        cert = certificate(purchased_at=PURCHASED)
        now = datetime(2026, 11, 25, 16, 30, tzinfo=UTC)
        assert evaluate(cert, now, timezone="UTC").days_since_purchase == 5


class TestAmounts:
    def test_vouchers_are_not_returned(self):
        decision = evaluate(certificate(purchased_at=PURCHASED), PURCHASED)
        assert decision.refund_amount == Decimal("199.00")
        assert [leg.channel.value for leg in decision.legs] == ["alipay"]

    def test_every_paid_channel_is_returned_exactly(self):
        cert = certificate(
            purchased_at=PURCHASED,
            payments=[
                {"channel": "alipay", "amount": "100.10", "reference": "a"},
                {"channel": "bank", "amount": "0.20", "reference": "b"},
                {"channel": "account_balance", "amount": "3", "reference": "c"},
                {"channel": "voucher", "amount": "9.99", "reference": "v"},
            ],
        )
        decision = evaluate(cert, PURCHASED)
        assert decision.refund_amount == Decimal("103.30")
        assert str(decision.refund_amount) == "103.30"
        assert len(decision.legs) == 3


class TestRuleOrder:
    def test_already_refunded_comes_first(self):
        cert = certificate(purchased_at=PURCHASED, status="refunded", product="DV")
        assert rule_at(cert, PURCHASED) is RuleId.ALREADY_REFUNDED

    def test_revoked_counts_as_already_refunded(self):
        issued = PURCHASED + timedelta(days=1)
        cert = certificate(purchased_at=PURCHASED, issued_at=issued, status="revoked")
        assert rule_at(cert, issued) is RuleId.ALREADY_REFUNDED

    def test_free_dv_before_voucher_only(self):
        cert = certificate(purchased_at=PURCHASED, free=True, payments=[])
        assert rule_at(cert, PURCHASED) is RuleId.FREE_DV

    def test_free_ov_with_nothing_paid_is_voucher_only(self):
        cert = certificate(purchased_at=PURCHASED, free=True, product="OV", payments=[])
        assert rule_at(cert, PURCHASED) is RuleId.VOUCHER_ONLY

    def test_voucher_only_before_expired(self):
        cert = certificate(
            purchased_at=PURCHASED,
            expires_at=PURCHASED + timedelta(days=30),
            payments=[{"channel": "voucher", "amount": "50.00", "reference": "v"}],
        )
        assert rule_at(cert, PURCHASED + timedelta(days=31)) is RuleId.VOUCHER_ONLY

    def test_expired_before_issued_over_28_days(self):
        issued = PURCHASED
        cert = certificate(
            purchased_at=PURCHASED, issued_at=issued, expires_at=issued + timedelta(days=60)
        )
        assert rule_at(cert, issued + timedelta(days=61)) is RuleId.EXPIRED

    def test_near_expiry_before_issued_within_28_days(self):
        cert = certificate(
            purchased_at=PURCHASED, issued_at=PURCHASED, expires_at=PURCHASED + timedelta(days=20)
        )
        assert rule_at(cert, PURCHASED + timedelta(days=10)) is RuleId.NEAR_EXPIRY

    def test_near_expiry_before_unissued_within_5_days(self):
        cert = certificate(purchased_at=PURCHASED, expires_at=PURCHASED + timedelta(days=10))
        assert rule_at(cert, PURCHASED + timedelta(days=1)) is RuleId.NEAR_EXPIRY

    def test_unissued_validated_before_within_5_days(self):
        cert = certificate(purchased_at=PURCHASED, validation="validated")
        assert rule_at(cert, PURCHASED) is RuleId.UNISSUED_VALIDATED


class TestRefusedInputs:
    def test_naive_now_is_refused(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            evaluate(certificate(purchased_at=PURCHASED), datetime(2026, 11, 21))

    def test_a_time_before_purchase_is_refused(self):
        with pytest.raises(ValueError, match="purchased after the request"):
            evaluate(certificate(purchased_at=PURCHASED), PURCHASED - timedelta(seconds=1))


class TestReviewDeadline:
    def test_fifteen_china_business_days_end_at_local_midnight(self):
        cert = certificate(purchased_at=PURCHASED)
        deadline, warnings = review_deadline(cert, shanghai(2026, 11, 26, 15))
        # 15 business days after Thu 26 Nov 2026 is Thu 17 Dec; the review may use all of it.
        assert deadline == shanghai(2026, 12, 18, 0, 0)
        assert warnings == []

    def test_national_day_and_make_up_days_are_honoured(self):
        cert = certificate(purchased_at=shanghai(2026, 9, 1))
        deadline, _ = review_deadline(cert, shanghai(2026, 9, 18, 10))
        # From Fri 18 Sep: Sun 20 Sep is a make-up working day, Fri 25 Sep is Mid-Autumn,
        # 1-7 Oct are off and Sat 10 Oct is worked: the 15th business day is Thu 15 Oct.
        assert deadline == shanghai(2026, 10, 16, 0, 0)

    def test_issued_certificates_are_capped_before_day_28_ends(self):
        issued = shanghai(2026, 11, 10, 9)
        cert = certificate(purchased_at=issued, issued_at=issued)
        deadline, _ = review_deadline(cert, shanghai(2026, 11, 26, 9))
        assert deadline == shanghai(2026, 12, 8, 23, 0)
        assert evaluate(cert, deadline).rule is RuleId.ISSUED_WITHIN_28_DAYS

    def test_issued_recently_is_not_capped(self):
        issued = shanghai(2026, 11, 25, 9)
        cert = certificate(purchased_at=issued, issued_at=issued)
        deadline, _ = review_deadline(cert, shanghai(2026, 11, 26, 9))
        assert deadline == shanghai(2026, 12, 18, 0, 0)

    def test_a_review_into_an_unpublished_year_warns(self):
        unpublished = (BusinessCalendar("CN").published_through(date.today().year + 5) or 0) + 1
        cert = certificate(purchased_at=shanghai(unpublished - 1, 12, 1))
        _, warnings = review_deadline(cert, shanghai(unpublished - 1, 12, 20))
        assert any(str(unpublished) in w and "not published" in w for w in warnings)
        decision = evaluate(cert, shanghai(unpublished - 1, 12, 20))
        assert any(str(unpublished) in w for w in decision.warnings)

    def test_a_review_across_new_year_2026_counts_its_make_up_sunday(self):
        cert = certificate(purchased_at=shanghai(2025, 12, 1))
        deadline, _ = review_deadline(cert, shanghai(2025, 12, 24, 10))
        assert deadline == shanghai(2026, 1, 16, 0, 0)

    def test_a_review_across_spring_festival_2026_counts_both_make_up_saturdays(self):
        cert = certificate(purchased_at=shanghai(2026, 1, 20))
        deadline, _ = review_deadline(cert, shanghai(2026, 2, 10, 10))
        assert deadline == shanghai(2026, 3, 10, 0, 0)

    def test_the_day_28_cap_holds_on_a_public_holiday(self):
        issued = shanghai(2026, 9, 4, 10)  # day 28 is 2 October, in the National Day week
        cert = certificate(purchased_at=issued, issued_at=issued)
        deadline, _ = review_deadline(cert, shanghai(2026, 9, 20, 10))
        assert deadline == shanghai(2026, 10, 2, 23, 0)
        assert evaluate(cert, deadline).rule is RuleId.ISSUED_WITHIN_28_DAYS

    def test_other_countries_count_their_own_holidays(self):
        cert = certificate(purchased_at=shanghai(2026, 12, 1))
        deadline, warnings = review_deadline(
            cert,
            shanghai(2026, 12, 20),
            timezone="America/New_York",
            calendar=BusinessCalendar("US"),
        )
        assert deadline.date().isoformat() == "2027-01-13"
        assert warnings == []


def test_console_shows_the_refund_action_for_an_unissued_order():
    assert refund_action_shown(certificate(purchased_at=PURCHASED), shanghai(2027, 6, 1))


def test_console_hides_refund_action_after_30_days_of_issuance():
    issued = shanghai(2026, 10, 1, 9)
    cert = certificate(purchased_at=issued, issued_at=issued)
    assert refund_action_shown(cert, shanghai(2026, 10, 31, 23))
    assert not refund_action_shown(cert, shanghai(2026, 11, 1, 0, 1))


class TestWhatTheCustomerReads:
    """The explanation of each rule, word for word: the customer and the reviewer read it."""

    @pytest.mark.parametrize(
        ("changes", "at", "explanation"),
        [
            ({"status": "refunded"}, PURCHASED, "the certificate is already refunded"),
            (
                {"free": True, "payments": []},
                PURCHASED,
                "free DV certificates are never refunded",
            ),
            (
                {"payments": [{"channel": "voucher", "amount": "9.00", "reference": "v"}]},
                PURCHASED,
                "nothing was paid outside vouchers, and vouchers are not returned",
            ),
            (
                {"expires_at": shanghai(2026, 12, 1)},
                shanghai(2026, 12, 1),
                "the certificate has expired",
            ),
            (
                {"expires_at": shanghai(2026, 12, 4)},
                shanghai(2026, 11, 21),
                "it expires in 13 calendar days; requests must come at least 15 days before expiry",
            ),
            (
                {"issued_at": PURCHASED},
                shanghai(2026, 12, 19),
                "issued 29 calendar days ago; issued certificates are refunded only within 28 days",
            ),
            (
                {"issued_at": PURCHASED},
                shanghai(2026, 12, 18),
                "issued 28 calendar days ago; a reviewer must approve, and the certificate is "
                "revoked before the money is returned",
            ),
            (
                {"validation": "validated"},
                PURCHASED,
                "domain validation has already passed for this unissued certificate",
            ),
            (
                {},
                shanghai(2026, 11, 25),
                "unissued and bought 5 calendar days ago: refunded at once",
            ),
            (
                {},
                shanghai(2026, 11, 26),
                "unissued and bought 6 calendar days ago; a reviewer must approve",
            ),
        ],
    )
    def test_each_rule_explains_itself(self, changes, at, explanation):
        assert evaluate(certificate(purchased_at=PURCHASED, **changes), at).explanation == (
            explanation
        )

    def test_the_expiry_warning_counts_business_days(self):
        cert = certificate(purchased_at=PURCHASED, expires_at=shanghai(2026, 12, 12))
        decision = evaluate(cert, shanghai(2026, 11, 26, 9))
        assert decision.warnings == [
            "only 11 business days remain before the certificate expires; "
            "the review may not finish before it expires"
        ]

    def test_no_expiry_warning_when_expiry_is_the_reviews_last_day(self):
        end = BusinessCalendar().add_business_days(date(2026, 11, 26), 15).day
        expires = datetime.combine(end, datetime.min.time(), tzinfo=PURCHASED.tzinfo)
        cert = certificate(purchased_at=PURCHASED, expires_at=expires + timedelta(hours=12))
        assert evaluate(cert, shanghai(2026, 11, 26, 9)).warnings == []
        earlier = certificate(purchased_at=PURCHASED, expires_at=expires - timedelta(hours=12))
        assert len(evaluate(earlier, shanghai(2026, 11, 26, 9)).warnings) == 1

    def test_refused_times_say_why(self):
        cert = certificate(purchased_at=PURCHASED)
        with pytest.raises(ValueError, match=r"^now must be timezone-aware$"):
            evaluate(cert, datetime(2026, 11, 21))
        with pytest.raises(ValueError, match=r"^purchased after the request$"):
            evaluate(cert, PURCHASED - timedelta(seconds=1))


class TestStillRefundable:
    """The re-check before an approval is carried out: only what can change during a review."""

    def test_a_valid_request_is_still_refundable(self):
        assert still_refundable(certificate(purchased_at=PURCHASED), shanghai(2026, 12, 1)) is None

    def test_near_expiry_is_not_judged_again(self):
        cert = certificate(purchased_at=PURCHASED, expires_at=shanghai(2026, 12, 10))
        assert evaluate(cert, shanghai(2026, 12, 1)).rule is RuleId.NEAR_EXPIRY
        assert still_refundable(cert, shanghai(2026, 12, 1)) is None

    @pytest.mark.parametrize(
        ("changes", "at", "rule", "explanation"),
        [
            (
                {"expires_at": shanghai(2026, 12, 10)},
                shanghai(2026, 12, 10),
                RuleId.EXPIRED,
                "the certificate has expired",
            ),
            (
                {"status": "revoked"},
                PURCHASED,
                RuleId.ALREADY_REFUNDED,
                "the certificate is already revoked",
            ),
            (
                {"issued_at": PURCHASED},
                shanghai(2026, 12, 19),
                RuleId.ISSUED_OVER_28_DAYS,
                "issued 29 calendar days ago; issued certificates are refunded only within 28 days",
            ),
        ],
    )
    def test_what_denies_it_now(self, changes, at, rule, explanation):
        cert = certificate(purchased_at=PURCHASED, **changes)
        assert still_refundable(cert, at) == (rule, explanation)

    def test_the_free_and_voucher_rules_are_not_rechecked(self):
        free = certificate(purchased_at=PURCHASED, free=True, payments=[])
        assert still_refundable(free, PURCHASED) is None


class TestAssess:
    def test_an_auto_approval_has_no_deadline(self):
        decision, deadline = assess(certificate(purchased_at=PURCHASED), shanghai(2026, 11, 21))
        assert decision.rule is RuleId.UNISSUED_WITHIN_5_DAYS and deadline is None

    def test_a_review_gets_the_deadline_of_the_same_day(self):
        cert = certificate(purchased_at=PURCHASED)
        at = shanghai(2026, 11, 26, 9)
        decision, deadline = assess(cert, at)
        assert decision == evaluate(cert, at)
        assert deadline == review_deadline(cert, at)[0]

    def test_the_calendar_given_is_the_one_counted(self):
        cert = certificate(purchased_at=PURCHASED)
        at = shanghai(2026, 11, 26, 9)
        thailand = BusinessCalendar("TH")  # Dec 5 and Dec 10 are public holidays there
        here = review_deadline(cert, at)[0]
        there = review_deadline(cert, at, calendar=thailand)[0]
        assert there > here
        assert assess(cert, at, calendar=thailand)[1] == there
