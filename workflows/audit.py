"""A refund's audit trail, bounded so that nothing a client sends can make it, or the status that
carries it, too large to query, complete or continue as new.

Refused actions past the first ``MAX_REFUSALS`` are counted, not kept. Past ``MAX_ENTRIES`` entries
or ``MAX_TEXT_BYTES`` of text, the oldest entries after the first ``KEPT_HEAD`` (submission and
decision) give way, and are counted too.
"""

from __future__ import annotations

from datetime import datetime

from domain.values import MAX_TEXT
from workflows.contract import AuditEntry

MAX_REFUSALS = 50
MAX_ENTRIES = 200
MAX_TEXT_BYTES = 120_000
KEPT_HEAD = 20


def bounded(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


class AuditTrail:
    def __init__(
        self,
        entries: list[AuditEntry] | None = None,
        refusals_not_recorded: int = 0,
        omitted: int = 0,
    ) -> None:
        self.entries = list(entries or [])
        self.refusals_not_recorded = refusals_not_recorded
        self.omitted = omitted
        self._refusals = sum(1 for entry in self.entries if not entry.accepted)
        self._text_bytes = sum(_size(entry) for entry in self.entries)

    def record(
        self, at: datetime, actor: str, action: str, accepted: bool = True, detail: str = ""
    ) -> None:
        if not accepted:
            if self._refusals >= MAX_REFUSALS:
                self.refusals_not_recorded += 1
                return
            self._refusals += 1
        entry = AuditEntry(
            at=at,
            actor=bounded(actor, 128),
            action=bounded(action, 200),
            accepted=accepted,
            detail=bounded(detail),
        )
        self.entries.append(entry)
        self._text_bytes += _size(entry)
        while len(self.entries) > KEPT_HEAD + 1 and (
            len(self.entries) > MAX_ENTRIES or self._text_bytes > MAX_TEXT_BYTES
        ):
            dropped = self.entries.pop(KEPT_HEAD)
            self._text_bytes -= _size(dropped)
            self.omitted += 1


def _size(entry: AuditEntry) -> int:
    return len(entry.actor.encode()) + len(entry.action.encode()) + len(entry.detail.encode())
