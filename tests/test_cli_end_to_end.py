"""The CLI against a real ``refunds up`` (dev server, Web UI, worker), as a user drives it."""

from __future__ import annotations

import json
import re
import stat
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from tests.factories import SHANGHAI
from tests.live_system import System, running_system


@pytest.fixture(scope="module")
def system(tmp_path_factory) -> Iterator[System]:
    with running_system(tmp_path_factory.mktemp("up")) as system:
        yield system


def test_up_prints_the_web_ui_address(system):
    assert f"http://localhost:{system.ui_port}/namespaces/default/workflows" in system.banner


def test_up_keeps_the_system_of_record_and_temporals_database_private(system):
    """Support contacts, notices, the people table and password hashes are the owner's alone."""
    assert stat.S_IMODE(system.workdir.stat().st_mode) == 0o700
    for name in ("refunds.db", "temporal.db"):
        files = [system.workdir / name, *system.workdir.glob(f"{name}-*")]
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
            f.name: 0o600 for f in files
        }
        assert len(files) > 1, files  # the WAL's files were made, and are private too


def test_up_gives_every_configured_person_and_demo_owner_a_signing_key(system):
    listed = {p["person_id"]: p["role"] for p in system.json("people", "list")}
    assert {p: r for p, r in listed.items() if r != "customer"} == {
        "rev-1": "reviewer",
        "rev-2": "reviewer",
        "operator-1": "operator",
    }
    assert {"user-17", "user-18", "user-25"} <= {p for p, r in listed.items() if r == "customer"}
    key = system.workdir / "var" / "keys" / "people" / "rev-1.pem"
    assert key.stat().st_mode & 0o777 == 0o600


def test_auto_refund_through_the_cli(system):
    started = time.monotonic()
    submitted = system.json(
        "submit", "demo-auto", "--requester", "user-17", "--reason", "no_longer_needed"
    )
    assert submitted["refund_id"] == "refund-demo-auto"
    assert len(submitted["run_id"] or "") == 36
    status = system.json("status", "refund-demo-auto", "--wait")
    elapsed = time.monotonic() - started
    assert status["state"] == "refunded"
    assert status["rule"] == "unissued-within-5-days"
    assert status["refund_amount"] == "199.00"
    assert [(leg["channel"], leg["amount"], leg["status"]) for leg in status["legs"]] == [
        ("alipay", "199.00", "returned"),
        ("voucher", "50.00", "not_refundable"),
    ]
    assert elapsed < 60
    print(f"auto refund, submit to refunded through the CLI: {elapsed:.2f} s")


def test_review_approve_with_refusals(system):
    system.run(
        "submit",
        "demo-issued",
        "--requester",
        "user-19",
        "--reason",
        "install_failed",
        "--support-contact",
        "dingtalk:user19",
    )
    waiting = system.json("status", "refund-demo-issued", "--wait")
    assert waiting["state"] == "validating_application"
    assert waiting["review_deadline"]
    pending = system.json("pending")
    assert "refund-demo-issued" in [p["refund_id"] for p in pending]
    line = system.refused("approve", "refund-demo-issued", "--reviewer", "mallory")
    assert line.startswith("refunds: error: no signing key for mallory in ")
    system.run("people", "add", "mallory", "--role", "customer")  # a key, but no reviewer
    line = system.refused("approve", "refund-demo-issued", "--reviewer", "mallory")
    assert line == "refunds: error: refused: mallory is not on the reviewer list"
    system.run("approve", "refund-demo-issued", "--reviewer", "rev-1", "--note", "checked")
    done = system.json("status", "refund-demo-issued", "--wait")
    assert done["state"] == "refunded"
    assert done["refund_amount"] == "1500.50"
    assert {leg["status"] for leg in done["legs"]} == {"returned"}
    assert "approve (update)" in [entry["action"] for entry in done["audit"]]
    human = system.run("status", "refund-demo-issued").stdout
    assert "refunded" in human and "certificate revoked" in human


def test_reject_cancel_and_duplicates(system):
    system.run(
        "submit",
        "demo-reject",
        "--requester",
        "user-21",
        "--reason",
        "other",
        "--feedback",
        "bought the wrong product",
    )
    system.run(
        "submit", "demo-cancel", "--requester", "user-20", "--reason", "renewal_type_mismatch"
    )
    line = system.refused(
        "submit", "demo-cancel", "--requester", "user-20", "--reason", "no_longer_needed"
    )
    assert "already has a refund in progress: refund-demo-cancel" in line
    system.json("status", "refund-demo-reject", "--wait")
    system.json("status", "refund-demo-cancel", "--wait")
    line = system.refused("reject", "refund-demo-reject", "--reviewer", "rev-2", "--reason", " ")
    assert "needs a reason" in line
    system.run("reject", "refund-demo-reject", "--reviewer", "rev-2", "--reason", "in use")
    line = system.refused("cancel", "refund-demo-cancel", "--requester", "user-21")
    assert "only the requester (user-20)" in line
    system.run("cancel", "refund-demo-cancel", "--requester", "user-20")
    assert system.json("status", "refund-demo-reject", "--wait")["state"] == "rejected"
    assert system.json("status", "refund-demo-cancel", "--wait")["state"] == "cancelled"
    line = system.refused("cancel", "refund-demo-cancel", "--requester", "user-20")
    assert line == "refunds: error: refund refund-demo-cancel is already finished"
    check = system.json("check", "demo-cancel")
    assert check["outcome"] == "manual_review"


