"""Fault injection for the sandbox channels and CA, set by ``REFUNDS_FAULT_*`` settings.

Transient faults strike either before the effect (nothing happened) or after it (the effect
happened but its answer was lost), the second being the case that tests idempotency. Permanent
refusals name payment references, optionally per channel (``alipay:ali-7781``), or certificates
the CA refuses to revoke (``ca:cas-0001``).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from activities.gateways import CertificateAuthority, ChannelTransaction, PaymentGateway
from activities.payloads import PaymentReturnRequest
from domain.certificates import Channel
from domain.errors import PaymentRejectedError, RevocationRefusedError


class InjectedFaultError(ConnectionError):
    """A transient failure put there on purpose; the activity's retry policy handles it."""


@dataclass
class Faults:
    transient_rate: float = 0.0
    latency_seconds: float = 0.0
    rejected: frozenset[str] = frozenset()
    rng: random.Random = field(default_factory=random.Random)

    @property
    def active(self) -> bool:
        return bool(self.transient_rate or self.latency_seconds or self.rejected)

    def before(self, what: str) -> None:
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        if self.rng.random() < self.transient_rate / 2:
            raise InjectedFaultError(f"injected: {what} unavailable")

    def after(self, what: str) -> None:
        if self.rng.random() < self.transient_rate / 2:
            raise InjectedFaultError(f"injected: lost the answer of {what}")

    def refuses(self, channel: Channel, reference: str) -> bool:
        return reference in self.rejected or f"{channel.value}:{reference}" in self.rejected

    def refuses_revocation(self, certificate_id: str) -> bool:
        return f"ca:{certificate_id}" in self.rejected


class FaultyGateway:
    def __init__(self, inner: PaymentGateway, channel: Channel, faults: Faults) -> None:
        self.inner = inner
        self.channel = channel
        self.faults = faults

    def return_payment(self, request: PaymentReturnRequest) -> ChannelTransaction:
        what = f"{self.channel.value} return"
        self.faults.before(what)
        if self.faults.refuses(self.channel, request.reference):
            raise PaymentRejectedError(
                f"{self.channel.value} refused the return: account closed or card cancelled"
            )
        receipt = self.inner.return_payment(request)
        self.faults.after(what)
        return receipt


class FaultyAuthority:
    def __init__(self, inner: CertificateAuthority, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults

    def revoke(self, certificate_id: str, refund_id: str) -> None:
        self.faults.before("revocation")
        if self.faults.refuses_revocation(certificate_id):
            raise RevocationRefusedError(
                f"the certificate authority refused to revoke {certificate_id}"
            )
        self.inner.revoke(certificate_id, refund_id)
        self.faults.after("revocation")
