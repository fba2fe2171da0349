"""Typed search attributes the refund workflow keeps current for the Web UI and visibility queries.

None of them holds personal data: states, a deadline, a certificate id and channel names only.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

REFUND_STATE = SearchAttributeKey.for_keyword("RefundState")
REVIEW_DEADLINE = SearchAttributeKey.for_datetime("ReviewDeadline")
CERTIFICATE_ID = SearchAttributeKey.for_keyword("CertificateId")
PAYMENT_CHANNELS = SearchAttributeKey.for_keyword_list("PaymentChannels")

ALL_KEYS = (REFUND_STATE, REVIEW_DEADLINE, CERTIFICATE_ID, PAYMENT_CHANNELS)

DEV_SERVER_TYPES = {
    REFUND_STATE.name: "Keyword",
    REVIEW_DEADLINE.name: "Datetime",
    CERTIFICATE_ID.name: "Keyword",
    PAYMENT_CHANNELS.name: "KeywordList",
}
"""Names and types as ``temporal server start-dev --search-attribute NAME=TYPE`` takes them."""
