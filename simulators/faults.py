"""Faults the simulators inject at the protocol level (``REFUNDS_FAULT_*``), or that a test scripts.

A transient fault strikes either before the effect (the channel answers 5xx, nothing happened) or
after it (the money moved and the answer is lost: the connection drops, or the answer comes too
late for the caller's timeout), the second being the case that proves a leg is paid once. A test
scripts exact faults with ``script``: each call takes the next one, then the random ones apply.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from domain.certificates import Channel

Fault = Literal["fail_before", "lose_answer", "bad_signature", "lose_webhook", "none"]


@dataclass
class ProtocolFaults:
    transient_rate: float = 0.0
    latency_seconds: float = 0.0
    refused: dict[str, str] = field(default_factory=dict)
    """Payment references this channel refuses for good, with the code it answers (empty: the
    channel's usual code for an account that cannot take the money)."""
    bad_signature_rate: float = 0.0
    settlement_fail: frozenset[str] = frozenset()
    """Bank references whose refund is accepted, then fails at settlement."""
    webhook_loss_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    scripted: deque[Fault] = field(default_factory=deque)

    def script(self, *faults: Fault) -> None:
        """The next calls strike these faults, in order (``none`` for a clean call)."""
        self.scripted.extend(faults)

    async def delay(self) -> None:
        if self.latency_seconds:
            await asyncio.sleep(self.latency_seconds)

    def transient(self) -> Fault:
        """This call's transient fault: ``fail_before``, ``lose_answer`` or ``none`` (a scripted
        ``bad_signature`` or ``lose_webhook`` waits for its own check)."""
        if self.scripted and self.scripted[0] in ("fail_before", "lose_answer", "none"):
            return self.scripted.popleft()
        roll = self.rng.random()
        if roll < self.transient_rate / 2:
            return "fail_before"
        if roll < self.transient_rate:
            return "lose_answer"
        return "none"

    def signature_fault(self) -> bool:
        if self.scripted and self.scripted[0] == "bad_signature":
            self.scripted.popleft()
            return True
        return self.rng.random() < self.bad_signature_rate

    def webhook_lost(self) -> bool:
        if self.scripted and self.scripted[0] == "lose_webhook":
            self.scripted.popleft()
            return True
        return self.rng.random() < self.webhook_loss_rate

    def refusal(self, reference: str) -> str | None:
        """The code this reference is refused with (``""``: the usual one), or ``None``."""
        return self.refused.get(reference)


def faults_for(
    channel: Channel,
    *,
    transient_rate: float,
    latency_ms: int,
    reject: Sequence[str],
    bad_signature_rate: float = 0.0,
    settlement_fail: Sequence[str] = (),
    webhook_loss_rate: float = 0.0,
) -> ProtocolFaults:
    """The faults ``REFUNDS_FAULT_*`` ask of ``channel``'s simulator. ``reject`` entries are
    ``REF``, ``channel:REF`` or ``channel:REF=CODE`` (``ca:`` entries are the CA's)."""
    refused: dict[str, str] = {}
    for entry in reject:
        scope, sep, rest = entry.partition(":")
        if sep and scope in {c.value for c in Channel} | {"ca"}:
            if scope != channel.value:
                continue
            entry = rest
        reference, _, code = entry.partition("=")
        if reference:
            refused[reference] = code
    return ProtocolFaults(
        transient_rate=transient_rate,
        latency_seconds=latency_ms / 1000,
        refused=refused,
        bad_signature_rate=bad_signature_rate,
        settlement_fail=frozenset(settlement_fail),
        webhook_loss_rate=webhook_loss_rate,
    )
