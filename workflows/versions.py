"""The refund workflow's versions: each deliberate change to its paths is a patch, so refunds
started before the change replay, and go on, on the paths they started on. A new run records only
the newest marker; each version includes the ones before."""

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
