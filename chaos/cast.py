"""The chaos run's people: its reviewers, its operator and every certificate's owner, each with a
signing key in the run's own folder and an entry in the run's people directory."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import Engine

from domain.signatures import Role, public_key_text
from starter.people_keys import own_key
from storage.people import PeopleDirectory


def enrol_cast(
    engine: Engine,
    key_dir: Path,
    reviewers: Iterable[str],
    operators: Iterable[str],
    owners: Iterable[str],
) -> None:
    directory = PeopleDirectory(engine)
    cast = {Role.REVIEWER: reviewers, Role.OPERATOR: operators, Role.CUSTOMER: owners}
    for role, ids in cast.items():
        for person_id in sorted(set(ids)):
            directory.add(person_id, role, public_key_text(own_key(key_dir, person_id)))
