"""The ``pynenc-wf`` command: export and replay histories, and fleet simulation (VOPR style).

    pynenc-wf export  --app myshop.tasks:app --workflow-id ID [--sqlite PATH] [-o FILE]
    pynenc-wf replay  FILE [FILE ...]
    pynenc-wf simulate myshop.tasks:fulfill_order_workflow --args '["o-1"]' --runs 100
    pynenc-wf report  (--sqlite PATH | --redis URL | --history FILE | --app PKG.MOD:APP)
                      [--app-id ID] [--workflow-id ID] [--text] [-o FILE]

Exit status, the same in every command: 0 success; 1 the command ran and found a failure (a
violation, a run that raised, a replay that diverged, a module that raised on import); 2 a
usage error (argparse's convention): the command line is malformed or names something that
cannot be used as given (a missing module, task or app, a file or store that is missing or
not what the option needs, an unknown workflow id, an -o path that cannot be written).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from . import _cmd_export, _cmd_replay, _cmd_report, _cmd_simulate
from ._command import CommandError as CommandError
from ._command import CommandParser

__all__ = ["main"]


def _parser() -> CommandParser:
    parser = CommandParser(prog="pynenc-wf", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    # The order of the sub-commands in --help.
    for command in (_cmd_export, _cmd_replay, _cmd_simulate, _cmd_report):
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    prog = "pynenc-wf"
    try:
        args = parser.parse_args(argv)
        prog = f"pynenc-wf {args.command}"
        code: int = args.func(args)
        return code
    except CommandError as error:
        message = str(error)
        if not message.startswith("pynenc-wf"):
            message = f"{prog}: error: {message}"
        print(message, file=sys.stderr)
        return error.code
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else 0
    except BrokenPipeError:  # e.g. piped into `head`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so that the exit-time flush cannot fail again
        return 1
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug of ours or of the code under test: still one line
        if os.environ.get("PYNENC_WF_TRACEBACK"):
            raise
        print(
            f"{prog}: error: unexpected {type(error).__name__}: {error} "
            "(set PYNENC_WF_TRACEBACK=1 to see the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
