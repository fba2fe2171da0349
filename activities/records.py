"""System-of-record activities: a refund's certificate, its order, its revocation, repair orders.

Every change takes the refund id and is idempotent, so a retried activity finds its change made
and does nothing more. A failure a retry cannot fix (a conflict, a missing or inconsistent
certificate) is raised as a non-retryable ``ApplicationError`` of a type the workflow recognises.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.gateways import CertificateAuthority
from activities.payloads import (
    CertificateChange,
    HoldRequest,
    ManualRelease,
    PaymentGrant,
    RepairClaim,
)
from activities.refused import refused, scheduled_by_the_refund
from domain.certificates import Certificate, CertificateStatus
from domain.errors import (
    CERTIFICATE_DATA_INVALID,
    CERTIFICATE_ISSUED,
    CERTIFICATE_NOT_FOUND,
    REVOCATION_REFUSED,
    STATUS_CONFLICT,
    CertificateIssuedError,
    CertificateNotFoundError,
    PaymentUnauthorizedError,
    RevocationRefusedError,
    StatusConflictError,
)
from domain.values import describe_validation_error

if TYPE_CHECKING:
    from activities.authorization import PaymentAuthority
    from storage.certificates import CertificateStore
    from storage.payment_refusals import PaymentRefusals
    from storage.repairs import RepairOrders


class RecordActivities:
    def __init__(
        self,
        store: CertificateStore,
        authority: CertificateAuthority,
        repairs: RepairOrders,
        payments: PaymentAuthority,
        refusals: PaymentRefusals,
    ) -> None:
        self.store = store
        self.authority = authority
        self.repairs = repairs
        self.payments = payments
        self.refusals = refusals

    @activity.defn(name="load_certificate")
    def load_certificate(self, certificate_id: str) -> Certificate:
        with _conflicts_are_final():
            try:
                return self.store.get(certificate_id)
            except ValidationError as err:
                raise ApplicationError(
                    f"certificate data is inconsistent: {describe_validation_error(err)}",
                    type=CERTIFICATE_DATA_INVALID,
                    non_retryable=True,
                ) from err

    @activity.defn(name="mark_refund_pending")
    def mark_refund_pending(self, hold: HoldRequest) -> CertificateStatus:
        """Hold the certificate for the customer's signed request, registered with it."""
        with _conflicts_are_final(), self._refusals_recorded(hold.refund_id):
            return self.payments.hold(hold, activity.info().workflow_run_id)

    @activity.defn(name="authorize_payment")
    def authorize_payment(self, grant: PaymentGrant) -> str:
        """Record, once, the evidence that this refund may pay (checked here, not believed);
        returns who approved it."""
        with _conflicts_are_final(), self._refusals_recorded(grant.refund_id):
            found = self.payments.authorize(grant, activity.info().workflow_run_id)
        activity.logger.info(
            "payment authorized",
            extra={"refund_id": grant.refund_id, "evidence": found.evidence},
        )
        return found.approved_by or ""

    @activity.defn(name="record_manual_release")
    def record_manual_release(self, release: ManualRelease) -> None:
        """An operator revoked the certificate or cancelled its order by hand (signed resolve)."""
        with _conflicts_are_final(), self._refusals_recorded(release.refund_id):
            self.payments.check_resolve(release.refund_id, release.certificate_id, release.resolve)
            self.store.released_by_hand(release.certificate_id, release.refund_id, release.revoke)

    @activity.defn(name="restore_certificate")
    def restore_certificate(self, change: CertificateChange) -> CertificateStatus:
        with _conflicts_are_final(), self._refusals_recorded(change.refund_id):
            return self.store.restore(change.certificate_id, change.refund_id)

    @activity.defn(name="mark_refunded")
    def mark_refunded(self, change: CertificateChange) -> CertificateStatus:
        with _conflicts_are_final(), self._refusals_recorded(change.refund_id):
            return self.store.mark_refunded(change.certificate_id, change.refund_id)

    @activity.defn(name="cancel_order")
    def cancel_order(self, change: CertificateChange) -> str:
        with _conflicts_are_final(), self._refusals_recorded(change.refund_id):
            self.payments.check_release(change.refund_id, change.certificate_id)
            return self.store.cancel_order(change.certificate_id, change.refund_id)

    @activity.defn(name="revoke_certificate")
    def revoke_certificate(self, change: CertificateChange) -> None:
        try:
            with _conflicts_are_final(), self._refusals_recorded(change.refund_id):
                self.payments.check_release(change.refund_id, change.certificate_id)
                self.authority.revoke(change.certificate_id, change.refund_id)
        except RevocationRefusedError as err:
            raise ApplicationError(str(err), type=REVOCATION_REFUSED, non_retryable=True) from err
        activity.logger.info(
            "certificate revoked",
            extra={"refund_id": change.refund_id, "certificate_id": change.certificate_id},
        )

    @activity.defn(name="claim_repair_order")
    def claim_repair_order(self, claim: RepairClaim) -> bool:
        """Whether ``refunds repair`` recorded this order (and this run now holds it)."""
        run_id = activity.info().workflow_run_id or ""
        with self._refusals_recorded(claim.refund_id):
            return self.repairs.claim(
                claim.refund_id, claim.certificate_id, claim.operator, claim.action, run_id
            )

    @contextmanager
    def _refusals_recorded(self, refund_id: str) -> Iterator[None]:
        """Run the block only for the refund's own workflow; a refusal is recorded and final."""
        try:
            scheduled_by_the_refund(refund_id)
            yield
        except PaymentUnauthorizedError as err:
            reason = str(err)
            raise refused(
                self.refusals, refund_id=refund_id, leg_index=None, reason=reason
            ) from None


@contextmanager
def _conflicts_are_final() -> Iterator[None]:
    """Turn a conflict into a non-retryable failure: the same call would conflict again."""
    try:
        yield
    except CertificateIssuedError as err:
        raise ApplicationError(str(err), type=CERTIFICATE_ISSUED, non_retryable=True) from err
    except StatusConflictError as err:
        raise ApplicationError(str(err), type=STATUS_CONFLICT, non_retryable=True) from err
    except CertificateNotFoundError as err:
        raise ApplicationError(str(err), type=CERTIFICATE_NOT_FOUND, non_retryable=True) from err
