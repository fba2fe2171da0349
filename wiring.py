"""What the activities talk to, and the activities a worker registers.

``Collaborators`` holds the system of record and the outside world (payment channels, the CA,
support, notices). The default is the simulated outside world, recording every effect in the
system of record, with the faults ``REFUNDS_FAULT_*`` ask for. Tests and the benchmark swap parts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from temporalio.client import Client

from activities.assessment import AssessmentActivities, RefundTerms
from activities.customers import CustomerActivities
from activities.faults import Faults, FaultyAuthority, FaultyGateway
from activities.gateways import CertificateAuthority, Notifier, PaymentGateway, SupportDesk
from activities.payments import PaymentActivities
from activities.people import PeopleActivities
from activities.reconciliation import ReconciliationActivities
from activities.records import RecordActivities
from activities.simulated import (
    SimulatedCertificateAuthority,
    SimulatedNotifier,
    SimulatedPaymentChannel,
    SimulatedSupportDesk,
)
from activities.temporal_history import HistoryActivities
from domain.certificates import Channel
from settings import Settings
from storage.certificates import CertificateStore
from storage.database import open_database
from storage.ledger import Ledger
from storage.people import PeopleDirectory
from storage.reconcile import reconcile_with_refunds
from storage.repairs import RepairOrders

PAYABLE_CHANNELS = (Channel.ALIPAY, Channel.BANK, Channel.ACCOUNT_BALANCE)


@dataclass
class Collaborators:
    store: CertificateStore
    ledger: Ledger
    repairs: RepairOrders
    gateways: dict[Channel, PaymentGateway]
    authority: CertificateAuthority
    support: SupportDesk
    notifier: Notifier
    people: PeopleDirectory


def simulated_collaborators(settings: Settings) -> Collaborators:
    """The system of record at ``REFUNDS_DATABASE_URL`` and the simulated outside world."""
    engine = open_database(settings.database_url)
    store = CertificateStore(engine)
    faults = Faults(
        transient_rate=settings.fault_transient_rate,
        latency_seconds=settings.fault_latency_ms / 1000,
        rejected=frozenset(settings.fault_reject),
    )
    gateways: dict[Channel, PaymentGateway] = {}
    for channel in PAYABLE_CHANNELS:
        gateway: PaymentGateway = SimulatedPaymentChannel(engine, channel)
        gateways[channel] = FaultyGateway(gateway, channel, faults) if faults.active else gateway
    authority: CertificateAuthority = SimulatedCertificateAuthority(engine, store)
    return Collaborators(
        store=store,
        ledger=Ledger(engine),
        repairs=RepairOrders(engine),
        gateways=gateways,
        authority=FaultyAuthority(authority, faults) if faults.active else authority,
        support=SimulatedSupportDesk(engine),
        notifier=SimulatedNotifier(engine),
        people=PeopleDirectory(engine),
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
    )


def activities(
    collaborators: Collaborators, settings: Settings, client: Client
) -> list[Callable[..., Any]]:
    """Every activity the refund and reconciliation workflows call, bound to their collaborators."""
    records = RecordActivities(collaborators.store, collaborators.authority, collaborators.repairs)
    payments = PaymentActivities(collaborators.gateways, collaborators.ledger)
    customers = CustomerActivities(collaborators.support, collaborators.notifier)
    assessment = AssessmentActivities(refund_terms(settings))
    history = HistoryActivities(client)
    people = PeopleActivities(collaborators.people)
    books = ReconciliationActivities(
        partial(reconcile_with_refunds, collaborators.store.engine), client
    )
    return [
        assessment.assess,
        assessment.recheck,
        assessment.count_review_deadline,
        records.load_certificate,
        records.mark_refund_pending,
        records.restore_certificate,
        records.mark_refunded,
        records.cancel_order,
        records.revoke_certificate,
        records.claim_repair_order,
        payments.return_to_alipay,
        payments.return_to_bank,
        payments.return_to_account_balance,
        payments.record_manual_return,
        customers.open_support_ticket,
        customers.notify_customer,
        history.find_cancellation_request,
        people.load_people,
        books.check_books,
    ]
