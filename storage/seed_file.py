"""Reading a seed file: a JSON list of certificates in the SPEC's shape, all valid or none."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from workflows.models import Certificate


class SeedFileError(ValueError):
    """The file cannot be loaded; the message is one line fit for a user."""


def describe_validation_error(err: ValidationError) -> str:
    """The first problem of a pydantic error, as ``field.path: message``."""
    first = err.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def read_seed_file(path: Path) -> list[Certificate]:
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
    if not isinstance(data, list):
        raise SeedFileError(f"{path}: expected a JSON list of certificates")
    records: list[Certificate] = []
    seen_certificates: set[str] = set()
    seen_orders: set[str] = set()
    for position, item in enumerate(data, start=1):
        label = item.get("certificate_id") if isinstance(item, dict) else None
        where = f"record {position}" + (f" ({label})" if isinstance(label, str) else "")
        try:
            record = Certificate.model_validate(item)
        except ValidationError as err:
            raise SeedFileError(f"{path}: {where}: {describe_validation_error(err)}") from None
        if record.certificate_id in seen_certificates:
            raise SeedFileError(f"{path}: {where}: certificate id appears twice")
        if record.order.order_id in seen_orders:
            raise SeedFileError(f"{path}: {where}: order id appears twice")
        seen_certificates.add(record.certificate_id)
        seen_orders.add(record.order.order_id)
        records.append(record)
    return records
