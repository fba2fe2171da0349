"""Reading a seed file: a JSON list of certificates in the SPEC's shape, all valid or none."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from domain.certificates import Certificate, CertificateStatus
from domain.values import describe_validation_error

CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a purchase or issue time may lie (clocks disagree a little)."""
KEPT_BY_THE_SYSTEM = ("held_by", "released_by")


class SeedFileError(ValueError):
    """The file cannot be loaded; the message is one line fit for a user."""


def read_seed_file(path: Path, now: datetime | None = None) -> list[Certificate]:
    """The file's certificates, checked; ``now`` (default: the clock) bounds their times."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeedFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SeedFileError(f"{path}: cannot be read ({err})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SeedFileError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    except RecursionError:
        raise SeedFileError(f"{path}: nested too deeply to be a list of certificates") from None
    if not isinstance(data, list):
        raise SeedFileError(f"{path}: expected a JSON list of certificates")
    records: list[Certificate] = []
    seen_certificates: set[str] = set()
    seen_orders: set[str] = set()
    for position, item in enumerate(data, start=1):
        label = item.get("certificate_id") if isinstance(item, dict) else None
        where = f"record {position}" + (f" ({label})" if isinstance(label, str) else "")
        problem = _system_field(item)
        if problem is not None:
            raise SeedFileError(f"{path}: {where}: {problem}")
        try:
            record = Certificate.model_validate(item)
        except ValidationError as err:
            raise SeedFileError(f"{path}: {where}: {describe_validation_error(err)}") from None
        except RecursionError:
            raise SeedFileError(f"{path}: {where}: nested too deeply") from None
        problem = _future_problem(record, now or datetime.now(UTC))
        if problem is not None:
            raise SeedFileError(f"{path}: {where}: {problem}")
        if record.certificate_id in seen_certificates:
            raise SeedFileError(f"{path}: {where}: certificate id appears twice")
        if record.order.order_id in seen_orders:
            raise SeedFileError(f"{path}: {where}: order id appears twice")
        seen_certificates.add(record.certificate_id)
        seen_orders.add(record.order.order_id)
        records.append(record)
    return records


def _system_field(item: object) -> str | None:
    if not isinstance(item, dict):
        return None
    for key in KEPT_BY_THE_SYSTEM:
        if item.get(key) is not None:
            return f"{key} is kept by the system of record, not loaded from a file"
    if item.get("status") == CertificateStatus.REFUND_PENDING:
        return "status refund_pending is set only by a running refund"
    return None


def _future_problem(record: Certificate, now: datetime) -> str | None:
    """Purchases and issues cannot lie in the future: the rules would have no answer for them."""
    for name in ("purchased_at", "issued_at"):
        value = getattr(record, name)
        if value is not None and value > now + CLOCK_SKEW:
            return f"{name} {value.isoformat()} lies in the future; check the source's clock"
    return None
