"""The data converter: pydantic JSON with one type-adapter cache for the whole process.

The SDK makes a fresh payload converter for every workflow run, and the stock pydantic converter
keeps its type adapters per instance, so each run rebuilt an adapter for every type it decoded
(six per auto refund, a tenth of a millisecond each and more). Here decoding shares one cache.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

MAX_TYPE_ADAPTERS = 1024


@functools.lru_cache(maxsize=MAX_TYPE_ADAPTERS)
def _type_adapter(type_hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(type_hint)


class SharedCachePydanticJSONConverter(PydanticJSONPlainPayloadConverter):
    """``json/plain`` through pydantic, decoding with the process-wide adapter cache."""

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        hint = Any if type_hint is None else type_hint
        try:
            hash(hint)
        except TypeError:  # an unhashable hint cannot be a cache key
            return TypeAdapter(hint).validate_json(payload.data)
        return _type_adapter(hint).validate_json(payload.data)


class PayloadConverter(CompositePayloadConverter):
    """The SDK's default encodings, with JSON handled by pydantic (nullary, as the SDK needs)."""

    def __init__(self) -> None:
        json_converter = SharedCachePydanticJSONConverter()
        super().__init__(
            *(
                json_converter if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


DATA_CONVERTER = DataConverter(payload_converter_class=PayloadConverter)
"""Clients, workers, replayers and the benchmark all use this (with a codec when encrypting)."""
