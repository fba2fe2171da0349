"""The ``refunds`` commands for a refund that needs attention: ``retry`` and ``resolve``."""

from __future__ import annotations

from typing import Annotated

import typer

from starter.cli_common import (
    JsonFlag,
    OperatorOption,
)
from starter.cli_review import act
from workflows.contract import (
    OperatorInput,
)


def retry(
    refund_id: Annotated[str, typer.Argument(help="A refund that needs attention.")],
    operator: OperatorOption,
    note: Annotated[str | None, typer.Option("--note", help="What was fixed.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Retry the payment returns of a refund in needs_attention."""
    action = OperatorInput(operator=operator, note=note)
    act(
        refund_id,
        lambda refunds: refunds.retry(refund_id, action),
        json_output,
        actor=(operator, "operator"),
    )


def resolve(
    refund_id: Annotated[str, typer.Argument(help="A refund that needs attention.")],
    operator: OperatorOption,
    note: Annotated[str, typer.Option("--note", help="What you did, e.g. how the money went.")],
    json_output: JsonFlag = False,
) -> None:
    """Record that an operator returned the failed legs by hand; the refund then completes."""
    action = OperatorInput(operator=operator, note=note)
    act(
        refund_id,
        lambda refunds: refunds.resolve(refund_id, action),
        json_output,
        actor=(operator, "operator"),
    )
