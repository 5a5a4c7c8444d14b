"""Expected failures of the commands: one root that carries the exit status a command ends with.

A command raises one of these (or a subclass) with a message that is one line for the user;
`events_schema.cli_errors.run_command` is the one place that prints it and turns it into the exit
status. Anything else that escapes a command is a bug, and keeps its traceback.

Exit statuses (docs/operations.md):
    0  done, and everything is right
    1  done, and something is not right (rows refused, a check failing, drift found), or the
       command could not do its work (a server down, a migration refused, a batch failed)
    2  usage: a bad argument, option combination or setting; nothing was done
  130  interrupted (Ctrl-C), except where a command documents Ctrl-C as its normal end
"""

from __future__ import annotations

OK = 0
NOT_RIGHT = 1
USAGE = 2
INTERRUPTED = 130


class CommandError(Exception):
    """An expected failure: the message is one line for the user, `status` the exit status."""

    status: int = NOT_RIGHT

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class UsageError(CommandError):
    """The command cannot do what was asked as asked (an argument, option or setting): exit 2."""

    status = USAGE


class Unreachable(CommandError):
    """A server the command needs did not answer: the reason may be servers scripts/run stopped."""