def test_denied_and_user_mistakes(system):
    system.run("submit", "demo-old", "--requester", "user-22", "--reason", "no_longer_needed")
    denied = system.json("status", "refund-demo-old", "--wait")
    assert (denied["state"], denied["rule"]) == ("rejected", "issued-over-28-days")
    assert system.refused("status", "refund-nope") == "refunds: error: no refund 'refund-nope'"
    assert "does not own" in system.refused(
        "submit", "demo-voucher", "--requester", "user-1", "--reason", "no_longer_needed"
    )
    assert "mainland" in system.refused(
        "submit",
        "demo-free",
        "--requester",
        "user-23",
        "--reason",
        "install_failed",
        "--support-contact",
        "12345678901",
    )
    assert "Invalid value" in system.refused(
        "submit", "demo-free", "--requester", "user-23", "--reason", "bored"
    )


def test_demo_walks_every_path(system):
    results = system.json("demo")
    assert [r["state"] for r in results] == [
        "refunded",
        "refunded",
        "rejected",
        "cancelled",
        "rejected",
        "validating_application",
    ]
    assert results[4]["rule"] == "issued-over-28-days"
    for result in results:
        assert result["link"].startswith(f"{system.ui}/namespaces/default/workflows/refund-demo")
        assert result["link"].endswith("/history")


def test_review_queue_with_details_and_filters(system):
    system.run("submit", "demo-review", "--requester", "user-18", "--reason", "validation_stuck")
    system.json("status", "refund-demo-review", "--wait")
    queue = system.json("pending")
    entry = next(e for e in queue if e["refund_id"] == "refund-demo-review")
    assert entry["requester"] == "user-18"
    assert entry["reason"] == "validation_stuck"
    assert entry["refund_amount"] == "199.00"
    assert 10 <= entry["business_days_left"] <= 16
    assert entry["overdue"] is False
    deadlines = [e["review_deadline"] for e in queue]
    assert deadlines == sorted(deadlines)
    only_stuck = system.json("pending", "--reason", "validation_stuck")
    assert {e["reason"] for e in only_stuck} == {"validation_stuck"}
    assert system.json("pending", "--overdue") == []
    table = system.run("pending").stdout
    assert "refund-demo-review" in table and "business days left" in table


def test_the_queue_pages_with_a_cursor(system):
    every = [e["refund_id"] for e in system.json("pending", "--all")]
    assert "refund-demo-review" in every and len(every) >= 2
    seen: list[str] = []
    cursor: list[str] = []
    while True:
        done = system.run("pending", "--json", "--limit", "1", *cursor)
        seen += [e["refund_id"] for e in json.loads(done.stdout)]
        more = re.search(r"next page: refunds pending --after (\S+)", done.stderr)
        if more is None:
            break
        cursor = ["--after", more.group(1)]
    assert seen == every
    table = system.run("pending", "--limit", "1").stdout
    assert "in review in all" in table and "next page: refunds pending --after" in table
    line = system.refused("pending", "--after", "nonsense")
    assert line == "refunds: error: --after: not a cursor printed by the review queue"


def test_an_official_schedule_moves_a_deadline_in_review(system):
    entry = next(e for e in system.json("pending") if e["refund_id"] == "refund-demo-review")
    deadline = datetime.fromisoformat(entry["review_deadline"])
    last_day = (deadline - timedelta(microseconds=1)).astimezone(SHANGHAI).date()
    schedule = system.workdir / "official.toml"
    schedule.write_text(f'[{last_day.year}]\nholidays = ["{last_day}"]\n')
    applied = system.run("calendar", "apply", str(schedule)).stdout
    assert "refund-demo-review" in applied
    told = re.search(r"(\d+) of (\d+) refund\(s\) told to count their deadline again", applied)
    assert told is not None and told.group(1) == told.group(2)
    for _ in range(100):
        status = system.json("status", "refund-demo-review")
        if status["review_deadline"] != entry["review_deadline"]:
            break
        time.sleep(0.1)
    assert datetime.fromisoformat(status["review_deadline"]) > deadline
    moved = [a for a in status["audit"] if a["action"] == "review deadline moved"]
    assert [a["actor"] for a in moved] == ["calendar"]
    assert f"by the {last_day.year} schedule" in moved[0]["detail"]
    shown = system.json("calendar", "show", str(last_day.year))
    assert shown["official_schedule"] is True
    assert {"date": last_day.isoformat(), "source": "official schedule"}.items() <= next(
        d for d in shown["days"] if d["date"] == last_day.isoformat()
    ).items()
    for _ in range(50):  # once every refund told has recorded its move, nothing moves again
        again = system.run("calendar", "apply", str(schedule)).stdout
        if "no refund in review has its deadline moved by it" in again:
            break
        time.sleep(0.2)
    assert "no refund in review has its deadline moved by it" in again
    bad = system.workdir / "bad.toml"
    bad.write_text("[2027]\nworkdays = ['2027-02-22']\n")
    line = system.refused("calendar", "apply", str(bad))
    assert line.endswith("[2027] workdays: 2027-02-22 is a Monday, a working day already")


def test_reviewer_identity_comes_from_the_environment(system):
    system.run("submit", "demo-reject", "--requester", "user-21", "--reason", "no_longer_needed")
    system.json("status", "refund-demo-reject", "--wait")
    line = system.refused("approve", "refund-demo-reject")
    assert "Missing option '--reviewer'" in line
    system.env["REFUNDS_REVIEWER"] = "rev-2"
    try:
        system.run("approve", "refund-demo-reject")
    finally:
        del system.env["REFUNDS_REVIEWER"]
    done = system.json("status", "refund-demo-reject", "--wait")
    assert (done["state"], done["decided_by"]) == ("refunded", "rev-2")


def test_no_server_is_one_line(tmp_path):
    lonely = System(tmp_path)
    line = lonely.refused("pending")
    assert line.startswith("refunds: error: cannot reach Temporal at")


def test_sigterm_stops_worker_and_server(system):
    assert system.down() == 0
    assert "cannot reach Temporal" in system.refused("pending")
