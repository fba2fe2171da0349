"""The console's sessions and forms: the secret that signs session cookies, the CSRF token every
form carries, and who is signed in (checked against the people directory and the account on every
request, so a person removed from it, a sign-out or a new password ends a session at once)."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime
from pathlib import Path

from fastapi import HTTPException, Request

from domain.signatures import Person, Role
from settings import Settings
from starter.local_keys import private_folder, write_once
from storage.accounts import ConsoleAccounts
from storage.people import PeopleDirectory

SECRET_FILE = "console.secret"
SESSION_COOKIE = "refunds_console"
SESSION_HOURS = 8


def session_secret(settings: Settings) -> str:
    """``REFUNDS_CONSOLE_SECRET``, else a random secret kept in the key folder (0600)."""
    if settings.console_secret:
        return settings.console_secret
    path: Path = settings.key_dir / SECRET_FILE
    if not path.exists():
        private_folder(path.parent)
        write_once(path, secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, sent: str) -> None:
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise HTTPException(403, "this form has expired or did not come from the console")


class Gate:
    """Who is signed in: the session names a person and when they signed in; the person must
    still be in the directory, and no sign-out or new password may have come since."""

    def __init__(self, people: PeopleDirectory, accounts: ConsoleAccounts) -> None:
        self.people = people
        self.accounts = accounts

    def open(self, request: Request, person: Person, now: datetime) -> None:
        request.session.clear()
        request.session["person"] = person.person_id
        request.session["since"] = now.timestamp()

    def close(self, request: Request, now: datetime) -> None:
        person = self.signed_in(request)
        if person is not None:
            self.accounts.end_sessions(person.person_id, now)
        request.session.clear()

    def signed_in(self, request: Request) -> Person | None:
        if hasattr(request.state, "person"):
            found: Person | None = request.state.person
            return found
        person = self._check(request)
        request.state.person = person
        return person

    def _check(self, request: Request) -> Person | None:
        person_id, since = request.session.get("person"), request.session.get("since")
        if not isinstance(person_id, str) or not isinstance(since, float):
            return None
        account = self.accounts.account(person_id)
        person = self.people.person(person_id)
        if account is None or person is None or account.sessions_valid_from.timestamp() > since:
            request.session.clear()
            return None
        return person

    def require(self, request: Request, *roles: Role) -> Person:
        """The signed-in person, if they hold one of ``roles``; 403 otherwise."""
        person = self.signed_in(request)
        if person is None:
            raise HTTPException(403, "sign in first")
        if roles and person.role not in roles:
            raise HTTPException(403, "this page is not for your role")
        return person
