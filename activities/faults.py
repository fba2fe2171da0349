"""Fault injection for the simulated certificate authority, set by ``REFUNDS_FAULT_*`` settings
(the payment channels' faults strike at the protocol level, in ``simulators.faults``).

Transient faults strike either before the effect (nothing happened) or after it (the effect
happened but its answer was lost), the second being the case that tests idempotency. The CA
refuses to revoke the certificates ``REFUNDS_FAULT_REJECT`` names as ``ca:<certificate>``.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from activities.gateways import CertificateAuthority
from domain.errors import RevocationRefusedError


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

    def refuses_revocation(self, certificate_id: str) -> bool:
        return f"ca:{certificate_id}" in self.rejected


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
