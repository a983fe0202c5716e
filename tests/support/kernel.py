"""A real ipykernel driven by nbclient, isolated from the machine's Jupyter set-up.

The kernel runs *this* interpreter (``sys.executable -m ipykernel_launcher``) through a
kernelspec written into a temporary directory; the kernel manager only looks there, so a
global ``python3`` kernel of the machine can never be picked up. Shared by the kernel tests
and ``bench/bench_kernel.py``.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

from support import kernelspec

KERNEL_NAME = "python3"


def write_kernelspec(root: Path) -> Path:
    """Write a ``python3`` kernelspec for this interpreter under ``root/kernels``.

    Returns the data directory (what ``JUPYTER_PATH`` would point at). The kernel gets its
    own IPython directory and the platformdirs layout (which silences jupyter_core's
    migration DeprecationWarning), so nothing of the user's profile leaks in.
    """
    data_dir = root / "jupyter_data"
    kernelspec.write_kernelspec(
        data_dir,
        KERNEL_NAME,
        display_name="Python 3 (mission_widgets venv)",
        env={
            "IPYTHONDIR": str(root / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONUNBUFFERED": "1",
        },
    )
    return data_dir


def cell_source(cell: Any) -> str:
    return cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])


class KernelSession:
    """One kernel for one notebook; ``run(index)`` executes a cell and times it."""

    def __init__(self, nb: nbformat.NotebookNode, root: Path, timeout: float = 60) -> None:
        self.nb = nb
        self.root = root
        data_dir = write_kernelspec(root)
        spec_manager = KernelSpecManager(kernel_dirs=[str(data_dir / "kernels")])
        spec_manager.ensure_native_kernel = False  # only the spec written above
        self.km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=spec_manager)
        assert self.km.kernel_spec.argv[0] == sys.executable
        self.client = NotebookClient(
            nb,
            km=self.km,
            timeout=timeout,
            kernel_name=KERNEL_NAME,
            resources={"metadata": {"path": str(root)}},
        )

    @contextlib.contextmanager
    def started(self) -> Iterator[KernelSession]:
        with self.client.setup_kernel(cleanup_kc=True, cwd=str(self.root)):
            try:
                yield self
            finally:
                self.client.set_widgets_metadata()
        if self.km.has_kernel:  # setup_kernel's clean-up asks politely; make sure
            self.km.shutdown_kernel(now=True)

    def run(self, index: int) -> float:
        """Execute cell ``index``; return its round-trip time in seconds."""
        cell = self.nb.cells[index]
        start = time.perf_counter()
        self.client.execute_cell(cell, index)
        return time.perf_counter() - start

    def run_source(self, source: str) -> tuple[nbformat.NotebookNode, float]:
        """Append a code cell with ``source``, execute it, return (cell, seconds)."""
        self.nb.cells.append(nbformat.v4.new_code_cell(source))
        index = len(self.nb.cells) - 1
        return self.nb.cells[index], self.run(index)


def text_output(cell: Any) -> str:
    """The text/plain of a cell's execute_result (or stream text), for assertions."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "execute_result":
            parts.append(output["data"].get("text/plain", ""))
        elif output.get("output_type") == "stream":
            parts.append(output.get("text", ""))
        elif output.get("output_type") == "error":
            raise AssertionError(
                f"cell raised {output['ename']}: {output['evalue']}\n" + cell_source(cell)
            )
    return "".join(parts)
