"""structlog set-up: JSON lines in production, readable colours in a terminal.

The SDK's worker loggers print whole activation payloads (customer contacts, feedback) at DEBUG,
so they are held at INFO whatever level is asked for.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog
from temporalio import activity, workflow

HANDLER_NAME = "refunds"
PAYLOAD_LOGGERS = ("temporalio.worker", "temporalio.bridge", "temporalio.activity")


def configure_logging(fmt: Literal["console", "json"] = "console", level: str = "INFO") -> None:
    """Route structlog and the standard library (Temporal's own loggers) through one renderer."""
    workflow.logger.workflow_info_on_message = False
    activity.logger.activity_info_on_message = False
    shared: list[structlog.types.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.ExtraAdder(),
        _bind_temporal_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if fmt == "json" else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if h.get_name() != HANDLER_NAME]
    root.addHandler(handler)
    root.setLevel(level.upper())
    floor = max(root.level, logging.INFO)
    for name in PAYLOAD_LOGGERS:
        logging.getLogger(name).setLevel(floor)


def _bind_temporal_ids(
    _logger: object, _name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Flatten the SDK's ``temporal_workflow``/``temporal_activity`` extras into the ids we use."""
    for key in ("temporal_workflow", "temporal_activity"):
        details = event.pop(key, None)
        if isinstance(details, dict):
            workflow_id = details.get("workflow_id")
            event.setdefault("refund_id", workflow_id)
            event["workflow_id"] = workflow_id
            event["run_id"] = details.get("run_id") or details.get("workflow_run_id")
            if "activity_type" in details:
                event["activity"] = details["activity_type"]
                event["attempt"] = details.get("attempt")
    return event


def _identity(
    _logger: object, _name: str, event: structlog.types.EventDict
) -> structlog.types.EventDict:
    return event
