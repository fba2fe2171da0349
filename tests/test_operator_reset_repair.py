"""Reset and termination, as an operator does them with the `temporal` CLI: a re-run reports the
refund it already made, and what a terminated refund leaves is found by reconciliation and settled
by `refunds repair` without paying anything twice.
"""

from __future__ import annotations

import asyncio
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from domain.certificates import Channel
from starter.books import books, repair
from starter.client import RefundClient
from starter.errors import UserError
from storage.repairs import RepairOrders
from storage.schema import notifications
from tests.factories import alipay_return, certificate
from tests.gateways import ChannelDown
from tests.harness import temporal_cli
from workflows.contract import LegState, RefundRequest, RefundState
from workflows.refund import RefundWorkflow


def now() -> datetime:
    return datetime.now(UTC)


def temporal(harness, *args: str) -> str:
    address = harness.client.service_client.config.target_host
    done = subprocess.run(
        [temporal_cli(), *args, "--address", address],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def operators_client(harness) -> RefundClient:
    settings = harness.settings.model_copy(update={"task_queue": harness.task_queue})
    return RefundClient(harness.client, settings)


def notices(harness) -> int:
    with harness.store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(notifications)).scalar_one())


async def reset_to_start(harness, handle):
    before = (await handle.describe()).run_id
    await asyncio.to_thread(
        temporal,
        harness,
        "workflow",
        "reset",
        "-w",
        handle.id,
        "--type",
        "FirstWorkflowTask",
        "--reason",
        "operator re-runs it",
    )
    rerun = harness.handle(handle.id)
    for _ in range(100):
        if (await rerun.describe()).run_id != before:
            return rerun
        await asyncio.sleep(0.1)
    raise AssertionError("the reset made no new run")


@pytest.mark.parametrize("issued", [False, True], ids=["order-cancelled", "revoked"])
async def test_a_reset_of_a_refunded_refund_reports_the_refund_it_made(harness, issued):
    bought = now() - timedelta(days=2)
    cert = certificate(f"rr-{issued}", purchased_at=bought, issued_at=bought if issued else None)
    handle = await harness.submit(cert)
    if issued:
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        await handle.signal("approve", {"reviewer": "rev-1"})
    first = await harness.result(handle)
    assert first.state is RefundState.REFUNDED
    rerun = await reset_to_start(harness, handle)
    again = await harness.result(rerun)
    assert again.state is RefundState.REFUNDED
    assert any(e.action.startswith("re-run after reset") for e in again.audit)
    assert [leg.transaction_id for leg in again.legs] == [leg.transaction_id for leg in first.legs]
    assert [leg.status for leg in again.legs] == [LegState.RETURNED, LegState.NOT_REFUNDABLE]
    assert len(harness.ledger.entries()) == 1 and notices(harness) == 1
    assert harness.store.get(cert.certificate_id).status == "refunded"


async def test_a_new_request_for_a_refunded_certificate_is_still_denied(harness):
    cert = certificate("rr-again", purchased_at=now() - timedelta(days=1))
    handle = await harness.submit(cert)
    assert (await harness.result(handle)).state is RefundState.REFUNDED
    second = await harness.client.start_workflow(
        RefundWorkflow.run,
        RefundRequest(
            certificate_id=cert.certificate_id, requester="user-1", reason="no_longer_needed"
        ),
        id=handle.id,
        task_queue=harness.task_queue,
    )
    status = await harness.result(second)
    assert status.state is RefundState.REJECTED
    assert status.rule is not None and status.rule.value == "already-refunded"
    assert len(harness.ledger.entries()) == 1


