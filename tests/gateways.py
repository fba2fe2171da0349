"""Payment channels, a certificate authority and an order system that misbehave on purpose,
wrapped around the real adapters (in front of the local simulators) and the simulated CA."""

from __future__ import annotations

import asyncio

from sqlalchemy import Engine

from activities.gateways import (
    CertificateAuthority,
    ChannelAnswer,
    ChannelOutcome,
    ChannelRefund,
    ChannelUnknownError,
    PaymentChannel,
)
from domain.errors import StatusConflictError
from storage.certificates import CertificateStore


class WrappedChannel:
    """A channel that behaves as ``inner`` unless told otherwise."""

    def __init__(self, inner: PaymentChannel) -> None:
        self.inner = inner
        self.channel = inner.channel

    def request_id(self, idempotency_key: str) -> str:
        return self.inner.request_id(idempotency_key)

    async def refund(self, order: ChannelRefund) -> ChannelAnswer:
        return await self.inner.refund(order)

    async def lookup(self, order: ChannelRefund) -> ChannelAnswer | None:
        return await self.inner.lookup(order)


class ChannelDown(WrappedChannel):
    """A channel that does not answer (an unknown outcome) until it is brought back; ``calls``
    counts every call, a lookup included."""

    def __init__(self, inner: PaymentChannel, message: str = "gateway unreachable") -> None:
        super().__init__(inner)
        self.message = message
        self.down = True
        self.calls = 0

    async def refund(self, order: ChannelRefund) -> ChannelAnswer:
        self._call()
        return await self.inner.refund(order)

    async def lookup(self, order: ChannelRefund) -> ChannelAnswer | None:
        self._call()
        return await self.inner.lookup(order)

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise ChannelUnknownError(self.message)


class RejectsOnce(WrappedChannel):
    """A channel that refuses the first return for good, as a closed account would."""

    def __init__(self, inner: PaymentChannel) -> None:
        super().__init__(inner)
        self.refused = False

    async def refund(self, order: ChannelRefund) -> ChannelAnswer:
        if not self.refused:
            self.refused = True
            return ChannelAnswer(
                ChannelOutcome.REFUSED, code="ACQ.TRADE_NOT_ALLOW_REFUND", reason="account closed"
            )
        return await self.inner.refund(order)


class GatedChannel(WrappedChannel):
    """A channel whose returns wait at a gate, so the refund stays in ``refunding``."""

    def __init__(self, inner: PaymentChannel) -> None:
        super().__init__(inner)
        self.entered = asyncio.Event()
        self.open = asyncio.Event()

    async def refund(self, order: ChannelRefund) -> ChannelAnswer:
        self.entered.set()
        await asyncio.wait_for(self.open.wait(), 30)
        return await self.inner.refund(order)


class SlowToAnswer(WrappedChannel):
    """A channel whose answer to a return comes ``seconds`` after the channel acted, so its
    settlement (and webhook) can come before the refund has heard that the return was taken."""

    def __init__(self, inner: PaymentChannel, seconds: float) -> None:
        super().__init__(inner)
        self.seconds = seconds

    async def refund(self, order: ChannelRefund) -> ChannelAnswer:
        answer = await self.inner.refund(order)
        await asyncio.sleep(self.seconds)
        return answer


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
