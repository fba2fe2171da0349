"""The one exception a command raises for a user's mistake: printed as one line, exit non-zero."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; ``str(err)`` is the whole message."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
