"""``refunds people``: who may act on refunds. ``add`` makes the person's signing key on this
machine and records its public half in the directory; ``remove`` revokes it; ``list`` shows all."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from console.passwords import demo_passwords, set_password
from domain.errors import StatusConflictError
from domain.signatures import Role, public_key_text
from domain.values import id_problem
from settings import Settings
from starter.cli_common import JsonFlag, call_temporal, load_settings
from starter.errors import UserError
from starter.people_keys import enrol, key_path, own_key
from starter.render import console, print_json
from storage.accounts import ConsoleAccounts
from storage.database import open_database
from storage.people import PeopleDirectory

people_app = typer.Typer(
    name="people",
    help="Who may act on refunds: reviewers, operators and customers, with their signing keys.",
    no_args_is_help=True,
)


def directory(settings: Settings) -> PeopleDirectory:
    return PeopleDirectory(open_database(settings.database_url))


def checked_id(person_id: str) -> str:
    problem = id_problem(person_id, "person")
    if problem is not None:
        raise UserError(problem)
    return person_id


def enroll(settings: Settings, people_by_role: Mapping[Role, Iterable[str]]) -> list[str]:
    """Give a key and a directory entry to everyone named here who has none yet, so the embedded
    default needs no set-up; someone removed stays removed. Returns who was added."""
    return enrol(directory(settings), settings.key_dir, people_by_role)


PasswordFile = Annotated[
    Path | None,
    typer.Option(
        "--password-file", help="Console password, read from this file (else asked for here)."
    ),
]


def print_demo_accounts(settings: Settings, person_ids: list[str]) -> None:
    """Console passwords for demo people who have none (and are in the directory), shown once."""
    engine = open_database(settings.database_url)
    active = PeopleDirectory(engine).active()
    wanted = [person_id for person_id in dict.fromkeys(person_ids) if person_id in active]
    made = demo_passwords(ConsoleAccounts(engine), wanted)
    if made:
        console.print("console accounts (shown once; change with `refunds people password ID`):")
        for person_id, password in made.items():
            console.print(f"  {person_id:<12} {active[person_id].role.value:<9} {password}")


@people_app.command("add")
def add(
    person_id: Annotated[str, typer.Argument(help="The person's id, e.g. rev-ana.")],
    role: Annotated[Role, typer.Option("--role", help="What they do.")],
    password_file: PasswordFile = None,
) -> None:
    """Add someone: their signing key is made here (or reused) and its public half recorded;
    their console password is set from --password-file, or asked for on a terminal."""
    settings = load_settings()
    people = directory(settings)
    try:
        removed = people.entry(checked_id(person_id))
        # Someone removed comes back with a new key: the revoked one may have leaked.
        key = own_key(settings.key_dir, person_id, fresh=removed is not None)
        people.add(person_id, role, public_key_text(key))
    except StatusConflictError as err:
        raise UserError(str(err)) from None
    console.print(
        f"added {person_id} as {role.value}; private key {key_path(settings.key_dir, person_id)}"
    )
    if password_file is not None or sys.stdin.isatty():
        set_console_password(settings, person_id, password_file)
    if role is Role.CUSTOMER:  # only their own refunds need them, and read them when they start
        console.print("refunds already waiting learn of it by `refunds people announce`")
        return
    announce(settings)


@people_app.command("remove")
def remove(
    person_id: Annotated[str, typer.Argument(help="The person to remove.")],
) -> None:
    """Revoke someone's key: their signed actions are refused from now on."""
    settings = load_settings()
    if not directory(settings).remove(checked_id(person_id)):
        raise UserError(f"{person_id} is not in the people directory")
    key_path(settings.key_dir, person_id).unlink(missing_ok=True)
    console.print(f"removed {person_id}; their signing key on this machine is deleted")
    announce(settings)


@people_app.command("password")
def password_command(
    person_id: Annotated[str, typer.Argument(help="Whose console password to set.")],
    password_file: PasswordFile = None,
) -> None:
    """Set or change someone's console password."""
    settings = load_settings()
    if directory(settings).person(checked_id(person_id)) is None:
        raise UserError(f"{person_id} is not in the people directory")
    set_console_password(settings, person_id, password_file)


def set_console_password(settings: Settings, person_id: str, source: Path | None) -> None:
    if source is None:
        password = typer.prompt(
            f"console password for {person_id}", hide_input=True, confirmation_prompt=True
        )
    else:
        try:
            password = source.read_text().rstrip("\n")
        except OSError as err:
            raise UserError(f"cannot read {source}: {err.strerror}") from None
    try:
        set_password(ConsoleAccounts(open_database(settings.database_url)), person_id, password)
    except ValueError as err:
        raise UserError(str(err)) from None
    console.print(f"console password set for {person_id}")


@people_app.command("announce")
def announce_command() -> None:
    """Tell every running refund to read the directory again (after a change made while
    Temporal was down)."""
    announce(load_settings(), required=True)


def announce(settings: Settings, *, required: bool = False) -> None:
    """Running refunds read the directory again; without Temporal, say how to tell them later."""
    try:
        done = call_temporal(settings, lambda refunds: refunds.announce_people_change())
    except UserError as err:
        if required:
            raise
        console.print(
            f"running refunds were not told ({err}); they will be by `refunds people announce`"
        )
        return
    console.print(f"{done.told} running refund(s) told to read the directory again")
    if done.failed:
        raise UserError(
            f"{done.failed} running refund(s) could not be told: run `refunds people announce`"
        )


@people_app.command("list")
def list_people(json_output: JsonFlag = False) -> None:
    """Everyone in the directory, removed people included."""
    entries = directory(load_settings()).entries()
    if json_output:
        print_json(
            [
                {
                    "person_id": e.person.person_id,
                    "role": e.person.role.value,
                    "public_key": e.person.public_key,
                    "added_at": e.added_at.isoformat(),
                    "removed_at": e.removed_at.isoformat() if e.removed_at else None,
                }
                for e in entries
            ]
        )
        return
    table = Table("person", "role", "added", "removed", "public key")
    for e in entries:
        table.add_row(
            e.person.person_id,
            e.person.role.value,
            f"{e.added_at:%Y-%m-%d %H:%M}",
            f"{e.removed_at:%Y-%m-%d %H:%M}" if e.removed_at else "",
            e.person.public_key[:12] + "…",
        )
    console.print(table)
