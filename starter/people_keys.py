"""People's private signing keys on this machine: ``<REFUNDS_KEY_DIR>/people/<id>.pem``.

Each file is an Ed25519 key in PKCS#8 PEM, mode 0600 in a 0700 folder. Only its public half goes
to the people directory; the CLI signs a person's actions with it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from domain.signatures import Role, public_key_text
from domain.values import id_problem
from starter.errors import UserError
from starter.local_keys import private_folder

if TYPE_CHECKING:
    from storage.people import PeopleDirectory


def key_path(key_dir: Path, person_id: str) -> Path:
    problem = id_problem(person_id, "person")
    if problem is not None:
        raise UserError(problem)
    return key_dir / "people" / f"{person_id}.pem"


def own_key(key_dir: Path, person_id: str, *, fresh: bool = False) -> Ed25519PrivateKey:
    """The person's key, made now if this machine has none yet (or a new one if ``fresh``)."""
    path = key_path(key_dir, person_id)
    if fresh:
        path.unlink(missing_ok=True)
    if path.exists():
        return load_key(key_dir, person_id)
    private_folder(key_dir)
    private_folder(path.parent)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    return key


def load_key(key_dir: Path, person_id: str) -> Ed25519PrivateKey:
    path = key_path(key_dir, person_id)
    if not path.exists():
        raise UserError(
            f"no signing key for {person_id} in {path.parent}: "
            f"`refunds people add {person_id} --role ...` makes one"
        )
    if path.stat().st_mode & 0o077:
        raise UserError(f"{path} is readable by others: run `chmod 600 {path}`")
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as err:
        raise UserError(f"{path} is not a PEM private key ({err})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UserError(f"{path} is not an Ed25519 key")
    return key


def enrol(
    directory: PeopleDirectory, key_dir: Path, people_by_role: Mapping[Role, Iterable[str]]
) -> list[str]:
    """A key in ``key_dir`` and a directory entry for everyone named here who has none yet
    (someone removed stays removed); returns who was added."""
    known = {entry.person.person_id for entry in directory.entries()}
    added: list[str] = []
    for role, ids in people_by_role.items():
        for person_id in ids:
            if person_id in known or id_problem(person_id, "person") is not None:
                continue
            directory.add(person_id, role, public_key_text(own_key(key_dir, person_id)))
            known.add(person_id)
            added.append(person_id)
    return added
