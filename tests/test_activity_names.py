"""Activity names are recorded in every refund's history: a running refund schedules its next
step by the name its history holds, so every name a recorded history used is still registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import cast

from temporalio import activity
from temporalio.client import Client

from settings import Settings
from wiring import activities, default_collaborators

HISTORIES = Path(__file__).parent / "histories"


def recorded_names() -> set[str]:
    names: set[str] = set()
    for path in HISTORIES.glob("v*/*.json"):
        for event in json.loads(path.read_text())["events"]:
            scheduled = event.get("activityTaskScheduledEventAttributes")
            if scheduled is not None:
                names.add(scheduled["activityType"]["name"])
    return names


def test_every_activity_a_recorded_history_scheduled_is_registered_by_that_name(
    harness_settings: Settings,
):
    settings = harness_settings
    bound = activities(default_collaborators(settings), settings, cast(Client, None))
    registered = set()
    for function in bound:
        definition = activity._Definition.from_callable(function)
        assert definition is not None and definition.name is not None, function
        registered.add(definition.name)
    recorded = recorded_names()
    assert {"return_to_alipay", "return_to_bank", "revoke_certificate"} <= recorded
    assert recorded <= registered
    assert {
        "return_to_alipay",
        "return_to_bank",
        "return_to_account_balance",
        "record_manual_return",
    } <= registered
