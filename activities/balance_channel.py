"""The account balance as a payment channel: a return posts a refund entry to the customer's
balance in the journal, once per leg's idempotency key, which is also its request id.

The money is the order's: amount, currency and owner come from the ``ChannelRefund`` the caller
built from the system of record. The database is synchronous, so each call runs in a thread.
"""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import SQLAlchemyError

from activities.gateways import ChannelAnswer, ChannelOutcome, ChannelRefund, ChannelUnknownError
from domain.certificates import Channel
from storage.journal import MAX_MEMO, Journal, JournalEntry, JournalError, KeyConflictError

LEG_SEPARATOR = ":leg-"


def transaction_id(entry: JournalEntry) -> str:
    return f"journal-{entry.entry_id}"


def refund_id_of(idempotency_key: str) -> str:
    """The refund a leg's key (``<refund id>:leg-<n>``) belongs to."""
    refund_id, separator, _ = idempotency_key.rpartition(LEG_SEPARATOR)
    return refund_id if separator else idempotency_key


class AccountBalanceChannel:
    """Returns a leg to the customer's account balance by posting it to the journal."""

    channel = Channel.ACCOUNT_BALANCE

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def request_id(self, idempotency_key: str) -> str:
        return idempotency_key

    async def refund(self, order: ChannelRefund) -> ChannelAnswer:
        """Post the leg (or find it posted under its key): returned, with ``journal-<entry>``.
        A key already posted for another amount, owner or currency, or an order the journal
        cannot hold, is refused; a database that fails to answer is ``ChannelUnknownError``."""
        try:
            entry, _ = await asyncio.to_thread(
                self.journal.post_refund,
                order.idempotency_key,
                refund_id_of(order.idempotency_key),
                order.owner,
                order.amount,
                order.currency,
                order.reason[:MAX_MEMO],
            )
        except KeyConflictError as err:
            return ChannelAnswer(ChannelOutcome.REFUSED, code="key_conflict", reason=str(err))
        except JournalError as err:
            return ChannelAnswer(ChannelOutcome.REFUSED, code="invalid_order", reason=str(err))
        except SQLAlchemyError as err:
            raise ChannelUnknownError(f"the journal did not answer: {type(err).__name__}") from err
        return returned(entry)

    async def lookup(self, order: ChannelRefund) -> ChannelAnswer | None:
        """The answer for the entry under the leg's key, or ``None`` if nothing was posted."""
        try:
            entry = await asyncio.to_thread(self.journal.find, order.idempotency_key)
        except SQLAlchemyError as err:
            raise ChannelUnknownError(f"the journal did not answer: {type(err).__name__}") from err
        return None if entry is None else returned(entry)


def returned(entry: JournalEntry) -> ChannelAnswer:
    return ChannelAnswer(
        ChannelOutcome.RETURNED, transaction_id=transaction_id(entry), at=entry.posted_at
    )
