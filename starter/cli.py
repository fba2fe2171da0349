"""The ``refunds`` command line. A user mistake ends in one line on stderr and a non-zero exit.

Commands live by group: ``cli_review`` (submit, act, follow), ``cli_records`` (seed, check),
``cli_attention`` (retry, resolve), ``cli_books`` (ledger, certificate, repair, schedule) and
``cli_system`` (up, worker, codec-server, demo); ``cli_people`` (people add, remove, list);
``cli_calendar`` (calendar show, apply).
"""

from __future__ import annotations

import os
import sys

import typer

from starter import (
    cli_attention,
    cli_balance,
    cli_books,
    cli_calendar,
    cli_console,
    cli_people,
    cli_records,
    cli_review,
    cli_system,
)
from starter.errors import UserError
from storage.private_files import PrivateFileError

app = typer.Typer(
    name="refunds",
    help="Refunds for SSL certificates on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for command in (
    cli_system.up,
    cli_records.seed,
    cli_records.check,
    cli_review.submit,
    cli_review.approve,
    cli_review.reject,
    cli_review.cancel,
    cli_review.status,
    cli_review.pending,
    cli_attention.retry,
    cli_attention.resolve,
    cli_books.ledger,
    cli_books.certificate,
    cli_balance.balance,
    cli_system.demo,
):
    app.command()(command)
app.command("repair")(cli_books.repair_command)
app.command("schedule-reconciliation")(cli_books.schedule_reconciliation)
app.command("codec-server")(cli_system.codec_server)
app.command("worker")(cli_system.worker_command)
app.command("simulators")(cli_system.simulators_command)
app.command("webhooks")(cli_system.webhooks_command)
app.command("console")(cli_console.console_command)
app.add_typer(cli_people.people_app)
app.add_typer(cli_calendar.calendar_app)


def one_line(text: str) -> str:
    """``text`` with line breaks and other invisible characters shown as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text.strip())


def run(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code, turning every user mistake into one line."""
    try:
        result = app(args=argv, prog_name="refunds", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except UserError as err:
        print(f"refunds: error: {one_line(str(err))}", file=sys.stderr)
        return err.exit_code
    except PrivateFileError as err:
        print(f"refunds: error: {one_line(str(err))}", file=sys.stderr)
        return 1
    except typer.TyperException as err:
        if type(err).__name__ == "NoArgsIsHelpError":
            print(err.format_message())
            return 0
        message = " ".join(err.format_message().split())
        print(f"refunds: error: {one_line(message)}", file=sys.stderr)
        return err.exit_code or 2
    except typer.Exit as err:
        return err.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("refunds: interrupted", file=sys.stderr)
        return 130


def main() -> None:
    code = run()
    sys.stdout.flush()
    sys.stderr.flush()
    # Ending the process here skips interpreter finalization, where Temporal's client threads
    # can abort with "PyGILState_Release" (sdk-python#300) after the command already succeeded.
    os._exit(code)
