"""The refund workflow's versions: each deliberate change to its paths is a patch, so refunds
started before the change replay, and go on, on the paths they started on. A new run records only
the newest marker; each version includes the ones before."""

from temporalio import workflow

LOCAL_LOAD_PATCH = "local-load-final-state-at-close"
"""Patch (v2): the certificate is loaded by a local activity and the final state is set as the
workflow completes, so the server writes an auto refund's visibility record only where it writes
it anyway (the first task and the close)."""
OPERATOR_PROOF_PATCH = "operator-proof"
"""Patch (v3): approvals re-check that the certificate is still refundable, the deadline re-checks
only that (not ``near-expiry``), re-runs resume their own refund, payments that keep failing ask
for a person, and a long history continues as new. Runs started before keep their old paths."""
SIGNED_ACTIONS_PATCH = "signed-actions"
"""Patch (v4): people's actions are signed and checked against the people directory, read when
the refund starts waiting for a person and again when told it changed (``people_changed``)."""
REVIEW_QUEUE_PATCH = "review-queue-memo"
"""Patch (v5): a refund entering review keeps what the review queue shows in its memo
(``ReviewCard``), so the queue is one visibility listing."""

AUTHORIZED_PAYMENTS_PATCH = "system-of-record-authorizes"
"""Patch (v6): the customer's request is signed and registered with the certificate's hold, which
an auto-approval takes first too; before anything is released or paid, the system of record checks
and records the evidence for paying (``authorize_payment``); legs are named to the payment
activities by ids alone; a channel may answer *settling*, and the refund waits, woken by
``settlement_changed`` or a poll, until every leg has settled."""

PATCHES = (
    LOCAL_LOAD_PATCH,
    OPERATOR_PROOF_PATCH,
    SIGNED_ACTIONS_PATCH,
    REVIEW_QUEUE_PATCH,
    AUTHORIZED_PAYMENTS_PATCH,
)
"""Versions 2, 3, ... in order; version 1 has no marker."""


def running_version() -> int:
    """The version this run takes: a new run the newest (recording its marker alone), a run
    replaying its history the one whose marker it recorded (asked newest first, as they came)."""
    for version in range(len(PATCHES) + 1, 1, -1):
        if workflow.patched(PATCHES[version - 2]):
            return version
    return 1
