"""Fuzzing: any input to the models or the CLI either works or fails cleanly, never crashes."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.certificates import Certificate
from starter.cli import run
from tests.factories import certificate, seed_record, shanghai
from workflows.contract import RefundRequest, SupportContact

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
BASE = seed_record(certificate("fuzz-1", purchased_at=shanghai(2026, 11, 20)))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_is_a_certificate_or_a_validation_error(value):
    try:
        cert = Certificate.model_validate(value)
    except ValidationError:
        return
    assert Certificate.model_validate(cert.model_dump()) == cert
    assert cert.refundable_amount >= 0
    assert cert.status is not None


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(BASE)), json_values)
def test_a_certificate_with_one_field_replaced(field, value):
    data = {**BASE, field: value}
    try:
        cert = Certificate.model_validate(data)
    except ValidationError:
        return
    assert cert.refundable_amount >= 0
    json.dumps(cert.model_dump(mode="json"))


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["certificate_id", "requester", "reason", "feedback", "support_contact"]),
        json_values | st.sampled_from(["other", "install_failed", "13800138000", "cas-1"]),
    )
)
def test_any_request_is_valid_or_refused(data):
    try:
        request = RefundRequest.model_validate(data)
    except ValidationError:
        return
    if request.reason == "other":
        assert (request.feedback or "").strip()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_contact_text_parses_or_is_refused(text):
    try:
        contact = SupportContact.model_validate(text)
    except ValidationError:
        return
    assert contact.masked() != contact.value


cli_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=30)


@pytest.fixture
def seeded(database_url, tmp_path):
    path = tmp_path / "seed.json"
    path.write_text(json.dumps([BASE]))
    assert run(["seed", str(path)]) == 0
    return path


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.sampled_from(
        [
            ["check", "CERT", "--at", "TEXT"],
            ["check", "TEXT"],
            ["seed", "TEXT"],
            ["check", "fuzz-1", "--at", "TEXT", "--json"],
            ["TEXT"],
            ["check", "--TEXT"],
        ]
    ),
    cli_text,
)
def test_cli_arguments_never_crash(seeded, capsys, template, text):
    args = [text if a == "TEXT" else "fuzz-1" if a == "CERT" else a for a in template]
    capsys.readouterr()
    code = run(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    if code == 0:
        return
    assert code in (1, 2)
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("refunds: error: ")
