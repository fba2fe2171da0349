"""The console's sessions and forms: the secret that signs session cookies, the CSRF token every
form carries, and who is signed in (checked against the people directory on every request, so a
person removed from it is signed out at once)."""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path

from fastapi import HTTPException, Request

from domain.signatures import Person, Role
from settings import Settings
from starter.local_keys import private_folder, write_once
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
    if not isinstance(expected, str) or not hmac.compare_digest(expected, sent):
        raise HTTPException(403, "this form has expired or did not come from the console")


def signed_in(request: Request, people: PeopleDirectory) -> Person | None:
    person_id = request.session.get("person")
    if not isinstance(person_id, str):
        return None
    person = people.active().get(person_id)
    if person is None:
        request.session.clear()
    return person


def require(request: Request, people: PeopleDirectory, *roles: Role) -> Person:
    """The signed-in person, if they hold one of ``roles``; 403 otherwise."""
    person = signed_in(request, people)
    if person is None:
        raise HTTPException(403, "sign in first")
    if roles and person.role not in roles:
        raise HTTPException(403, "this page is not for your role")
    return person
