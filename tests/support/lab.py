"""A JupyterLab server and a headless Debian Chromium for driving the panel in a browser.

Shared by ``tests/browser/`` and ``docs/make_screenshot.py`` (see
``/work/shared/recipes/browser-test.md``). Everything listens on 127.0.0.1; the server gets
its own config, runtime and data directories and a kernelspec that runs *this* interpreter,
so nothing of the machine's Jupyter set-up leaks in. Every process started here is stopped
by :meth:`JupyterLab.stop` (the server with SIGTERM, then whatever it left behind, by pid).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from support import kernelspec

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
HOST = "127.0.0.1"
KERNEL_NAME = "python3"

#: The status bar item once a kernel is attached and idle (not "No Kernel | Idle").
KERNEL_IDLE = re.compile(r"^(?!No Kernel).+ \| Idle$")

# Panel DOM (drawn by mission_widgets/widgets/panel.js).
PANEL = ".mw-panel"
ROW = ".mw-row"
BAR = ".mw-bar[role=progressbar]"
PINNED = ".mw-pinned"
SNAPSHOT = ".mission-widgets-static"


def chromium_missing_reason() -> str | None:
    if not os.path.exists(CHROMIUM):
        return f"{CHROMIUM} is missing (apt-get install -y chromium; .ci/run installs it)"
    return None


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def write_kernelspec(data_dir: Path, ipython_dir: Path) -> None:
    """A ``python3`` kernelspec under ``data_dir/kernels`` that runs this interpreter."""
    kernelspec.write_kernelspec(
        data_dir,
        KERNEL_NAME,
        env={"IPYTHONDIR": str(ipython_dir), "PYTHONUNBUFFERED": "1"},
    )


def write_lab_settings(config_dir: Path) -> None:
    """User settings that keep the page quiet and offline (no news, no update checks)."""
    settings = config_dir / "lab" / "user-settings" / "@jupyterlab"
    quiet = {
        "apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false",
            "checkForUpdates": False,
        },
        "docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    }
    for name, value in quiet.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))


def notebook_json(cells: list[str]) -> dict[str, Any]:
    """A minimal nbformat 4 notebook of code cells, bound to the ``python3`` kernel."""
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {
            "kernelspec": {"name": KERNEL_NAME, "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
        },
        "cells": [
            {
                "cell_type": "code",
                "id": f"cell-{i}",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": source,
            }
            for i, source in enumerate(cells)
        ],
    }


class JupyterLab:
    """``python -m jupyter lab`` on 127.0.0.1 with a random token and its own directories.

    ``base`` holds everything: ``root`` (the server root, where notebooks go), ``config``,
    ``runtime``, ``data`` (the kernelspec) and ``lab.log``.
    """

    def __init__(self, base: Path) -> None:
        self.base = Path(base)
        self.root = self.base / "root"
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.process: subprocess.Popen | None = None
        self.log_path = self.base / "lab.log"
        self._descendants: dict[int, psutil.Process] = {}

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def notebook_url(self, name: str, ui: str = "lab") -> str:
        """The notebook's page in JupyterLab (``ui="lab"``) or in Notebook 7 (``"notebook"``).

        Each JupyterLab page opens in a workspace of its own, reset on load: Lab otherwise
        restores the tabs an earlier page left open, and a locator then matches a cell in
        two notebooks."""
        if ui == "lab":
            workspace = f"test-{secrets.token_hex(6)}"
            return f"{self.url}/lab/workspaces/{workspace}/tree/{name}?reset&token={self.token}"
        if ui != "notebook":
            raise ValueError(f"ui must be 'lab' or 'notebook', got {ui!r}")
        return f"{self.url}/notebooks/{name}?token={self.token}"

    def environment(self) -> dict[str, str]:
        dirs = {name: self.base / name for name in ("config", "runtime", "data", "path", "ipython")}
        for path in dirs.values():
            path.mkdir(parents=True, exist_ok=True)
        write_lab_settings(dirs["config"])
        write_kernelspec(dirs["path"], dirs["ipython"])
        env = dict(os.environ)
        env.update(
            {
                "JUPYTER_CONFIG_DIR": str(dirs["config"]),
                "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
                "JUPYTER_DATA_DIR": str(dirs["data"]),
                "JUPYTER_PATH": str(dirs["path"]),  # searched first: our python3 kernel wins
                "JUPYTER_PLATFORM_DIRS": "1",
                "IPYTHONDIR": str(dirs["ipython"]),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def start(self, timeout: float = 60) -> JupyterLab:
        self.root.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--allow-root",
            f"--ServerApp.ip={HOST}",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(
            f"{self.url}/api/status", headers={"Authorization": f"token {self.token}"}
        )
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"JupyterLab not ready after {timeout} s:\n{self.log_tail()}")
            time.sleep(0.1)  # readiness poll interval, not a wait for the page

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def remember_children(self) -> None:
        """Note the server's descendants (kernels) so stop() can reap what it leaves."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self._descendants[child.pid] = child
        except psutil.NoSuchProcess:
            pass

    def kernel_commands(self) -> list[list[str]]:
        """Command lines of the kernels this server runs now."""
        self.remember_children()
        commands = []
        for proc in self._descendants.values():
            try:
                cmdline = proc.cmdline()
            except psutil.Error:
                continue
            if "ipykernel_launcher" in cmdline:
                commands.append(cmdline)
        return commands

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM the server (it shuts its kernels down), SIGKILL after ``timeout``; then
        kill any kernel it started that is still alive (by pid and start time)."""
        if self.process is None:
            return
        self.remember_children()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        leftovers = [p for p in self._descendants.values() if p.is_running()]
        for proc in leftovers:
            try:
                proc.terminate()
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(leftovers, timeout=5)
        for proc in alive:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        self.process = None

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        path = self.root / name
        path.write_text(json.dumps(notebook_json(cells), indent=1))
        return path


def open_notebook(
    page: Page, lab: JupyterLab, name: str, timeout: float = 45_000, ui: str = "lab"
) -> None:
    """Open ``name`` (in JupyterLab or Notebook 7) and wait until its kernel is really
    attached and idle."""
    from playwright.sync_api import expect

    page.goto(lab.notebook_url(name, ui))
    if ui == "lab":
        status = page.locator(".jp-StatusBar-TextItem").filter(has_text=KERNEL_IDLE)
        expect(status).to_have_count(1, timeout=timeout)
    else:  # Notebook 7 has no status bar: the toolbar names the kernel once attached
        kernel = page.locator(".jp-Toolbar-kernelName")
        expect(kernel).to_have_text(re.compile(r"^(?!No Kernel)\S"), timeout=timeout)
    idle = page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
    expect(idle.first).to_be_attached(timeout=timeout)
    lab.remember_children()


def run_all_cells(page: Page) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
