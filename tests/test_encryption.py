"""Personal data is ciphertext in Temporal; the workflow still runs; the codec server decodes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.client import Client

from codec import (
    ENCODING,
    REFUSED_PLAINTEXT,
    EncryptionCodec,
    EncryptionKeyError,
    codec_from,
    data_converter,
    new_key,
    parse_keys,
)
from domain.signatures import Role
from starter.codec_server import codec_app
from tests.factories import certificate
from tests.signing import enrol, signed_request
from worker import build_worker
from workflows.contract import RefundRequest, RefundState
from workflows.refund import RefundWorkflow

PHONE = "13800138000"
FEEDBACK_SECRET = "my dingtalk is zhang_wei_88"
OLD, NEW = new_key(), new_key()
UI = "http://localhost:8233"


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


async def test_round_trip_and_rotation():
    old = EncryptionCodec(parse_keys(f"k1:{OLD}"), "k1")
    [sealed] = await old.encode([payload(PHONE)])
    assert sealed.metadata["encoding"] == ENCODING
    assert PHONE.encode() not in sealed.data
    rotated = EncryptionCodec(parse_keys(f"k1:{OLD},k2:{NEW}"), "k2")
    assert (await rotated.decode([sealed]))[0].data == json.dumps(PHONE).encode()
    [fresh] = await rotated.encode([payload("x")])
    assert fresh.metadata["encryption-key-id"] == b"k2"
    plain = payload("written by anyone who reaches Temporal")
    assert await rotated.decode([plain]) == [REFUSED_PLAINTEXT]
    reader = EncryptionCodec(parse_keys(f"k1:{OLD}"), "k1", refuse_plaintext=False)
    assert await reader.decode([plain]) == [plain]


async def test_tampering_and_unknown_keys_are_refused():
    codec = EncryptionCodec(parse_keys(f"k1:{OLD}"), "k1")
    [sealed] = await codec.encode([payload(PHONE)])
    tampered = Payload(metadata=sealed.metadata, data=sealed.data[:-1] + b"\x00")
    with pytest.raises(EncryptionKeyError, match="tampered"):
        await codec.decode([tampered])
    stranger = EncryptionCodec(parse_keys(f"k9:{NEW}"), "k9")
    with pytest.raises(EncryptionKeyError, match="no encryption key 'k1'"):
        await stranger.decode([sealed])


@pytest.mark.parametrize(
    "spec", ["k1", "k1:not-base64!", "k1:" + base64.b64encode(b"short").decode()]
)
def test_bad_keys_are_refused(spec):
    with pytest.raises(EncryptionKeyError):
        parse_keys(spec)


async def test_history_holds_ciphertext_and_the_codec_server_decodes(
    temporal_env, harness_settings, store
):
    settings = harness_settings.model_copy(update={"encryption_keys": f"k1:{OLD}"})
    codec = codec_from(settings.encryption_keys, None)
    assert codec is not None
    encrypted = Client(
        temporal_env.client.service_client,
        namespace="default",
        data_converter=data_converter(codec),
    )
    cert = certificate("enc-1", purchased_at=datetime.now(UTC) - timedelta(days=1))
    store.seed([cert])
    enrol(store.engine, {Role.CUSTOMER: ["user-1"]})
    request = signed_request(
        "refund-enc-1",
        RefundRequest(
            certificate_id="enc-1",
            requester="user-1",
            reason="install_failed",
            support_contact=PHONE,
            feedback=FEEDBACK_SECRET,
        ),
    )
    async with build_worker(encrypted, settings=settings, task_queue="encrypted"):
        handle = await encrypted.start_workflow(
            RefundWorkflow.run, request, id="refund-enc-1", task_queue="encrypted"
        )
        status = await handle.result()
    assert status.state is RefundState.REFUNDED
    assert status.feedback == FEEDBACK_SECRET

    raw = await temporal_env.client.get_workflow_handle("refund-enc-1").fetch_history()
    stored = raw.to_json()
    assert PHONE not in stored and "zhang_wei" not in stored and "199.00" not in stored
    started = raw.events[0].workflow_execution_started_event_attributes.input
    assert started.payloads[0].metadata["encoding"] == ENCODING

    app = codec_app(codec, [UI], auth_token="s3cret")
    async with TestClient(TestServer(app)) as http:
        body = json_format.MessageToDict(Payloads(payloads=started.payloads))
        refused = await http.post("/decode", json=body)
        assert refused.status == 401
        answer = await http.post(
            "/decode", json=body, headers={"Authorization": "Bearer s3cret", "Origin": UI}
        )
        assert answer.status == 200
        assert answer.headers["Access-Control-Allow-Origin"] == UI
        decoded = json_format.ParseDict(await answer.json(), Payloads())
        text = decoded.payloads[0].data.decode()
        assert PHONE in text and FEEDBACK_SECRET in text
        preflight = await http.options("/decode", headers={"Origin": UI})
        assert preflight.status == 200
        assert "X-Namespace" in preflight.headers["Access-Control-Allow-Headers"]
        stranger = await http.options("/decode", headers={"Origin": "https://evil.example"})
        assert stranger.status == 403
        assert "Access-Control-Allow-Origin" not in stranger.headers
