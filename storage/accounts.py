"""Console accounts: a person's password, as an Argon2 hash, and the lockout that follows repeated
failed sign-ins. The hash is made and checked by ``console.passwords``; this module only keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update

from storage.schema import console_accounts

MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class Account:
    person_id: str
    password_hash: str
    failed_sign_ins: int
    locked_until: datetime | None
    sessions_valid_from: datetime


class ConsoleAccounts:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def set_password_hash(self, person_id: str, password_hash: str, now: datetime) -> None:
        """A new password: earlier failures and any lockout are forgotten."""
        with self.engine.begin() as conn:
            conn.execute(delete(console_accounts).where(console_accounts.c.person_id == person_id))
            conn.execute(
                insert(console_accounts).values(
                    person_id=person_id,
                    password_hash=password_hash,
                    failed_sign_ins=0,
                    locked_until=None,
                    changed_at=now,
                    sessions_valid_from=now,
                )
            )

    def account(self, person_id: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(console_accounts).where(console_accounts.c.person_id == person_id)
            ).first()
        if row is None:
            return None
        return Account(
            row.person_id,
            row.password_hash,
            row.failed_sign_ins,
            row.locked_until,
            row.sessions_valid_from,
        )

    def failed(self, person_id: str, now: datetime) -> None:
        """Count a failed sign-in (one statement, so parallel guesses are all counted); the
        ``MAX_FAILURES``-th locks the account for ``LOCKOUT``."""
        account = console_accounts.c
        with self.engine.begin() as conn:
            conn.execute(
                update(console_accounts)
                .where(account.person_id == person_id)
                .values(failed_sign_ins=account.failed_sign_ins + 1)
            )
            conn.execute(
                update(console_accounts)
                .where(account.person_id == person_id, account.failed_sign_ins >= MAX_FAILURES)
                .values(failed_sign_ins=0, locked_until=now + LOCKOUT)
            )

    def end_sessions(self, person_id: str, now: datetime) -> None:
        """Every session signed in before ``now`` stops counting (sign-out, a new password)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(console_accounts)
                .where(console_accounts.c.person_id == person_id)
                .values(sessions_valid_from=now)
            )

    def succeeded(self, person_id: str, password_hash: str | None = None) -> None:
        """A good sign-in clears the count (and stores a rehash when Argon2's settings moved)."""
        values: dict[str, object] = {"failed_sign_ins": 0, "locked_until": None}
        if password_hash is not None:
            values["password_hash"] = password_hash
        with self.engine.begin() as conn:
            conn.execute(
                update(console_accounts)
                .where(console_accounts.c.person_id == person_id)
                .values(**values)
            )
