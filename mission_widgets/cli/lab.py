"""``mission-widgets lab``: JupyterLab on the quickstart lesson, after any install.

Where the lessons come from (:func:`find_lessons`), first match wins:

1. ``./notebooks`` when it holds the quickstart (run from a checkout, Binder included);
2. the checkout the package was imported from (an editable install);
3. the lessons shipped in the package (``mission_widgets/lessons``, a wheel install),
   copied into a folder of the user's own (``$XDG_DATA_HOME/mission_widgets/lessons``,
   ``~/.local/share/...``): site-packages may be read-only or shared, and a student's edits
   and outputs belong to the student. Files already there are kept, never overwritten.

JupyterLab runs in a session of its own; SIGTERM, SIGINT or SIGHUP to this command stop it
(SIGTERM, then SIGKILL after a grace period) together with its kernels, so nothing is left
running. Mission workers the lessons started keep running: they outlive kernels by design.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from .common import EXIT_INTERRUPTED, EXIT_USAGE, PROG, CommandError, store_location
from .terminal import Console, escape_control

QUICKSTART = "01-quickstart.ipynb"
#: Seconds JupyterLab gets to shut down its kernels after SIGTERM before SIGKILL.
STOP_GRACE_SECS = 20.0
#: Signals that stop JupyterLab (and this command).
STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")


def packaged_lessons() -> Path:
    """The lessons shipped inside the package (present in a wheel install)."""
    return Path(__file__).resolve().parents[1] / "lessons"


def checkout_lessons() -> Path:
    """``notebooks/`` of the checkout the package was imported from (editable installs)."""
    return Path(__file__).resolve().parents[2] / "notebooks"


def user_lessons_dir() -> Path:
    """The user's own copy of the shipped lessons."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "mission_widgets" / "lessons"


def copy_lessons(source: Path, target: Path) -> list[str]:
    """Copy the lessons of ``source`` missing from ``target`` (kept private to the user);
    return the names copied. A lesson already there is the user's: never overwritten."""
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    copied = []
    for lesson in sorted(source.glob("*.ipynb")):
        destination = target / lesson.name
        if not destination.exists():
            shutil.copyfile(lesson, destination)
            copied.append(lesson.name)
    return copied


def find_lessons(cwd: Path | None = None) -> tuple[Path | None, str]:
    """The folder whose quickstart ``lab`` opens, and a line saying where it is from."""
    here = (cwd or Path.cwd()) / "notebooks"
    if (here / QUICKSTART).is_file():
        return here, f"the lessons of this checkout: {here}"
    checkout = checkout_lessons()
    if (checkout / QUICKSTART).is_file():
        return checkout, f"the lessons of the checkout the package runs from: {checkout}"
    shipped = packaged_lessons()
    if (shipped / QUICKSTART).is_file():
        target = user_lessons_dir()
        try:
            copied = copy_lessons(shipped, target)
        except OSError as exc:
            return shipped, f"the lessons shipped with the package (could not copy: {exc})"
        fresh = f", {len(copied)} copied now" if copied else ""
        return target, f"your own copy of the lessons{fresh}: {target}"
    return None, "no lessons found (neither ./notebooks nor the package has them)"


def _names_a_path(arg: str) -> bool:
    """Whether a Jupyter argument names something to open (not an option or its value)."""
    return not arg.startswith("-") and (arg.endswith(".ipynb") or os.path.exists(arg))


def lab_command(
    jupyter_args: list[str], *, notebook: Path | None, port: int | None, is_root: bool
) -> tuple[list[str], Path | None]:
    """The ``jupyter lab`` command line and its working directory: the quickstart notebook
    (opened from its own folder) unless the user names something to open, the user's
    arguments passed on as given, and ``--allow-root`` when running as root (Jupyter refuses
    root otherwise) unless the user already said either way."""
    command = [sys.executable, "-m", "jupyter", "lab"]
    cwd = None
    if notebook is not None and not any(_names_a_path(a) for a in jupyter_args):
        command.append(notebook.name)
        cwd = notebook.parent
    if port is not None:
        command.append(f"--port={port}")
    command += jupyter_args
    root_flags = ("--allow-root", "--no-allow-root", "--ServerApp.allow_root")
    if is_root and not any(a.split("=")[0] in root_flags for a in jupyter_args):
        command.append("--allow-root")
    return command, cwd


class _Stop(Exception):
    """A stop signal arrived while JupyterLab ran."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def stop_jupyter(proc: subprocess.Popen[Any], grace: float = STOP_GRACE_SECS) -> None:
    """SIGTERM to JupyterLab (it shuts its kernels down), SIGKILL after ``grace``; then
    stop any kernel or Jupyter process of its that is left (by pid)."""
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        family = []
    jupyter = [p for p in family if _is_jupyter(p)]
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for leftover in jupyter:
        try:
            leftover.terminate()
        except psutil.Error:
            continue
    _gone, alive = psutil.wait_procs(jupyter, timeout=5)
    for leftover in alive:
        try:
            leftover.kill()
        except psutil.Error:
            pass


def _is_jupyter(proc: Any) -> bool:
    """A kernel or a Jupyter helper (never a mission worker, which outlives kernels)."""
    try:
        cmdline = " ".join(proc.cmdline())
    except Exception:
        return False
    return "mission_widgets.worker" not in cmdline and (
        "ipykernel" in cmdline or "jupyter" in cmdline
    )


def cmd_lab(args: argparse.Namespace, console: Console) -> int:
    import importlib.util

    if importlib.util.find_spec("jupyterlab") is None:
        raise CommandError(
            f"{PROG} lab: JupyterLab is not installed in {sys.prefix}; install it with "
            f"`{sys.executable} -m pip install jupyterlab` (or `pip install -e '.[dev]'`)"
        )
    env = dict(os.environ)
    if args.store is not None:
        env["MISSION_WIDGETS_STORE"] = str(store_location(args.store, "lab").resolve())
    notebook: Path | None = None
    if not any(_names_a_path(a) for a in args.jupyter_args):
        lessons, where = find_lessons()
        console.print(f"Lessons: {escape_control(where)}")
        if lessons is not None:
            notebook = lessons / QUICKSTART
    is_root = hasattr(os, "geteuid") and os.geteuid() == 0
    command, cwd = lab_command(
        args.jupyter_args, notebook=notebook, port=args.port, is_root=is_root
    )
    console.print("Starting: " + escape_control(" ".join(command)))
    return run_until_stopped(command, cwd, env, console)


def run_until_stopped(
    command: list[str], cwd: Path | None, env: dict[str, str], console: Console
) -> int:
    """Run JupyterLab until it exits, or until a stop signal, which stops it too."""
    previous = {}
    for name in STOP_SIGNALS:
        signum = getattr(signal, name, None)
        if signum is not None:
            try:
                previous[signum] = signal.signal(signum, _raise_stop)
            except ValueError:  # not the main thread: the caller handles signals
                pass
    proc: subprocess.Popen[Any] | None = None
    try:
        # A session of its own: a terminal's Ctrl-C reaches this command, which stops
        # JupyterLab at once instead of Jupyter asking "Shutdown this server (y/[n])?".
        proc = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True)
        return proc.wait()
    except (_Stop, KeyboardInterrupt):
        for signum in previous:  # a second signal must not cut the stopping short
            signal.signal(signum, signal.SIG_IGN)
        if proc is not None:
            console.print("Stopping JupyterLab and its kernels ...")
            stop_jupyter(proc)
        return EXIT_INTERRUPTED
    except OSError as exc:
        raise CommandError(f"{PROG} lab: could not start JupyterLab: {exc}", EXIT_USAGE) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
