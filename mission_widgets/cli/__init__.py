"""The ``mission-widgets`` command: ``demo``, ``status``, ``cancel``, ``prune``, ``store``, ...

This module parses the command line and runs one command; the commands live beside it
(:mod:`.demo`, :mod:`.commands`, :mod:`.history`), terminal output in :mod:`.terminal`
(which escapes everything a mission wrote before it reaches the terminal).

Exit codes: 0 success; 1 the command ran but could not do what was asked (unknown or
finished mission, unexpected demo outcome); 2 usage errors and a missing, unreadable or
damaged store (one line, no traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..core.status import MISSION_STATUSES
from ..runtime.store import StoreError
from .commands import (
    CANCEL_WAIT_SECS,
    DEFAULT_STATUS_ROWS,
    cmd_cancel,
    cmd_decide,
    cmd_explain,
    cmd_status,
)
from .common import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_USAGE, PROG, CommandError
from .demo import add_demo_parser, cmd_demo
from .history import add_history_parsers, cmd_prune, cmd_store
from .lab import cmd_lab
from .terminal import Console, escape_control

__all__ = ["PROG", "CommandError", "build_parser", "main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _port(text: str) -> int:
    value = _positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {value}")
    return value


#: The answers ``decide`` takes (the same as ``orch.decide``).
DECISION_CHOICES = ("retry", "skip", "abort")

STORE_HELP = (
    "mission store: a directory, or a bare name for a named store in the state directory "
    "(default: $MISSION_WIDGETS_STORE, else ~/.local/state/mission_widgets/default)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Run goal-driven, multi-step missions outside your notebook and watch them. "
            f"New here? Try `{PROG} demo`."
        ),
        epilog="Exit codes: 0 ok, 1 could not do it (see message), 2 usage error or a "
        "missing, unreadable or damaged store, 130 interrupted.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_demo_parser(sub, _positive_int, _positive_float)

    status = sub.add_parser(
        "status",
        help="print the status table of a store",
        description="Print a count by status and one line per recent mission of a store "
        "(running or finished). Reads the store without changing it; works while missions "
        "run and after a kernel restart.",
    )
    status.add_argument("--store", metavar="DIR", help=STORE_HELP)
    shown = status.add_mutually_exclusive_group()
    shown.add_argument(
        "-n",
        "--limit",
        type=_positive_int,
        default=DEFAULT_STATUS_ROWS,
        metavar="N",
        help=f"show the N most recent missions (default: {DEFAULT_STATUS_ROWS})",
    )
    shown.add_argument("--all", action="store_true", help="show every mission of the store")
    status.add_argument(
        "--status",
        dest="statuses",
        action="append",
        choices=MISSION_STATUSES,
        metavar="STATUS",
        help="only missions in this status (repeatable), e.g. --status waiting for those "
        f"a person must decide; one of {', '.join(MISSION_STATUSES)}",
    )

    cancel = sub.add_parser(
        "cancel",
        help="cancel a running or queued mission",
        description="Cancel a mission of a store from any process: a running one is stopped "
        "(its worker gets SIGTERM, then SIGKILL); a queued one is cancelled by the process "
        "that queued it, or at once if that process is gone. ID is the full mission id or "
        "the short id shown by `status`.",
    )
    cancel.add_argument("id", metavar="ID", help="mission id (full, or the short id)")
    cancel.add_argument("--store", metavar="DIR", help=STORE_HELP)
    cancel.add_argument(
        "--wait",
        type=_positive_float,
        default=CANCEL_WAIT_SECS,
        metavar="S",
        help="when another process must do it (a queued mission, or one on a thread of "
        f"another kernel): seconds to wait for it (default: {CANCEL_WAIT_SECS:g})",
    )

    decide = sub.add_parser(
        "decide",
        help="answer a mission that waits for a person (retry, skip or abort)",
        description="Answer a mission whose step used its retries and that waits for a "
        "person (StallPolicy(on_max_retries='ask')): retry gives the step one more attempt, "
        "skip marks it done with '[SKIPPED: user decision]', abort fails the mission. Works "
        "from any process on the store.",
    )
    decide.add_argument("id", metavar="ID", help="mission id (full, or the short id)")
    decide.add_argument(
        "action", metavar="ACTION", choices=DECISION_CHOICES, help="retry, skip or abort"
    )
    decide.add_argument("--store", metavar="DIR", help=STORE_HELP)

    explain = sub.add_parser(
        "explain",
        help="ask the model of a waiting mission to analyse its failures",
        description="Ask the model of a mission that waits for a person to analyse the "
        "failures of its step (root cause, alternatives, whether to go on); the text is "
        "printed, recorded as an event and given to a following retry as context.",
    )
    explain.add_argument("id", metavar="ID", help="mission id (full, or the short id)")
    explain.add_argument("--store", metavar="DIR", help=STORE_HELP)
    explain.add_argument(
        "--model", metavar="PROVIDER:NAME", help="model to ask (default: the mission's own)"
    )

    lab = sub.add_parser(
        "lab",
        help="open JupyterLab on the quickstart notebook",
        usage=f"{PROG} lab [-h] [--store DIR] [--port P] [JUPYTER ARGS ...]",
        description="Start JupyterLab (python -m jupyter lab) on the quickstart lesson: "
        "./notebooks when run from a checkout, else your own copy of the lessons shipped "
        "with the package ($XDG_DATA_HOME/mission_widgets/lessons). Any other argument is "
        "passed on to Jupyter as given (e.g. --no-browser, --ServerApp.token=..., a notebook "
        "to open instead). As root, --allow-root is added unless you pass "
        "--allow-root/--no-allow-root yourself. SIGTERM or Ctrl-C stops JupyterLab and its "
        "kernels.",
    )
    lab.add_argument(
        "--store", metavar="DIR", help="store for the notebooks (sets $MISSION_WIDGETS_STORE)"
    )
    lab.add_argument("--port", type=_port, metavar="P", help="port for JupyterLab")
    add_history_parsers(sub, STORE_HELP)
    return parser


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "demo": cmd_demo,
    "status": cmd_status,
    "cancel": cmd_cancel,
    "decide": cmd_decide,
    "explain": cmd_explain,
    "lab": cmd_lab,
    "prune": cmd_prune,
    "store": cmd_store,
}


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed; what ``lab`` does not know goes on to Jupyter (``args.jupyter_args``),
    any other command's unknown argument is a usage error."""
    args, extra = parser.parse_known_args(argv)
    if args.command == "lab":
        if extra[:1] == ["--"]:
            extra = extra[1:]
        args.jupyter_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``mission-widgets`` and ``python -m mission_widgets``; returns the exit
    code (argparse's usage errors give 2)."""
    parser = build_parser()
    try:
        args = parse_args(parser, list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    console = Console(sys.stdout, live=not getattr(args, "no_live", False))
    try:
        return COMMANDS[args.command](args, console)
    except CommandError as exc:
        sys.stdout.flush()
        print(escape_control(str(exc)), file=sys.stderr)
        return exc.code
    except StoreError as exc:  # a store damaged, locked or full while the command ran
        sys.stdout.flush()
        print(escape_control(f"{PROG} {args.command}: {exc}"), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stay quiet about it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAIL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
