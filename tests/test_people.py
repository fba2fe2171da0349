"""The people directory and signing keys: ``refunds people``, the keys on disk, and what a
signature over an action proves (pure checks, the ones a refund runs)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert

from domain.signatures import (
    CLOCK_SKEW,
    FRESH_FOR,
    ActionSignature,
    Person,
    Role,
    fingerprint,
    message,
    public_key_text,
    sign,
    signature_problem,
)
from settings import Settings
from starter.cli import run
from starter.cli_people import enroll
from starter.errors import UserError
from starter.people_keys import key_path, load_key, own_key
from storage.database import open_database
from storage.people import PeopleDirectory
from storage.schema import people as people_table

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ANA = Ed25519PrivateKey.generate()
BEN = Ed25519PrivateKey.generate()
DIRECTORY = {
    "rev-ana": Person(person_id="rev-ana", role=Role.REVIEWER, public_key=public_key_text(ANA)),
    "ops-ben": Person(person_id="ops-ben", role=Role.OPERATOR, public_key=public_key_text(BEN)),
}


def problem(**changes: object) -> str | None:
    signed_by = changes.pop("key", ANA)
    at = changes.pop("signed_at", NOW)
    action = {"refund_id": "refund-cas-1", "action": "approve", "actor": "rev-ana", "text": "ok"}
    signature = sign(signed_by, **action, signed_at=at)  # type: ignore[arg-type]
    checked: dict[str, object] = {
        **action,
        "directory": DIRECTORY,
        "role": Role.REVIEWER,
        "signature": signature,
        "now": NOW,
        "used": (),
        "not_before": NOW - timedelta(hours=1),
    }
    checked.update(changes)
    return signature_problem(**checked)  # type: ignore[arg-type]


def test_a_fresh_signature_by_the_actor_proves_the_action():
    assert problem() is None
    assert problem(now=NOW + FRESH_FOR) is None
    assert problem(signed_at=NOW.astimezone(timezone(timedelta(hours=8)))) is None
    assert problem(not_before=NOW + timedelta(minutes=1)) is None  # the signer's clock is behind


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        (
            {"signature": None},
            "the action is not signed: `refunds approve` signs it with rev-ana's key",
        ),
        ({"key": BEN}, "the signature does not match rev-ana's key for this action"),
        ({"text": "ok!"}, "the signature does not match rev-ana's key for this action"),
        (
            {"refund_id": "refund-cas-2"},
            "the signature does not match rev-ana's key for this action",
        ),
        ({"action": "reject"}, "the signature does not match rev-ana's key for this action"),
        ({"actor": "rev-zoe"}, "rev-zoe is not in the people directory"),
        ({"actor": "rev-zoe", "role": None}, "rev-zoe is not in the people directory"),
        ({"role": Role.OPERATOR}, "rev-ana is not an operator in the people directory"),
        (
            {"actor": "ops-ben", "key": BEN},
            "ops-ben is not a reviewer in the people directory",
        ),
        (
            {"now": NOW + FRESH_FOR + timedelta(seconds=1)},
            "the signature is stale: signed 2026-12-01 10:00:00 UTC, accepted for 10 minutes",
        ),
        (
            {"not_before": NOW + timedelta(minutes=1, seconds=1)},
            "the signature was made before this request was submitted",
        ),
        (
            {"signed_at": NOW + timedelta(minutes=2)},
            "the signature is stale: signed 2026-12-01 10:02:00 UTC, accepted for 10 minutes",
        ),
    ],
)
def test_what_a_signature_does_not_prove(changes, why):
    assert problem(**changes) == why


def test_the_signed_bytes_are_exactly_these():
    """The message format is a contract with every signer: changing it invalidates them all."""
    at = datetime(2026, 12, 1, 10, 0, 5, 120000, tzinfo=UTC)
    assert (
        message("refund-c-1", "reject", "rev-ana", '已安装 "ok"', at)
        == (
            '["refunds-action-v1","refund-c-1","reject","rev-ana","已安装 \\"ok\\"",'
            '"2026-12-01T10:00:05.120000+00:00"]'
        ).encode()
    )


def test_a_signature_dated_at_the_edge_of_the_clock_skew_is_accepted():
    assert timedelta(minutes=1) == CLOCK_SKEW
    assert problem(signed_at=NOW + CLOCK_SKEW) is None
    assert problem(signed_at=NOW + CLOCK_SKEW + timedelta(microseconds=1)) is not None


def test_the_fingerprint_is_a_digest_of_the_signature_bytes():
    signature = sign(ANA, "refund-cas-1", "approve", "rev-ana", "ok", NOW)
    raw = base64.b64decode(signature.value)
    assert fingerprint(signature) == hashlib.sha256(raw).hexdigest()[:32]


def test_directory_entries_and_signatures_have_their_exact_sizes():
    key = public_key_text(ANA)
    assert len(key) == 44 and Role("customer") is Role.CUSTOMER
    Person(person_id="p" * 64, role=Role.REVIEWER, public_key=key)
    for bad in ({"person_id": "p" * 65}, {"public_key": key[:-1]}, {"public_key": key + "="}):
        with pytest.raises(ValueError):
            Person.model_validate({"person_id": "p", "role": "reviewer", "public_key": key, **bad})
    signature = sign(ANA, "refund-cas-1", "approve", "rev-ana", "ok", NOW)
    assert len(signature.value) == 88
    with pytest.raises(ValueError):
        ActionSignature(signed_at=NOW, value=signature.value + "A")


def test_a_signature_is_good_once_however_it_is_spelled():
    signature = sign(ANA, "refund-cas-1", "approve", "rev-ana", "ok", NOW)
    used = {fingerprint(signature)}
    assert problem(used=used) == "this signed action was already used"
    # The base64 character before "==" has four spare bits: other spellings, the same bytes.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = signature.value[-3]
    respelled = signature.value[:-3] + alphabet[alphabet.index(last) ^ 1] + "=="
    assert base64.b64decode(respelled) == base64.b64decode(signature.value)
    other = signature.model_copy(update={"value": respelled})
    for spent in (set(), used):
        assert problem(signature=other, used=spent) == (
            "the signature does not match rev-ana's key for this action"
        )


def test_keys_on_disk_are_private_and_reused(tmp_path):
    key = own_key(tmp_path, "rev-ana")
    path = key_path(tmp_path, "rev-ana")
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "people").stat().st_mode & 0o777 == 0o700
    assert public_key_text(own_key(tmp_path, "rev-ana")) == public_key_text(key)
    assert public_key_text(load_key(tmp_path, "rev-ana")) == public_key_text(key)
    with pytest.raises(UserError, match="no signing key for rev-zoe"):
        load_key(tmp_path, "rev-zoe")
    path.chmod(0o640)
    with pytest.raises(UserError, match="readable by others"):
        load_key(tmp_path, "rev-ana")
    with pytest.raises(UserError, match="may hold only letters"):
        key_path(tmp_path, "../rev-ana")


def test_a_row_edited_by_hand_is_left_out_not_fatal(store):
    people = PeopleDirectory(store.engine)
    people.add("rev-ana", Role.REVIEWER, public_key_text(ANA))
    with store.engine.begin() as conn:
        conn.execute(
            insert(people_table).values(
                person_id="boss", role="boss", public_key="short", added_at=datetime.now(UTC)
            )
        )
    assert list(people.active()) == ["rev-ana"]
    assert people.unusable == ["boss"]


def test_the_directory_adds_removes_and_brings_back(store):
    people = PeopleDirectory(store.engine)
    people.add("rev-ana", Role.REVIEWER, public_key_text(ANA))
    assert list(people.active()) == ["rev-ana"]
    with pytest.raises(Exception, match="already in the directory"):
        people.add("rev-ana", Role.OPERATOR, public_key_text(BEN))
    assert people.remove("rev-ana") is True
    assert people.remove("rev-ana") is False
    assert people.active() == {}
    [removed] = people.entries()
    assert removed.removed_at is not None
    people.add("rev-ana", Role.OPERATOR, public_key_text(BEN))
    assert people.active()["rev-ana"].role is Role.OPERATOR
    assert people.active()["rev-ana"].public_key == public_key_text(BEN)


def test_people_commands(database_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REFUNDS_KEY_DIR", str(tmp_path))
    assert run(["people", "add", "rev-ana", "--role", "reviewer"]) == 0
    assert "added rev-ana as reviewer" in capsys.readouterr().out
    assert run(["people", "add", "rev-ana", "--role", "operator"]) == 1
    assert capsys.readouterr().err.strip() == (
        "refunds: error: rev-ana is already in the directory: remove them first to change it"
    )
    assert run(["people", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["role"] == "reviewer" and listed["removed_at"] is None
    assert listed["public_key"] == public_key_text(load_key(tmp_path, "rev-ana"))
    revoked = public_key_text(load_key(tmp_path, "rev-ana"))
    assert run(["people", "remove", "rev-ana"]) == 0
    assert not key_path(tmp_path, "rev-ana").exists()
    assert run(["people", "add", "rev-ana", "--role", "reviewer"]) == 0
    assert public_key_text(load_key(tmp_path, "rev-ana")) != revoked  # back with a new key
    assert run(["people", "remove", "rev-ana"]) == 0
    assert run(["people", "remove", "rev-ana"]) == 1
    assert capsys.readouterr().err.strip().endswith("rev-ana is not in the people directory")
    assert run(["people", "add", "x" * 65, "--role", "reviewer"]) == 1
    assert "the person id is longer than 64 characters" in capsys.readouterr().err


def test_enrolment_gives_keys_to_the_named_people_who_have_none(database_url, tmp_path):
    settings = Settings(database_url=database_url, key_dir=tmp_path)
    assert enroll(settings, {Role.REVIEWER: ["rev-1", "rev-2"], Role.OPERATOR: ["ops-1"]}) == [
        "rev-1",
        "rev-2",
        "ops-1",
    ]
    people = PeopleDirectory(open_database(database_url))
    assert people.remove("rev-2")
    again = enroll(settings, {Role.REVIEWER: ["rev-1", "rev-2", "bad id"], Role.CUSTOMER: ["u-1"]})
    assert again == ["u-1"]  # rev-2 stays removed; an invalid id is skipped
    active = people.active()
    assert {p: active[p].role for p in active} == {
        "rev-1": Role.REVIEWER,
        "ops-1": Role.OPERATOR,
        "u-1": Role.CUSTOMER,
    }
    assert active["u-1"].public_key == public_key_text(load_key(tmp_path, "u-1"))
