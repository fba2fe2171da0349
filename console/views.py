"""What the console's pages show, in the customer's words: the seed's reasons and states in English
and Chinese, amounts with their currency, times in the business time zone, and the rule decision
as a sentence."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from domain.certificates import Certificate
from domain.decisions import Decision, Outcome
from workflows.contract import RefundReason, RefundState

REASONS: dict[RefundReason, dict[str, str]] = {
    RefundReason.INSTALL_FAILED: {
        "en": "I failed to apply for or install the certificate, and do not know where to get "
        "help.",
        "zh": "证书申请或安装失败，不知道如何获取帮助。",
    },
    RefundReason.VALIDATION_STUCK: {
        "en": "The certificate application process is stuck in the Verifying or Verification "
        "Failed state. This affects my business.",
        "zh": "证书申请流程停留在验证中或验证失败状态，影响业务。",
    },
    RefundReason.RENEWAL_TYPE_MISMATCH: {
        "en": "The type of the renewed certificate is inconsistent with that of the original "
        "certificate. I want to claim a refund and purchase a new certificate.",
        "zh": "续费证书类型与原证书不一致，希望退款后重新购买。",
    },
    RefundReason.NO_LONGER_NEEDED: {
        "en": "I no longer need the certificate.",
        "zh": "不再需要该证书。",
    },
    RefundReason.OTHER: {"en": "Other", "zh": "其他"},
}
STATES: dict[str, dict[str, str]] = {
    RefundState.SUBMITTED.value: {"en": "Submitted", "zh": "已提交"},
    RefundState.VALIDATING_APPLICATION.value: {"en": "Validating Application", "zh": "申请审核中"},
    RefundState.REFUNDING.value: {"en": "Refunding", "zh": "退款中"},
    RefundState.REFUNDED.value: {"en": "Refunded", "zh": "已退款"},
    RefundState.REJECTED.value: {"en": "Rejected", "zh": "已拒绝"},
    RefundState.CANCELLED.value: {"en": "Cancelled", "zh": "已取消"},
    RefundState.NEEDS_ATTENTION.value: {"en": "Needs attention", "zh": "待处理"},
}
CHANNELS = {"alipay": "Alipay", "bank": "online bank account", "account_balance": "account balance"}
JOURNAL_KINDS: dict[str, dict[str, str]] = {
    "refund": {"en": "Refund to your account balance", "zh": "退款至账户余额"},
    "reversal": {"en": "Correction of an earlier entry", "zh": "更正此前的记录"},
}
"""The account balance's journal entries, as the customer reads them."""


def language(accept_language: str | None) -> str:
    """Chinese when the browser prefers it, English otherwise."""
    first = (accept_language or "").split(",")[0].strip().lower()
    return "zh" if first.startswith("zh") else "en"


def money(amount: Decimal, currency: str) -> str:
    return f"{amount:.2f} {currency}"


def journal_kind(kind: str, lang: str) -> str:
    return JOURNAL_KINDS.get(kind, {}).get(lang, kind)


def local_time(moment: datetime | None, zone: ZoneInfo) -> str:
    return "" if moment is None else f"{moment.astimezone(zone):%Y-%m-%d %H:%M %Z}"


def local_date(moment: datetime | None, zone: ZoneInfo) -> str:
    return "" if moment is None else f"{moment.astimezone(zone):%Y-%m-%d}"


def preview(decision: Decision, deadline: datetime | None, zone: ZoneInfo) -> str:
    """The rule decision before submitting, as the customer reads it."""
    amount = money(decision.refund_amount, decision.currency)
    if decision.outcome is Outcome.DENIED:
        return f"not refundable: {decision.explanation}"
    if decision.outcome is Outcome.MANUAL_REVIEW:
        return f"refund of {amount} needs review, decided by {local_time(deadline, zone)}"
    channels = sorted({CHANNELS.get(leg.channel.value, leg.channel.value) for leg in decision.legs})
    return f"refund of {amount} to {' and '.join(channels)}, immediately"


REFUND_STARTED = frozenset({"refund_pending", "refunded", "revoked"})
"""Certificate statuses a refund has already reached: its progress is shown, not a new Refund."""


def status_of(certificate: Certificate) -> str:
    return certificate.status.value if certificate.status else "paid"


def refund_started(certificate: Certificate) -> bool:
    return status_of(certificate) in REFUND_STARTED


def certificate_state(certificate: Certificate) -> str:
    status = status_of(certificate)
    return "issued" if status == "paid" and certificate.issued else status.replace("_", " ")
