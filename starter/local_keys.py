"""The payload encryption key of the embedded default, kept on this machine.

``refunds up`` makes one AES-256 key on first start (``<REFUNDS_KEY_DIR>/encryption.keys``, the
folder 0700 and the file 0600) unless ``REFUNDS_ENCRYPTION_KEYS`` is set, and every command run
with the same key folder reads it: the worker, the CLI and the codec endpoint agree without any
set-up, and Temporal's database holds only ciphertext. Configured keys always win.
"""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path

from codec import EncryptionCodec, EncryptionKeyError, codec_from, new_key
from settings import Settings
from starter.errors import UserError

KEY_FILE = "encryption.keys"


def local_key_file(settings: Settings) -> Path:
    return settings.key_dir / KEY_FILE


def ensure_local_key(settings: Settings) -> Path | None:
    """The key file, made now if missing and checked; ``None`` when keys are configured."""
    if settings.encryption_keys:
        return None
    path = local_key_file(settings)
    if not path.exists():
        private_folder(path.parent)
        key_id = f"local-{datetime.now(UTC):%Y%m%d}"
        write_once(path, f"{key_id}:{new_key()}\n")
    if encryption_codec(settings) is None:
        raise UserError(f"{path} holds no key: move it away and start `refunds up` again")
    return path


def write_once(path: Path, text: str) -> None:
    """``text`` in ``path`` (0600), whole or not at all, unless ``path`` already exists."""
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made the key first
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def private_folder(folder: Path) -> Path:
    """``folder`` made if missing, readable by its owner only."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
    except OSError as err:
        raise UserError(f"cannot keep keys in {folder}: {err.strerror}") from None
    return folder


def encryption_codec(settings: Settings, *, display: bool = False) -> EncryptionCodec | None:
    """The codec for the configured keys, else for the local key file if there is one; it
    refuses plain-text payloads, but for ``display`` (the Web UI's codec endpoint)."""
    strict = not display
    if settings.encryption_keys:
        return codec_from(
            settings.encryption_keys, settings.encryption_key_id, refuse_plaintext=strict
        )
    path = local_key_file(settings)
    if not path.exists():
        return None
    if path.stat().st_mode & 0o077:
        raise UserError(f"{path} is readable by others: run `chmod 600 {path}`")
    try:
        codec = codec_from(path.read_text().strip(), None, refuse_plaintext=strict)
    except (EncryptionKeyError, OSError) as err:
        raise UserError(f"{path}: {err}") from None
    if codec is None:
        raise UserError(f"{path} holds no key: move it away and start `refunds up` again")
    return codec
