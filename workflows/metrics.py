"""Refund metrics, next to the SDK's own on the Prometheus endpoint.

Recorded through the workflow's metric meter, which records nothing while a workflow replays.
Instruments are made when a value is recorded rather than held by each workflow, so a review
parked for weeks keeps none of them in the worker's memory.
"""

from __future__ import annotations

from temporalio import workflow


def count_decision(rule: str, outcome: str) -> None:
    workflow.metric_meter().create_counter(
        "refunds_decided", "rule decisions, by rule and outcome"
    ).add(1, {"rule": rule, "outcome": outcome})


def count_finished(state: str) -> None:
    workflow.metric_meter().create_counter(
        "refunds_finished", "refunds reaching a final state or needs_attention, by state"
    ).add(1, {"state": state})


def count_returned(cents: int, channel: str) -> None:
    workflow.metric_meter().create_counter(
        "refunds_returned_amount", "money returned, in cents, by channel", "cents"
    ).add(cents, {"channel": channel})


def record_review_time(seconds: int) -> None:
    workflow.metric_meter().create_histogram(
        "refunds_review_time", "time from review start to decision", "s"
    ).record(seconds)
