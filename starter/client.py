"""Connecting to Temporal with the pydantic data converter, and reading refunds back."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from settings import Settings


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
    )


def refund_id_for(certificate_id: str) -> str:
    """The workflow id of a certificate's refund: one live refund per certificate."""
    return f"refund-{certificate_id}"
