"""Reading the channels' keys and secrets from files: each must be the owner's alone (0600).

Nothing read here is ever logged; an error names the file, never what it holds.
"""

from __future__ import annotations

import os
from pathlib import Path


class SecretFileError(ValueError):
    """A key or secret file is missing, readable by others, or empty; the message is one line."""


def read_secret(path: Path, what: str) -> bytes:
    """The bytes of ``path``, refused unless only its owner may read it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SecretFileError(f"{what}: {path} does not exist") from None
    except OSError as err:
        raise SecretFileError(f"{what}: {path} cannot be read ({err.strerror})") from None
    if mode & 0o077:
        raise SecretFileError(f"{what}: {path} is readable by others: run `chmod 600 {path}`")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SecretFileError(f"{what}: {path} cannot be read ({err.strerror})") from None
    if not data.strip():
        raise SecretFileError(f"{what}: {path} is empty")
    return data


def read_secret_text(path: Path, what: str) -> str:
    """``read_secret`` as one line of text (an API key, a webhook secret)."""
    try:
        return read_secret(path, what).decode().strip()
    except UnicodeDecodeError:
        raise SecretFileError(f"{what}: {path} is not text") from None


def private_folder(folder: Path) -> Path:
    """``folder`` made if missing, readable by its owner only (0700)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    except OSError as err:
        raise SecretFileError(f"cannot keep secrets in {folder}: {err.strerror}") from None
    return folder


def write_secret_once(path: Path, data: bytes) -> bool:
    """``data`` in ``path`` (0600, its folder 0700), whole or not at all, unless ``path``
    exists already (another process may have made it first); whether this call wrote it."""
    private_folder(path.parent)
    if path.exists():
        return False
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(draft, path)
        except FileExistsError:
            return False
        return True
    finally:
        draft.unlink(missing_ok=True)
