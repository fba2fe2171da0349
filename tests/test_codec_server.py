"""The codec server decrypts only for the right bearer token, and refuses anything else with 401."""

from __future__ import annotations

import base64
import os

import pytest
from aiohttp.test_utils import TestClient, TestServer

from codec import codec_from
from starter.codec_auth import bearer_matches
from starter.codec_server import codec_app

KEY = base64.b64encode(os.urandom(32)).decode()
UI = "http://localhost:8233"


@pytest.fixture
async def http():
    codec = codec_from(f"k1:{KEY}", None)
    assert codec is not None
    async with TestClient(TestServer(codec_app(codec, [UI], auth_token="s3cret"))) as client:
        yield client


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer",
        "Bearer ",
        "Bearer wrong",
        "Bearer s3cret2",
        "Bearer s3cre",
        "bearer s3cret",
        "Basic s3cret",
        "s3cret",
        "Bearer  s3cret",
        "Bearer 秘密",
        "Bearer s3crét",
    ],
)
async def test_anything_but_the_token_is_refused_with_401(http, header):
    headers = {} if header is None else {"Authorization": header}
    answer = await http.post("/decode", json={"payloads": []}, headers=headers)
    assert answer.status == 401
    assert (await answer.json()) == {"error": "unauthorized"}


async def test_the_token_decodes(http):
    answer = await http.post(
        "/decode", json={"payloads": []}, headers={"Authorization": "Bearer s3cret"}
    )
    assert answer.status == 200
    assert (await answer.json()) == {}


def test_header_bytes_that_are_not_utf8_are_simply_not_the_token():
    # aiohttp keeps undecodable header bytes as surrogates ("\udcff" for 0xff).
    assert bearer_matches("Bearer \udcff", "s3cret") is False
    assert bearer_matches("Bearer s3cret\udcff", "s3cret") is False
    assert bearer_matches("Bearer s3cret", "s3cret") is True
