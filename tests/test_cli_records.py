"""``refunds seed`` and ``refunds check`` as a user runs them: output, JSON and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from starter.cli import run
from tests.databases import BOTH
from tests.factories import certificate, seed_record, shanghai


@pytest.fixture(params=BOTH)
def backend(request):
    """Every test here runs on SQLite and on PostgreSQL."""
    return request.param


PURCHASED = shanghai(2026, 11, 20, 10)


def write_seed(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


@pytest.fixture
def seed_file(tmp_path):
    records = [
        seed_record(certificate("cas-1", purchased_at=PURCHASED)),
        seed_record(certificate("cas-2", purchased_at=PURCHASED, issued_at=shanghai(2026, 11, 21))),
    ]
    return write_seed(tmp_path / "seed.json", records)


def run_json(capsys, *args: str):
    assert run([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_seed_then_check(database_url, seed_file, capsys):
    assert run_json(capsys, "seed", str(seed_file)) == {
        "inserted": ["cas-1", "cas-2"],
        "unchanged": [],
    }
    again = run_json(capsys, "seed", str(seed_file))
    assert again["inserted"] == [] and again["unchanged"] == ["cas-1", "cas-2"]
    decision = run_json(capsys, "check", "cas-1", "--at", "2026-11-22T10:00:00+08:00")
    assert decision["outcome"] == "auto_approve"
    assert decision["rule"] == "unissued-within-5-days"
    assert decision["refund_amount"] == "199.00"
    assert decision["legs"] == [{"channel": "alipay", "amount": "199.00", "reference": "ali-cas-1"}]
    review = run_json(capsys, "check", "cas-2", "--at", "2026-11-26T16:30:00Z")
    assert review["outcome"] == "manual_review"
    assert review["rule"] == "issued-within-28-days"
    assert review["review_deadline"] is not None


def test_check_changes_nothing(database_url, seed_file, store, capsys):
    run(["seed", str(seed_file)])
    before = store.get("cas-2")
    run(["check", "cas-2"])
    assert store.get("cas-2") == before


def test_human_output_is_a_panel(database_url, seed_file, capsys):
    run(["seed", str(seed_file)])
    capsys.readouterr()
    assert run(["check", "cas-1", "--at", "2026-11-30T10:00:00+08:00"]) == 0
    out = capsys.readouterr().out
    assert "manual_review" in out and "unissued-after-5-days" in out and "199.00 CNY" in out


def test_a_file_with_one_bad_record_loads_nothing(database_url, tmp_path, store, capsys):
    good = seed_record(certificate("cas-1", purchased_at=PURCHASED))
    bad = seed_record(certificate("cas-2", purchased_at=PURCHASED))
    bad["order"]["payments"][0]["amount"] = 12.5
    path = write_seed(tmp_path / "bad.json", [good, bad])
    assert run(["seed", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "record 2 (cas-2)" in err and "never floats" in err
    assert store.count() == 0


def _record(**changes: object) -> dict[str, object]:
    """A seed record valid but for ``changes``."""
    record = {
        "certificate_id": "bad-1",
        "owner": "user-1",
        "product": "DV",
        "validation": "not_submitted",
        "purchased_at": "2026-11-20T10:00:00+08:00",
        "expires_at": "2027-11-20T10:00:00+08:00",
        "order": {
            "order_id": "ord-bad-1",
            "payments": [{"channel": "alipay", "amount": "1.00", "reference": "a"}],
        },
    }
    return {**record, **changes}


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        (["check", "nope"], None, "unknown certificate 'nope'"),
        (["check", "cas-1", "--at", "yesterday"], None, "not an ISO 8601 time"),
        (["check", "cas-1", "--at", "2026-11-22T10:00:00"], None, "has no offset"),
        (["check", "cas-1", "--at", "2020-01-01T00:00:00Z"], None, "before the certificate"),
        (["seed", "FILE"], "{not json", "not valid JSON"),
        (["seed", "FILE"], '{"a": 1}', "expected a JSON list"),
        (["seed", "FILE"], '[{"certificate_id": "x"}]', "record 1 (x)"),
        (["seed", "missing.json"], None, "no such file"),
        (["check", "cas-1", "--at", "9999-12-31T23:00:00-10:00"], None, "outside the years"),
        (["seed", "FILE"], "[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (
            ["seed", "FILE"],
            json.dumps([_record(expires_at="9999-12-31T23:00:00-10:00")]),
            "outside",
        ),
        (
            ["seed", "FILE"],
            json.dumps([_record(purchased_at="2099-01-01T00:00:00Z", expires_at=None)]),
            "future",
        ),
        (["seed", "FILE"], json.dumps([_record(held_by="refund-x")]), "kept by the system"),
        (["approve", "refund-1", "--reviewer", "r" * 65], None, "longer than 64 characters"),
        (["repair", "cas-1", "--operator", "x y", "--note", "n"], None, "may hold only"),
        (["check"], None, "Missing argument"),
        (["frobnicate"], None, "No such command"),
    ],
)
def test_user_mistakes_give_one_line(
    database_url, seed_file, tmp_path, capsys, args, content, message
):
    run(["seed", str(seed_file)])
    capsys.readouterr()
    if content is not None:
        path = tmp_path / "input.json"
        path.write_text(content, encoding="utf-8")
        args = [str(path) if a == "FILE" else a for a in args]
    code = run(args)
    captured = capsys.readouterr()
    assert code != 0
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("refunds: error:")
    assert message in lines[0]
    assert "Traceback" not in captured.err + captured.out


def test_bad_configuration_is_one_line(database_url, monkeypatch, capsys):
    monkeypatch.setenv("REFUNDS_TIMEZONE", "Mars/Olympus")
    from settings import get_settings

    get_settings.cache_clear()
    assert run(["check", "cas-1"]) == 1
    assert "REFUNDS_TIMEZONE" in capsys.readouterr().err


def test_the_installed_command_exits_cleanly(database_url, seed_file):
    refunds = Path(sys.executable).with_name("refunds")
    done = subprocess.run(
        [str(refunds), "seed", str(seed_file), "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["inserted"] == ["cas-1", "cas-2"]
    failed = subprocess.run(
        [str(refunds), "check", "missing"], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1
    assert failed.stderr == "refunds: error: unknown certificate 'missing'\n"


def test_check_says_what_the_assessment_activity_records(store, capsys):
    """One composition of the rules: `refunds check` and the workflow's assessment agree, to the
    warnings and the review deadline."""
    from activities.assessment import AssessmentActivities, RefundTerms
    from activities.payloads import AssessInput

    bought = shanghai(2026, 11, 1)
    cert = certificate("cas-agree", purchased_at=bought, expires_at=shanghai(2026, 12, 12))
    store.seed([cert])
    at = shanghai(2026, 11, 25, 9)
    shown = run_json(capsys, "check", "cas-agree", "--at", at.isoformat())
    recorded = AssessmentActivities(RefundTerms()).assess(AssessInput(certificate=cert, at=at))
    assert recorded.decision is not None
    assert shown["rule"] == recorded.decision.rule.value == "unissued-after-5-days"
    assert shown["warnings"] == recorded.decision.warnings
    assert any("business days remain" in w for w in shown["warnings"])
    assert recorded.review_deadline is not None
    assert shown["review_deadline"] == recorded.review_deadline.isoformat()


def test_seeding_the_embedded_default_gives_the_owners_keys(
    database_url, seed_file, capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("REFUNDS_KEY_DIR", str(tmp_path / "keys"))
    assert run(["seed", str(seed_file)]) == 0
    capsys.readouterr()
    listed = run_json(capsys, "people", "list")
    if database_url.startswith("sqlite"):
        assert [(p["person_id"], p["role"]) for p in listed] == [("user-1", "customer")]
        assert (tmp_path / "keys" / "people" / "user-1.pem").exists()
    else:  # a deployment issues its people's keys itself
        assert listed == []
