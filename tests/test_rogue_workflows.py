"""Whoever reaches Temporal cannot pay: a workflow nobody here wrote, on a worker and task queue
of its own, schedules each money activity on the refunds' task queue with inputs it chose, and
the system of record refuses every one before any channel is called, records it, logs it as an
error and counts it. And a refund whose own directory was answered by an impostor still pays
nothing on an approval the real directory cannot prove."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from converter import DATA_CONVERTER
from domain.certificates import CertificateStatus
from domain.errors import PAYMENT_UNAUTHORIZED
from domain.signatures import Person, Role, public_key_text
from storage.payment_refusals import PaymentRefusals
from storage.people import PeopleDirectory
from tests.factories import certificate
from tests.harness import Harness
from tests.live_system import free_port
from tests.signing import key_of
from worker import build_worker
from workflows.contract import ApproveInput, RefundRequest, RefundState
from workflows.refund import RefundWorkflow


class Step(BaseModel):
    activity: str
    argument: dict[str, Any]


class Plan(BaseModel):
    task_queue: str
    steps: list[Step]


@workflow.defn(name="RogueWorkflow")
class RogueWorkflow:
    """Schedules each step's activity by name on the refunds' task queue, once, and reports how
    each ended: ``done`` or the failure's type."""

    @workflow.run
    async def run(self, plan: Plan) -> list[str]:
        outcomes = []
        for step in plan.steps:
            try:
                await workflow.execute_activity(
                    step.activity,
                    step.argument,
                    task_queue=plan.task_queue,
                    start_to_close_timeout=timedelta(seconds=15),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                )
                outcomes.append("done")
            except ActivityError as err:
                outcomes.append(str(getattr(err.cause, "type", "")))
        return outcomes


def now() -> datetime:
    return datetime.now(UTC)


def leg(refund_id: str, certificate_id: str, index: int = 0, **extra: Any) -> dict[str, Any]:
    return {
        "refund_id": refund_id,
        "certificate_id": certificate_id,
        "leg_index": index,
        "idempotency_key": f"{refund_id}:leg-{index}",
        **extra,
    }


