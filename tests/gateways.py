"""Payment channels that misbehave on purpose, wrapped around the sandbox ones."""

from __future__ import annotations

from activities.gateways import ChannelTransaction, PaymentGateway
from activities.payloads import PaymentReturnRequest
from domain.errors import PaymentRejectedError


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
