"""How reconciliation names what a refund that stopped running left behind."""

from __future__ import annotations

from decimal import Decimal

import pytest

from storage.reconcile import RefundBalance


def balance(status: str, due: str, returned: str, *, held: bool, released: bool, running: bool):
    return RefundBalance(
        certificate_id="cas-1",
        refund_ids=["refund-cas-1"] if Decimal(returned) else [],
        status=status,
        currency="CNY",
        due=Decimal(due),
        returned=Decimal(returned),
        legs_paid_twice=0,
        held_by="refund-cas-1" if held else None,
        released_by="refund-cas-1" if released else None,
        running=running,
    )


@pytest.mark.parametrize(
    ("status", "due", "returned", "held", "released", "problem"),
    [
        ("refund_pending", "0.00", "0.00", True, False, "orphaned_hold"),  # held in review
        ("refund_pending", "150.00", "100.00", True, True, "orphaned_hold"),  # order cancelled
        ("revoked", "150.00", "100.00", True, True, "orphaned_hold"),  # revoked, half paid
        ("revoked", "150.00", "0.00", True, True, "orphaned_hold"),  # revoked, nothing paid
        ("refund_pending", "150.00", "150.00", True, True, "divergent"),  # paid, not marked
        ("revoked", "150.00", "150.00", True, True, "divergent"),  # the same, issued
        ("paid", "100.00", "80.00", False, False, "divergent"),  # usable, yet paid back
        ("refunded", "150.00", "150.00", False, True, None),
    ],
)
def test_a_refund_that_stopped_running_leaves_one_named_problem(
    status, due, returned, held, released, problem
):
    stopped = balance(status, due, returned, held=held, released=released, running=False)
    assert stopped.problem == problem
    moving = balance(status, due, returned, held=held, released=released, running=True)
    assert moving.problem is None
