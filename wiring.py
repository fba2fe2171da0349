"""What the activities talk to, and the activities a worker registers.

``Collaborators`` holds the system of record and the outside world. The payment channels speak
their real protocols: Alipay's OpenAPI gateway and the bank provider's refund API at the
configured addresses (unset: the local simulators ``refunds up`` runs), and the account balance
as the system of record's own journal. The certificate authority, support desk and notices are
still simulated in the system of record, with the CA's faults ``REFUNDS_FAULT_REJECT`` asks for.
Tests and the benchmark swap parts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from temporalio.client import Client

from activities.alipay import AlipayChannel
from activities.assessment import AssessmentActivities, RefundTerms
from activities.authorization import Clock, PaymentAuthority, wall_clock
from activities.balance_channel import AccountBalanceChannel
from activities.bank import BankChannel
from activities.customers import CustomerActivities
from activities.evidence import AuthorityTerms
from activities.faults import Faults, FaultyAuthority
from activities.gateways import CertificateAuthority, Notifier, PaymentChannel, SupportDesk
from activities.payments import PaymentActivities
from activities.people import PeopleActivities
from activities.reconciliation import ReconciliationActivities
from activities.records import RecordActivities
from activities.simulated import (
    SimulatedCertificateAuthority,
    SimulatedNotifier,
    SimulatedSupportDesk,
)
from activities.temporal_history import HistoryActivities
from domain.certificates import Channel
from settings import Settings
from storage.certificates import CertificateStore
from storage.database import open_database
from storage.journal import Journal
from storage.journal_check import journal_against_ledger
from storage.ledger import Ledger
from storage.payment_attempts import PaymentAttempts
from storage.payment_refusals import PaymentRefusals
from storage.people import PeopleDirectory
from storage.reconcile import reconcile_with_refunds
from storage.repairs import RepairOrders

PAYABLE_CHANNELS = (Channel.ALIPAY, Channel.BANK, Channel.ACCOUNT_BALANCE)


@dataclass
class Collaborators:
    store: CertificateStore
    ledger: Ledger
    repairs: RepairOrders
    channels: dict[Channel, PaymentChannel]
    authority: CertificateAuthority
    support: SupportDesk
    notifier: Notifier
    people: PeopleDirectory
    attempts: PaymentAttempts
    refusals: PaymentRefusals
    clock: Clock = field(default=wall_clock)
    """The time the system of record's checks run at (tests move it with the refund's)."""


def default_collaborators(settings: Settings) -> Collaborators:
    """The system of record at ``REFUNDS_DATABASE_URL`` and the outside world as configured.

    Reads the channels' keys (``SecretFileError``, one line, when one is missing or open to
    others)."""
    engine = open_database(settings.database_url)
    store = CertificateStore(engine)
    faults = Faults(
        transient_rate=settings.fault_transient_rate,
        latency_seconds=settings.fault_latency_ms / 1000,
        rejected=frozenset(settings.fault_reject),
    )
    channels: dict[Channel, PaymentChannel] = {
        Channel.ALIPAY: AlipayChannel.from_settings(settings),
        Channel.BANK: BankChannel.from_settings(settings),
        Channel.ACCOUNT_BALANCE: AccountBalanceChannel(Journal(engine)),
    }
    authority: CertificateAuthority = SimulatedCertificateAuthority(engine, store)
    return Collaborators(
        store=store,
        ledger=Ledger(engine),
        repairs=RepairOrders(engine),
        channels=channels,
        authority=FaultyAuthority(authority, faults) if faults.active else authority,
        support=SimulatedSupportDesk(engine),
        notifier=SimulatedNotifier(engine),
        people=PeopleDirectory(engine),
        attempts=PaymentAttempts(engine),
        refusals=PaymentRefusals(engine),
    )


def refund_terms(settings: Settings) -> RefundTerms:
    return RefundTerms(
        timezone=settings.timezone,
        holiday_country=settings.holiday_country,
        calendar_file=settings.calendar_file,
        timeout_action=settings.review_timeout_action,
        reviewers=tuple(settings.reviewers),
        operators=tuple(settings.operators),
        fallback_to_balance=settings.fallback_to_balance,
        payment_patience_seconds=settings.payment_patience.total_seconds(),
        history_event_limit=settings.history_event_limit,
        history_bytes_limit=settings.history_bytes_limit,
        settlement_poll_seconds=settings.settlement_poll.total_seconds(),
        settlement_patience_days=settings.settlement_patience,
    )


def activities(
    collaborators: Collaborators, settings: Settings, client: Client
) -> list[Callable[..., Any]]:
    """Every activity the refund and reconciliation workflows call, bound to their collaborators."""
    assessment = AssessmentActivities(refund_terms(settings))
    authority = PaymentAuthority(
        collaborators.store,
        AuthorityTerms(
            timezone=settings.timezone,
            timeout_action=settings.review_timeout_action,
            fallback_to_balance=settings.fallback_to_balance,
        ),
        lambda: assessment.calendar,
        collaborators.clock,
    )
    records = RecordActivities(
        collaborators.store,
        collaborators.authority,
        collaborators.repairs,
        authority,
        collaborators.refusals,
    )
    payments = PaymentActivities(
        collaborators.channels,
        authority,
        collaborators.ledger,
        collaborators.attempts,
        collaborators.refusals,
    )
    customers = CustomerActivities(collaborators.support, collaborators.notifier)
    history = HistoryActivities(client)
    people = PeopleActivities(collaborators.people)
    engine = collaborators.store.engine
    books = ReconciliationActivities(
        partial(reconcile_with_refunds, engine),
        client,
        journal=partial(journal_against_ledger, engine),
        refused=partial(collaborators.refusals.count_since, timedelta(days=1)),
    )
    return [
        assessment.assess,
        assessment.recheck,
        assessment.count_review_deadline,
        assessment.count_settlement_deadline,
        records.load_certificate,
        records.mark_refund_pending,
        records.authorize_payment,
        records.record_manual_release,
        records.restore_certificate,
        records.mark_refunded,
        records.cancel_order,
        records.revoke_certificate,
        records.claim_repair_order,
        payments.return_to_alipay,
        payments.return_to_bank,
        payments.return_to_account_balance,
        payments.record_manual_return,
        payments.check_settlement,
        customers.open_support_ticket,
        customers.notify_customer,
        history.find_cancellation_request,
        people.load_people,
        books.check_books,
    ]