async def run_rogue(harness: Harness, target_queue: str, steps: list[Step]) -> list[str]:
    queue = f"rogue-{uuid.uuid4().hex[:6]}"
    # The attacker's own worker: it runs whatever it likes, so no sandbox of ours applies to it.
    async with Worker(
        harness.env.client,
        task_queue=queue,
        workflows=[RogueWorkflow],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        result: list[str] = await harness.env.client.execute_workflow(
            RogueWorkflow.run,
            Plan(task_queue=target_queue, steps=steps),
            id=f"rogue-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )
    return result


async def test_a_rogue_workflow_scheduling_every_money_activity_is_refused_and_pays_nothing(
    harness: Harness, local_world, caplog
):
    port = free_port()
    runtime = Runtime(
        telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=f"127.0.0.1:{port}"))
    )
    client = await Client.connect(
        harness.env.client.service_client.config.target_host,
        data_converter=DATA_CONVERTER,
        runtime=runtime,
    )
    queue = f"refunds-metered-{uuid.uuid4().hex[:6]}"
    in_review = certificate(
        "rogue-review",
        purchased_at=now() - timedelta(days=10),
        payments=[{"channel": "bank", "amount": "300.00", "reference": "bank-rogue-review"}],
    )
    untouched = certificate("rogue-untouched", purchased_at=now() - timedelta(days=1))
    harness.store.seed([untouched])
    caplog.set_level(logging.ERROR, logger="temporalio.activity")
    async with build_worker(
        client, settings=harness.settings, collaborators=harness.collaborators(), task_queue=queue
    ):
        harness.task_queue = queue
        handle = await harness.submit(in_review)
        waiting = await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        started = await anext(aiter(handle.fetch_history_events()))
        copied = started.workflow_execution_started_event_attributes.input.payloads[0]
        request = RefundRequest.model_validate_json(copied.data)  # its signature included
        assert request.signature is not None
        review_id, untouched_id = handle.id, "refund-rogue-untouched"
        outcomes = await run_rogue(
            harness,
            queue,
            [
                # a real leg's key, of a refund waiting for its review
                Step(activity="return_to_bank", argument=leg(review_id, in_review.certificate_id)),
                # a made-up amount and reference to a certificate nobody asked to refund
                Step(
                    activity="return_to_alipay",
                    argument=leg(
                        untouched_id, "rogue-untouched", amount="99999.00", reference="ali-mine"
                    ),
                ),
                Step(
                    activity="return_to_account_balance",
                    argument=leg(untouched_id, "rogue-untouched"),
                ),
                # a hand payment recorded under the real leg's key
                Step(
                    activity="record_manual_return",
                    argument=leg(review_id, in_review.certificate_id),
                ),
                # the customer's own signed request, copied from history, with evidence it lacks
                *(
                    Step(
                        activity="authorize_payment",
                        argument={
                            "certificate_id": in_review.certificate_id,
                            "refund_id": review_id,
                            "request": request.model_dump(mode="json"),
                            "evidence": evidence,
                        },
                    )
                    for evidence in ("rules", "deadline", "reviewer", "recorded")
                ),
                # releasing a certificate nobody authorized paying back
                Step(
                    activity="cancel_order",
                    argument={"certificate_id": "rogue-untouched", "refund_id": untouched_id},
                ),
                # a hold for a request nobody signed
                Step(
                    activity="mark_refund_pending",
                    argument={
                        "certificate_id": "rogue-untouched",
                        "refund_id": untouched_id,
                        "request": {
                            "certificate_id": "rogue-untouched",
                            "requester": "user-1",
                            "reason": "no_longer_needed",
                        },
                    },
                ),
            ],
        )
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        await handle.cancel()  # the refund under review ends, nothing paid either
        await harness.result(handle)
    assert outcomes == [PAYMENT_UNAUTHORIZED] * 10
    assert waiting.state is RefundState.VALIDATING_APPLICATION
    assert harness.ledger.entries() == []
    assert local_world.alipay.refunds() == [] and local_world.bank.refunds() == []
    assert harness.store.get("rogue-untouched").status is CertificateStatus.PAID
    assert harness.store.order_status("rogue-untouched") == "open"
    refusals = PaymentRefusals(harness.store.engine).recent()
    assert len(refusals) == 10
    assert {r.workflow_type for r in refusals} == {"RogueWorkflow"}
    assert {r.activity for r in refusals} >= {"return_to_bank", "record_manual_return"}
    logged = [
        r for r in caplog.records if r.getMessage().startswith("refused by the system of record")
    ]
    assert len(logged) == 10
    counted = [line for line in metrics.splitlines() if line.startswith("refunds_payments_refused")]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in counted) == 10, counted
    assert all(line.startswith("refunds_payments_refused_total") for line in counted), counted


class ImpostorDirectory(PeopleDirectory):
    """The directory as an impostor answering ``load_people`` would give it: mallory a reviewer."""

    def active(self) -> dict[str, Person]:
        mallory = Person(
            person_id="mallory", role=Role.REVIEWER, public_key=public_key_text(key_of("mallory"))
        )
        return {**super().active(), "mallory": mallory}


async def test_an_approval_the_real_directory_cannot_prove_pays_nothing_though_accepted(
    harness: Harness, local_world
):
    def impostor(collaborators):
        collaborators.people = ImpostorDirectory(collaborators.store.engine)

    async with harness.worker_with_collaborators(impostor):
        cert = certificate("rogue-approved", purchased_at=now() - timedelta(days=10))
        handle = await harness.submit(cert)
        await harness.in_state(handle, RefundState.VALIDATING_APPLICATION)
        accepted = await handle.execute_update(
            RefundWorkflow.approve_request, ApproveInput(reviewer="mallory", note="trust me")
        )
        status = await harness.in_state(handle, RefundState.NEEDS_ATTENTION)
    assert accepted.action.value == "approve"  # the workflow believed its directory
    assert "mallory is not in the people directory" in (status.attention_reason or "")
    assert harness.ledger.entries() == [] and local_world.alipay.refunds() == []
    held = harness.store.get("rogue-approved")
    assert (held.held_by, held.released_by) == (handle.id, None)  # nothing released either
    [refusal] = PaymentRefusals(harness.store.engine).recent()
    assert (refusal.activity, refusal.workflow_type) == ("authorize_payment", "RefundWorkflow")