async def test_a_refund_terminated_in_review_is_an_orphaned_hold_that_repair_releases(harness):
    cert = certificate(
        "rr-held", purchased_at=now() - timedelta(days=9), issued_at=now() - timedelta(days=9)
    )
    handle = await harness.submit(cert)
    await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
    refunds = operators_client(harness)
    assert (await books(refunds, harness.store.engine)).orphaned_holds == 0
    await asyncio.to_thread(temporal, harness, "workflow", "terminate", "-w", handle.id)
    found = await books(refunds, harness.store.engine)
    assert (found.orphaned_holds, found.divergent) == (1, 0)
    assert found.balances[0].problem == "orphaned_hold"
    with pytest.raises(UserError, match="not an operator in the people directory"):
        await repair(refunds, harness.store.engine, cert.certificate_id, "rev-1", "checked")
    done = await repair(
        refunds, harness.store.engine, cert.certificate_id, "operator-1", "terminated by mistake"
    )
    assert (done.action, done.refund_id) == ("release", handle.id)
    released = await harness.result(harness.handle(handle.id))
    assert released.state is RefundState.CANCELLED and released.decided_by == "operator-1"
    assert "hold released by an operator" in [e.action for e in released.audit]
    assert harness.store.get(cert.certificate_id).status == "issued"
    assert harness.ledger.entries() == []
    [order] = RepairOrders(harness.store.engine).of(cert.certificate_id)
    assert order.claimed_by_run == (await harness.handle(handle.id).describe()).run_id
    found = await books(refunds, harness.store.engine)
    assert (found.orphaned_holds, found.divergent) == (0, 0)
    with pytest.raises(UserError, match="needs no repair"):
        await repair(refunds, harness.store.engine, cert.certificate_id, "operator-1", "again")


async def test_a_refund_terminated_half_paid_is_completed_by_repair_paying_only_what_is_due(
    harness,
):
    issued = now() - timedelta(days=5)
    cert = certificate(
        "rr-half",
        purchased_at=issued,
        issued_at=issued,
        payments=[
            {"channel": "alipay", "amount": "100.00", "reference": "ali-ok"},
            {"channel": "bank", "amount": "50.00", "reference": "bank-slow"},
        ],
    )
    async with harness.worker_with_gateway(Channel.BANK, ChannelDown) as bank:
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        await handle.signal("approve", {"reviewer": "rev-2"})
        await harness.wait_for(handle, lambda s: s.legs[0].status is LegState.RETURNED)
        await asyncio.to_thread(temporal, harness, "workflow", "terminate", "-w", handle.id)
        refunds = operators_client(harness)
        found = await books(refunds, harness.store.engine)
        [balance] = found.balances
        assert (balance.status, str(balance.due), str(balance.returned)) == (
            "revoked",
            "150.00",
            "100.00",
        )
        assert balance.problem == "orphaned_hold" and found.orphaned_holds == 1
        bank.down = False
        done = await repair(
            refunds, harness.store.engine, cert.certificate_id, "operator-1", "bank is back"
        )
        assert done.action == "complete" and done.still_due == 50
        status = await harness.result(harness.handle(handle.id))
    assert status.state is RefundState.REFUNDED
    assert status.decided_by == "operator-1"
    assert any(e.action == "books completed by an operator" for e in status.audit)
    entries = harness.ledger.entries()
    assert sorted((e.leg_index, e.amount) for e in entries) == [(0, 100), (1, 50)]
    found = await books(refunds, harness.store.engine)
    assert [b.outcome for b in found.balances] == ["balanced"]
    assert (found.orphaned_holds, found.divergent, found.paid_twice) == (0, 0, 0)
    assert harness.store.get(cert.certificate_id).status == "refunded"


async def test_money_returned_on_a_usable_certificate_is_divergent_until_repaired(harness):
    """The books an earlier release could leave: paid back, yet the certificate usable."""
    cert = certificate(
        "rr-diverged",
        purchased_at=now() - timedelta(days=1),
        payments=[
            {"channel": "alipay", "amount": "80.00", "reference": "ali-1"},
            {"channel": "bank", "amount": "20.00", "reference": "bank-1"},
        ],
    )
    harness.store.seed([cert])
    refund_id = f"refund-{cert.certificate_id}"
    harness.ledger.record(alipay_return(refund_id, cert.certificate_id, 0, "80.00"))
    refunds = operators_client(harness)
    found = await books(refunds, harness.store.engine)
    assert (found.orphaned_holds, found.divergent) == (0, 1)
    done = await repair(refunds, harness.store.engine, cert.certificate_id, "operator-1", "fix")
    assert done.still_due == 20
    status = await harness.result(harness.handle(refund_id))
    assert status.state is RefundState.REFUNDED
    assert sorted(e.leg_index for e in harness.ledger.entries()) == [0, 1]
    found = await books(refunds, harness.store.engine)
    assert (found.orphaned_holds, found.divergent, found.paid_twice) == (0, 0, 0)
