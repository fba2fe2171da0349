"""The people directory: who may act on refunds, in which role, with which public key.

Only public keys live here; private keys stay with their owners (``REFUNDS_KEY_DIR``). A removed
person keeps their row, with when they were removed, so the books can tell who acted when.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, RowMapping, insert, select, update

from domain.errors import StatusConflictError
from domain.signatures import Person, Role
from storage.schema import people


@dataclass(frozen=True)
class DirectoryEntry:
    person: Person
    added_at: datetime
    removed_at: datetime | None


def already_present(person_id: str) -> StatusConflictError:
    return StatusConflictError(
        f"{person_id} is already in the directory: remove them first to change it"
    )


class PeopleDirectory:
    """The people directory of one system of record."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.unusable: list[str] = []
        """Ids of rows the last read left out."""

    def add(self, person_id: str, role: Role, public_key: str) -> Person:
        """Add someone (or bring back someone removed, with a new key)."""
        person = Person(person_id=person_id, role=role, public_key=public_key)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            found = conn.execute(
                select(people.c.removed_at).where(people.c.person_id == person_id)
            ).first()
            if found is None:
                conn.execute(
                    insert(people).values(
                        person_id=person_id,
                        role=role.value,
                        public_key=public_key,
                        added_at=now,
                    )
                )
            elif found.removed_at is None:
                raise already_present(person_id)
            else:
                conn.execute(
                    update(people)
                    .where(people.c.person_id == person_id)
                    .values(role=role.value, public_key=public_key, added_at=now, removed_at=None)
                )
        return person

    def entry(self, person_id: str) -> DirectoryEntry | None:
        """Someone's entry, removed or not; refuses with the conflict if they are present."""
        found = next((e for e in self.entries() if e.person.person_id == person_id), None)
        if found is not None and found.removed_at is None:
            raise already_present(person_id)
        return found

    def remove(self, person_id: str) -> bool:
        """Revoke someone's key; ``False`` when they were not in the directory."""
        with self.engine.begin() as conn:
            removed = conn.execute(
                update(people)
                .where(people.c.person_id == person_id, people.c.removed_at.is_(None))
                .values(removed_at=datetime.now(UTC))
            )
            return removed.rowcount == 1

    def person(self, person_id: str) -> Person | None:
        """Someone who may act now, looked up by id alone."""
        with self.engine.connect() as conn:
            return active_person(conn, person_id)

    def active(self) -> dict[str, Person]:
        """Everyone who may act now, by id."""
        return {
            entry.person.person_id: entry.person
            for entry in self.entries()
            if entry.removed_at is None
        }

    def entries(self) -> list[DirectoryEntry]:
        """Every entry; a row that is not a usable entry (a role or key edited by hand) is left
        out and its id kept in ``unusable``, so one bad row never stops the others."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(people).order_by(people.c.person_id)).mappings().all()
        found: list[DirectoryEntry] = []
        self.unusable = []
        for row in rows:
            person = _person(row)
            if person is None:
                self.unusable.append(str(row["person_id"])[:64])
                continue
            found.append(DirectoryEntry(person, row["added_at"], row["removed_at"]))
        return found


def active_person(conn: Connection, person_id: str) -> Person | None:
    """Someone who may act now, read inside the caller's transaction."""
    row = conn.execute(
        select(people).where(people.c.person_id == person_id, people.c.removed_at.is_(None))
    ).first()
    return None if row is None else _person(row._mapping)


def _person(row: RowMapping) -> Person | None:
    """The directory row as a person, or ``None`` for a row edited by hand into nonsense."""
    try:
        return Person(person_id=row["person_id"], role=row["role"], public_key=row["public_key"])
    except ValueError:
        return None
