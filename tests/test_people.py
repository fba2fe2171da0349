"""The people directory and signing keys: ``refunds people``, the keys on disk, and what a
signature over an action proves (pure checks, the ones a refund runs)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from domain.signatures import (
    FRESH_FOR,
    Person,
    Role,
    fingerprint,
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
    }
    checked.update(changes)
    return signature_problem(**checked)  # type: ignore[arg-type]


def test_a_fresh_signature_by_the_actor_proves_the_action():
    assert problem() is None
    assert problem(now=NOW + FRESH_FOR) is None
    assert problem(signed_at=NOW.astimezone(timezone(timedelta(hours=8)))) is None


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
            {"now": NOW + FRESH_FOR + timedelta(seconds=1)},
            "the signature is stale: signed 2026-12-01 10:00:00 UTC, accepted for 10 minutes",
        ),
        (
            {"signed_at": NOW + timedelta(minutes=2)},
            "the signature is stale: signed 2026-12-01 10:02:00 UTC, accepted for 10 minutes",
        ),
    ],
)
def test_what_a_signature_does_not_prove(changes, why):
    assert problem(**changes) == why


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
