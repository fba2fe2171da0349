"""Failures that cross layers: the domain's exceptions, and the failure types the workflow reads.

An activity turns a domain exception into a non-retryable ``ApplicationError`` of one of these
types; the workflow tells them apart by type, never by message.
"""

from __future__ import annotations

CERTIFICATE_NOT_FOUND = "CertificateNotFound"
STATUS_CONFLICT = "StatusConflict"
PAYMENT_REJECTED = "PaymentRejected"
REVOCATION_REFUSED = "RevocationRefused"
CERTIFICATE_DATA_INVALID = "CertificateDataInvalid"
RULES_FAILED = "RulesFailed"
"""The rules could not be applied to a certificate: its data is inconsistent."""
ACTION_REFUSED = "ActionRefused"
"""An update's validator refused a person's action."""
PAYMENT_UNAUTHORIZED = "PaymentUnauthorized"
"""The system of record found no evidence that this refund may pay this leg: nothing was paid."""
PAYMENT_ATTENTION = "PaymentNeedsAttention"
"""The channel refused for now for a reason a person must fix (the merchant's balance is short);
a retry after the fix sends the same request again."""
PAYMENT_UNKNOWN = "PaymentOutcomeUnknown"
"""The channel's answer was lost or could not be believed; the next attempt asks it first."""
CERTIFICATE_ISSUED = "CertificateIssued"
"""The certificate was issued since the decision: its order is not cancelled, it is revoked."""

NON_RETRYABLE = [
    CERTIFICATE_NOT_FOUND,
    STATUS_CONFLICT,
    PAYMENT_REJECTED,
    REVOCATION_REFUSED,
    CERTIFICATE_DATA_INVALID,
    PAYMENT_UNAUTHORIZED,
    PAYMENT_ATTENTION,
    CERTIFICATE_ISSUED,
]
"""What no retry can fix: a step's retry policy stops at these."""


class CertificateNotFoundError(LookupError):
    """No certificate with that id in the system of record."""


class StatusConflictError(RuntimeError):
    """The certificate is held by another refund, or is in a state this change cannot apply to."""


class SeedConflictError(ValueError):
    """A record in a seed file differs from what the system of record already holds."""


class PaymentRejectedError(Exception):
    """The channel refuses the return for good (a closed account, a cancelled card)."""


class PaymentUnauthorizedError(Exception):
    """The system of record refuses this payment (or release): no evidence that it may happen."""


class CertificateIssuedError(StatusConflictError):
    """The certificate was issued since the decision: revoke it instead of cancelling its order."""


class RevocationRefusedError(Exception):
    """The certificate authority refuses to revoke the certificate for good."""
