"""Customer activities: a support ticket for who asked for one, and the notice of the outcome."""

from __future__ import annotations

from temporalio import activity

from activities.gateways import Notifier, SupportDesk
from activities.notices import render_notice
from activities.payloads import CustomerNotice, SupportTicketRequest


class CustomerActivities:
    def __init__(self, support: SupportDesk, notifier: Notifier) -> None:
        self.support = support
        self.notifier = notifier

    @activity.defn(name="open_support_ticket")
    def open_support_ticket(self, request: SupportTicketRequest) -> str:
        return self.support.open_ticket(request)

    @activity.defn(name="notify_customer")
    def notify_customer(self, notice: CustomerNotice) -> str:
        message = render_notice(notice)
        self.notifier.notify(notice.model_copy(update={"message": message}))
        return message
