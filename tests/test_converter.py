"""The data converter: pydantic JSON round trips, with type adapters built once per process."""

from __future__ import annotations

from datetime import UTC, datetime

from converter import PayloadConverter, _type_adapter
from domain.certificates import Certificate
from tests.factories import certificate
from workflows.contract import RefundState


def test_new_converters_reuse_the_type_adapters_of_earlier_ones():
    """The SDK makes a payload converter per workflow run; decoding must not rebuild adapters."""
    cert = certificate("conv-1", purchased_at=datetime(2026, 11, 20, tzinfo=UTC))
    payload = PayloadConverter().to_payloads([cert])[0]
    PayloadConverter().from_payloads([payload], [Certificate])
    before = _type_adapter.cache_info()
    for _ in range(3):
        assert PayloadConverter().from_payloads([payload], [Certificate]) == [cert]
    after = _type_adapter.cache_info()
    assert after.misses == before.misses
    assert after.hits == before.hits + 3


def test_plain_values_and_untyped_payloads_still_convert():
    converter = PayloadConverter()
    payloads = converter.to_payloads([RefundState.REFUNDED, {"a": [1, 2]}, None, b"raw"])
    assert converter.from_payloads(
        payloads, [RefundState, dict[str, list[int]], type(None), bytes]
    ) == [
        RefundState.REFUNDED,
        {"a": [1, 2]},
        None,
        b"raw",
    ]
    assert converter.from_payloads(payloads[1:2]) == [{"a": [1, 2]}]
