"""What every ``pynenc-wf`` sub-command shares: the error it raises, its parser class, an
argument type, one-line messages and writing ``-o FILE``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NoReturn

__all__ = ["CommandError", "CommandParser", "one_line", "positive_int", "write_output"]


class CommandError(Exception):
    """A failure the user can fix: printed as one line, exit status 1 (2 with ``usage``: the
    command line is malformed or names something that cannot be used as given, as
    argparse's own errors are)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.code = 2 if usage else 1


class CommandParser(argparse.ArgumentParser):
    """argparse, with usage errors on one line that says where help is."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{self.prog}: error: {message} (see '{self.prog} --help')", usage=True)


def positive_int(
    name: str, minimum: int = 1, maximum: int | None = None, why: str = ""
) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (and <= ``maximum``, ``why`` saying
    why), named ``name`` in its error."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be an integer >= {minimum}, got {text!r}"
            ) from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{name} must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{name} must be <= {maximum}{why}, got {value}")
        return value

    return parse


def one_line(error: BaseException) -> str:
    """A message on one line: each problem of a replay run is one line of output."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip())


def write_output(path: str, text: str) -> None:
    """Write ``text`` to the ``-o`` file ``path``; a failure is a one-line ``CommandError``."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as error:
        raise CommandError(f"-o {path!r}: cannot write: {error.strerror}.", usage=True) from None
