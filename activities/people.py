"""The people directory, read for a refund that waits for a person: who may act on it, with which
public key. The result is recorded in the refund's history, so replay trusts the same people."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel
from temporalio import activity

from domain.signatures import Person, Role

if TYPE_CHECKING:
    from storage.people import PeopleDirectory

STAFF = frozenset({Role.REVIEWER, Role.OPERATOR})


class PeopleLookup(BaseModel):
    refund_id: str
    requester: str


class PeopleActivities:
    def __init__(self, directory: PeopleDirectory) -> None:
        self.directory = directory

    @activity.defn(name="load_people")
    def load_people(self, lookup: PeopleLookup) -> list[Person]:
        """Everyone who may review or operate, and the requester (customers are many: only the
        one this refund needs)."""
        found = [
            person
            for person in self.directory.active().values()
            if person.role in STAFF or person.person_id == lookup.requester
        ]
        if self.directory.unusable:
            activity.logger.error(
                "people directory rows left out: not a valid role and key",
                extra={"person_ids": self.directory.unusable},
            )
        return found
