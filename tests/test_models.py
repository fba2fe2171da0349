"""Validation of the certificate record, requests and support contacts."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from domain.certificates import Certificate, PaymentLeg
from tests.factories import certificate, seed_record, shanghai
from workflows.contract import RefundRequest, SupportContact

PURCHASED = shanghai(2026, 11, 20)


def record(**changes):
    data = seed_record(certificate(purchased_at=PURCHASED))
    data.update(changes)
    return data


class TestAmounts:
    @pytest.mark.parametrize("amount", ["199.00", "0.01", "12", Decimal("3.5")])
    def test_decimal_amounts_are_kept_exact(self, amount):
        leg = PaymentLeg(channel="alipay", amount=amount, reference="r")
        assert leg.amount == Decimal(str(amount))
        assert leg.amount.as_tuple().exponent == -2

    @pytest.mark.parametrize(
        ("amount", "message"),
        [
            (199.0, "never floats"),
            ("0", "greater than 0"),
            ("-5.00", "greater than 0"),
            ("1.005", "more than 2 decimal places"),
            ("NaN", "finite"),
            ("abc", "valid decimal"),
        ],
    )
    def test_bad_amounts_are_refused(self, amount, message):
        with pytest.raises(ValidationError, match=message):
            PaymentLeg(channel="alipay", amount=amount, reference="r")

    def test_unknown_channel_is_refused(self):
        with pytest.raises(ValidationError, match="channel"):
            PaymentLeg(channel="paypal", amount="1.00", reference="r")


class TestCertificate:
    def test_naive_times_are_refused(self):
        with pytest.raises(ValidationError, match="timezone"):
            Certificate.model_validate(record(purchased_at="2026-11-20T10:00:00"))

    def test_issued_before_purchase_is_refused(self):
        with pytest.raises(ValidationError, match="before purchased_at"):
            Certificate.model_validate(
                record(issued_at="2026-11-01T10:00:00+08:00", validation="validated")
            )

    def test_issued_needs_validation_and_expiry(self):
        with pytest.raises(ValidationError, match="validated"):
            Certificate.model_validate(record(issued_at="2026-11-21T10:00:00+08:00"))
        with pytest.raises(ValidationError, match="needs expires_at"):
            Certificate.model_validate(
                record(
                    issued_at="2026-11-21T10:00:00+08:00", validation="validated", expires_at=None
                )
            )

    def test_free_certificate_cannot_have_paid_legs(self):
        with pytest.raises(ValidationError, match="free certificate"):
            Certificate.model_validate(record(free=True))

    def test_status_is_derived_from_issuance(self):
        assert certificate(purchased_at=PURCHASED).status == "paid"
        issued = certificate(purchased_at=PURCHASED, issued_at=PURCHASED)
        assert issued.status == "issued"

    def test_unknown_fields_are_refused(self):
        with pytest.raises(ValidationError, match="Extra inputs"):
            Certificate.model_validate(record(colour="blue"))

    @pytest.mark.parametrize("bad_id", ["", "has space", "a/b", "x" * 65, "-leading"])
    def test_identifiers_are_safe(self, bad_id):
        with pytest.raises(ValidationError):
            Certificate.model_validate(record(certificate_id=bad_id))


class TestSupportContact:
    @pytest.mark.parametrize(
        ("raw", "kind", "value"),
        [
            ("13800138000", "mobile", "13800138000"),
            ("+86 138-0013-8000", "mobile", "13800138000"),
            ("8613800138000", "mobile", "13800138000"),
            ("alice_01", "dingtalk", "alice_01"),
            ("dingtalk:bob.w", "dingtalk", "bob.w"),
        ],
    )
    def test_valid_contacts(self, raw, kind, value):
        contact = SupportContact.model_validate(raw)
        assert (contact.kind, contact.value) == (kind, value)

    @pytest.mark.parametrize(
        "raw", ["12800138000", "1380013800", "138001380001", "+1 415 555 0100", "a", "名字", "x y"]
    )
    def test_invalid_contacts(self, raw):
        with pytest.raises(ValidationError):
            SupportContact.model_validate(raw)

    def test_masked_forms_hide_the_contact(self):
        assert SupportContact.model_validate("13800138000").masked() == "138****8000"
        assert "ice" not in SupportContact.model_validate("alice_01").masked()


class TestRefundRequest:
    def base(self, **changes):
        data = {"certificate_id": "cas-1", "requester": "user-1", "reason": "no_longer_needed"}
        data.update(changes)
        return data

    def test_the_five_reasons(self):
        for reason in [
            "install_failed",
            "validation_stuck",
            "renewal_type_mismatch",
            "no_longer_needed",
        ]:
            assert RefundRequest.model_validate(self.base(reason=reason)).reason == reason
        assert RefundRequest.model_validate(self.base(reason="other", feedback="too slow"))

    def test_other_needs_feedback(self):
        with pytest.raises(ValidationError, match="needs feedback"):
            RefundRequest.model_validate(self.base(reason="other", feedback="   "))

    def test_unknown_reason_is_refused(self):
        with pytest.raises(ValidationError, match="reason"):
            RefundRequest.model_validate(self.base(reason="bored"))

    def test_contact_only_with_support_reasons(self):
        ok = RefundRequest.model_validate(
            self.base(reason="install_failed", support_contact="13800138000")
        )
        assert ok.support_contact is not None
        with pytest.raises(ValidationError, match="support contact"):
            RefundRequest.model_validate(self.base(support_contact="13800138000"))

    def test_feedback_is_bounded(self):
        with pytest.raises(ValidationError):
            RefundRequest.model_validate(self.base(reason="other", feedback="x" * 2001))


def test_times_keep_their_instant():
    cert = certificate(purchased_at=datetime.fromisoformat("2026-11-20T10:00:00+08:00"))
    assert cert.purchased_at == datetime.fromisoformat("2026-11-20T02:00:00+00:00")
