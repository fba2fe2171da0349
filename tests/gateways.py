"""Payment channels, a certificate authority and an order system that misbehave on purpose,
wrapped around the sandbox ones."""

from __future__ import annotations

from sqlalchemy import Engine

from activities.gateways import CertificateAuthority, ChannelTransaction, PaymentGateway
from activities.payloads import PaymentReturnRequest
from domain.errors import PaymentRejectedError, StatusConflictError
from storage.certificates import CertificateStore


class ChannelDown:
    """A channel that fails transiently (no answer) until it is brought back."""

    def __init__(self, inner: PaymentGateway, message: str = "gateway unreachable") -> None:
        self.inner = inner
        self.message = message
        self.down = True
        self.calls = 0

    def return_payment(self, request: PaymentReturnRequest) -> ChannelTransaction:
        self.calls += 1
        if self.down:
            raise ConnectionError(self.message)
        return self.inner.return_payment(request)


class RejectsOnce:
    """A channel that refuses the first return for good, as a closed account would."""

    def __init__(self, inner: PaymentGateway) -> None:
        self.inner = inner
        self.refused = False

    def return_payment(self, request: PaymentReturnRequest) -> ChannelTransaction:
        if not self.refused:
            self.refused = True
            raise PaymentRejectedError("the Alipay account is closed")
        return self.inner.return_payment(request)


class AuthorityDown:
    """A certificate authority that does not answer until it is brought back."""

    def __init__(self, inner: CertificateAuthority, message: str = "ca unreachable") -> None:
        self.inner = inner
        self.message = message
        self.down = True
        self.calls = 0

    def revoke(self, certificate_id: str, refund_id: str) -> None:
        self.calls += 1
        if self.down:
            raise ConnectionError(self.message)
        self.inner.revoke(certificate_id, refund_id)


class OrderSystemDown(CertificateStore):
    """The system of record with an order system that fails: transiently (``message``) while
    ``down``, or for good with a conflict (``conflict``)."""

    def __init__(
        self, engine: Engine, message: str = "order system unreachable", conflict: str = ""
    ) -> None:
        super().__init__(engine)
        self.message = message
        self.conflict = conflict
        self.down = True

    def cancel_order(self, certificate_id: str, refund_id: str) -> str:
        if self.conflict:
            raise StatusConflictError(self.conflict)
        if self.down:
            raise ConnectionError(self.message)
        return super().cancel_order(certificate_id, refund_id)
