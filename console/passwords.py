"""Console passwords: Argon2 hashes (``argon2-cffi``), sign-in with lockout, and no hint of
whether an account exists (an unknown id costs the same hash check and gets the same answer)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from domain.signatures import Person
from storage.accounts import ConsoleAccounts
from storage.people import PeopleDirectory

HASHER = PasswordHasher()
MIN_LENGTH = 10
MAX_LENGTH = 256
WRONG = "wrong id or password, or too many failed tries: after five, an account waits 15 minutes"


@cache
def _unknown() -> str:
    """A hash no password matches, checked for unknown ids: made on first use, not at import
    (every `refunds` command imports this module)."""
    return HASHER.hash(secrets.token_urlsafe(32))


def password_problem(password: str) -> str | None:
    if len(password) < MIN_LENGTH:
        return f"a password needs at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"a password has at most {MAX_LENGTH} characters"
    return None


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def set_password(accounts: ConsoleAccounts, person_id: str, password: str) -> None:
    """Give ``person_id`` this console password (``ValueError`` when it is too weak or long)."""
    problem = password_problem(password)
    if problem is not None:
        raise ValueError(problem)
    accounts.set_password_hash(person_id, hash_password(password), datetime.now(UTC))


def demo_passwords(accounts: ConsoleAccounts, person_ids: list[str]) -> dict[str, str]:
    """A random password for each of these people who has no console account yet, to print once."""
    made = {}
    for person_id in person_ids:
        if accounts.account(person_id) is None:
            made[person_id] = secrets.token_urlsafe(9)
            set_password(accounts, person_id, made[person_id])
    return made


@dataclass(frozen=True)
class SignIn:
    person: Person | None
    refusal: str = ""


def sign_in(
    people: PeopleDirectory, accounts: ConsoleAccounts, person_id: str, password: str, now: datetime
) -> SignIn:
    """The person, if the password is theirs and their account is not locked; else one answer
    for every failure, after the same hash check, so nothing tells an existing id from another."""
    account = accounts.account(person_id) if len(person_id) <= 64 else None
    try:
        HASHER.verify(account.password_hash if account else _unknown(), password[:MAX_LENGTH])
        matched = account is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        matched = False
    locked = account is not None and account.locked_until is not None and account.locked_until > now
    person = people.person(person_id) if matched and not locked else None
    if person is None:
        if account is not None and not locked:
            accounts.failed(person_id, now)
        return SignIn(None, WRONG)
    assert account is not None
    rehash = hash_password(password) if HASHER.check_needs_rehash(account.password_hash) else None
    accounts.succeeded(person_id, rehash)
    return SignIn(person)
