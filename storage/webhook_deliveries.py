"""Verified webhook deliveries, once each by their delivery id (the provider's event id).

A delivery is ``new`` the first time it is seen, ``pending`` when it was seen but the refund was
not told (our 5xx made the provider retry, so it is processed again), and ``completed`` once the
refund was told: a replay of it changes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError

from storage.schema import webhook_deliveries

DeliveryState = Literal["new", "pending", "completed"]
MAX_DELIVERY_ID = 128
MAX_SOURCE = 16
MAX_KEY = 200


class WebhookDeliveries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def begin(self, delivery_id: str, source: str, idempotency_key: str | None) -> DeliveryState:
        """Record the delivery once; what it was before this call."""
        if not 0 < len(delivery_id) <= MAX_DELIVERY_ID or not 0 < len(source) <= MAX_SOURCE:
            raise ValueError("a delivery needs an id of 1 to 128 and a source of 1 to 16 chars")
        if idempotency_key is not None and len(idempotency_key) > MAX_KEY:
            raise ValueError("a delivery's idempotency key is at most 200 characters")
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    webhook_deliveries.insert().values(
                        delivery_id=delivery_id,
                        source=source,
                        idempotency_key=idempotency_key,
                        received_at=datetime.now(UTC),
                    )
                )
            return "new"
        except IntegrityError:
            pass
        query = select(webhook_deliveries.c.completed_at).where(
            webhook_deliveries.c.delivery_id == delivery_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise RuntimeError(f"delivery {delivery_id} could not be recorded")
        return "pending" if row.completed_at is None else "completed"

    def complete(self, delivery_id: str) -> None:
        """The refund was told: a replay of this delivery changes nothing (the first time
        completed stays)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(webhook_deliveries)
                .where(
                    webhook_deliveries.c.delivery_id == delivery_id,
                    webhook_deliveries.c.completed_at.is_(None),
                )
                .values(completed_at=datetime.now(UTC))
            )

    def state(self, delivery_id: str) -> DeliveryState | None:
        """What the delivery is now (``None``: never seen), for tests and operators."""
        query = select(webhook_deliveries.c.completed_at).where(
            webhook_deliveries.c.delivery_id == delivery_id
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return "pending" if row.completed_at is None else "completed"
