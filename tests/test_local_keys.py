"""The embedded default's payload key: made once, private, reused, never over configured keys."""

from __future__ import annotations

import pytest
from temporalio.api.common.v1 import Payload

from codec import new_key
from settings import Settings
from starter.errors import UserError
from starter.local_keys import encryption_codec, ensure_local_key, local_key_file


def test_the_first_start_makes_a_private_key_and_later_ones_reuse_it(tmp_path):
    settings = Settings(key_dir=tmp_path / "keys")
    assert encryption_codec(settings) is None  # nothing to encrypt with before `refunds up`
    made = ensure_local_key(settings)
    assert made == local_key_file(settings)
    assert made.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    first = made.read_text()
    assert ensure_local_key(settings) == made and made.read_text() == first
    assert encryption_codec(settings) is not None


async def test_the_same_key_file_decrypts_what_another_process_encrypted(tmp_path):
    settings = Settings(key_dir=tmp_path)
    ensure_local_key(settings)
    writer, reader = encryption_codec(settings), encryption_codec(settings)
    assert writer is not None and reader is not None
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"13800138000"')
    [sealed] = await writer.encode([plain])
    assert b"13800138000" not in sealed.data
    assert await reader.decode([sealed]) == [plain]


async def test_configured_keys_win_and_no_file_is_made(tmp_path):
    settings = Settings(key_dir=tmp_path, encryption_keys=f"prod:{new_key()}")
    assert ensure_local_key(settings) is None
    assert not local_key_file(settings).exists()
    configured = encryption_codec(settings)
    assert configured is not None
    [sealed] = await configured.encode([Payload(data=b"x")])
    assert sealed.metadata["encryption-key-id"] == b"prod"


def test_a_key_file_others_can_read_is_refused(tmp_path):
    settings = Settings(key_dir=tmp_path)
    made = ensure_local_key(settings)
    assert made is not None
    made.chmod(0o644)
    with pytest.raises(UserError, match="readable by others: run `chmod 600"):
        encryption_codec(settings)


def test_a_damaged_key_file_is_one_readable_line(tmp_path):
    settings = Settings(key_dir=tmp_path)
    made = ensure_local_key(settings)
    assert made is not None
    made.write_text("local:not-a-key\n")
    with pytest.raises(UserError, match=r"encryption\.keys: encryption key 'local' is not base64"):
        encryption_codec(settings)


def test_an_empty_key_file_is_refused_never_read_as_no_encryption(tmp_path):
    settings = Settings(key_dir=tmp_path)
    local_key_file(settings).write_text("")
    local_key_file(settings).chmod(0o600)
    for step in (ensure_local_key, encryption_codec):
        with pytest.raises(UserError, match="holds no key: move it away"):
            step(settings)


def test_a_key_folder_that_cannot_be_made_is_one_readable_line(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(UserError, match="cannot keep keys in"):
        ensure_local_key(Settings(key_dir=blocked / "keys"))
