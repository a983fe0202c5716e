"""Execute lesson notebooks in real Jupyter kernels, hermetically.

Shared by ``test_notebooks.py`` (the dev venv) and ``test_binder_env.py`` (a venv built from
``binder/``). Nothing here reads the machine's global Jupyter set-up: the kernelspec lives in a
temporary ``JUPYTER_PATH`` and runs a given interpreter; each run gets its own
``MISSION_WIDGETS_STORE`` so the user's default store is never touched.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

from support import kernelspec

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = ROOT / "notebooks"
KERNEL_NAME = "mission-widgets-lesson"
CELL_TIMEOUT = 120
#: Tags that split a notebook into kernels run one after the other (lesson 07).
KERNEL_TAGS = ("kernel-1", "kernel-2")
#: Environment variables that would point a notebook at a real model or a user's set-up.
SCRUBBED_ENV = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "PYTHONPATH")


def notebook_paths() -> list[Path]:
    """Every lesson notebook, in order (new ones such as 06 are picked up automatically)."""
    return sorted(NOTEBOOKS_DIR.glob("*.ipynb"))


def write_kernelspec(jupyter_path: Path, python: str | os.PathLike) -> str:
    """A kernelspec under ``jupyter_path/kernels`` that runs ``python -m ipykernel_launcher``."""
    kernelspec.write_kernelspec(
        jupyter_path,
        KERNEL_NAME,
        python=python,
        python_args=["-Xfrozen_modules=off"],
        display_name=f"mission_widgets lessons ({python})",
        env={"PYDEVD_DISABLE_FILE_VALIDATION": "1"},
        metadata={"debugger": False},
    )
    return KERNEL_NAME


@contextmanager
def hermetic_env(base: Path, store: Path) -> Iterator[dict[str, str]]:
    """Point Jupyter, IPython and mission_widgets at directories under ``base``.

    Kernels inherit this process's environment, so setting it here is what isolates them.
    """
    updates = {
        "JUPYTER_PATH": str(base / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(base / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(base / "ipython"),
        "XDG_STATE_HOME": str(base / "state"),
        "MISSION_WIDGETS_STORE": str(store),
    }
    saved = {name: os.environ.get(name) for name in (*updates, *SCRUBBED_ENV)}
    try:
        for name in SCRUBBED_ENV:
            os.environ.pop(name, None)
        os.environ.update(updates)
        yield updates
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class Run:
    """What one kernel executed: the notebook with outputs, and how long it took."""

    notebook: nbformat.NotebookNode
    seconds: float
    label: str = ""
    problems: list[str] = field(default_factory=list)

    def texts(self) -> list[str]:
        """The text of every output of every code cell (streams, results, displays)."""
        return [
            text
            for cell in self.notebook.cells
            if cell.cell_type == "code"
            for text in output_texts(cell)
        ]


def output_texts(cell: nbformat.NotebookNode) -> Iterator[str]:
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            yield output.text
        elif output.output_type in ("execute_result", "display_data"):
            yield output.get("data", {}).get("text/plain", "")
        elif output.output_type == "error":
            yield "\n".join(output.traceback)


def cell_tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_split(nb: nbformat.NotebookNode) -> bool:
    """Whether the notebook runs as several kernels in sequence (cells tagged kernel-N)."""
    return any(tag in KERNEL_TAGS for cell in nb.cells for tag in cell_tags(cell))


def select_cells(nb: nbformat.NotebookNode, tag: str) -> nbformat.NotebookNode:
    """A copy of ``nb`` keeping only the code cells tagged ``tag`` (and all markdown)."""
    part = nbformat.from_dict(json.loads(json.dumps(nb)))
    part.cells = [c for c in part.cells if c.cell_type != "code" or tag in cell_tags(c)]
    return part


#: Appended to every run: threads that would keep the kernel process from exiting.
THREAD_PROBE = (
    "import threading as _t\n"
    "print('non-daemon threads:', sorted(x.name for x in _t.enumerate()"
    " if not x.daemon and x is not _t.main_thread()))"
)


def execute(nb: nbformat.NotebookNode, kernel_name: str, label: str = "") -> Run:
    """Run every code cell of ``nb`` in a fresh kernel (cwd: notebooks/), then shut it down.

    A cell that raises fails the run at once (nbclient's CellExecutionError names the cell).
    A last, hidden cell checks that nothing (such as the panel's refresh loop) left a
    non-daemon thread behind, which would keep the kernel from exiting on shutdown.
    """
    nb.cells.append(nbformat.v4.new_code_cell(THREAD_PROBE))
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(NOTEBOOKS_DIR)}},
        shutdown_kernel="graceful",
    )
    started = time.monotonic()
    try:
        client.execute()
    finally:
        probe = nb.cells.pop()
    run = Run(nb, time.monotonic() - started, label)
    run.problems = list(find_problems(nb))
    threads = "".join(output_texts(probe)).strip()
    if threads != "non-daemon threads: []":
        run.problems.append(f"threads left that keep the kernel alive: {threads}")
    return run


def find_problems(nb: nbformat.NotebookNode) -> Iterable[str]:
    """Error outputs, and warnings or tracebacks printed to stderr (a lesson must not show
    its reader a warning)."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                yield f"cell {index} raised {output.ename}: {output.evalue}"
            elif output.output_type == "stream" and output.name == "stderr":
                text = output.text
                if "Warning" in text or "Traceback" in text or "Error" in text:
                    yield f"cell {index} printed to stderr: {text.strip()[:500]}"


def leftover_workers(store: Path) -> list[psutil.Process]:
    """Live worker processes of missions in ``store`` (their command line names the store)."""
    marker = str(store)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if "mission_widgets.worker" in cmdline and any(marker in a for a in cmdline):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def kill_workers(procs: list[psutil.Process]) -> None:
    """Stop worker processes a notebook left behind (only these, by pid)."""
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def unfinished_missions(store: Path) -> list[dict]:
    """Missions of ``store`` without an end (a lesson must leave nothing running)."""
    from mission_widgets.runtime.store import DB_NAME, MissionStore

    if not (store / DB_NAME).exists():
        return []
    mission_store = MissionStore(store, create=False)
    try:
        return mission_store.rows(("id", "goal", "status"), "WHERE finished_at IS NULL")
    finally:
        mission_store.close()


def python_of_this_venv() -> str:
    return sys.executable
