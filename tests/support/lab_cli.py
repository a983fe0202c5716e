"""``mission-widgets lab`` run as a user runs it, and asked through Jupyter's REST API.

:func:`start_lab` starts the command (with a given interpreter: this venv's, a fresh venv's
wheel install, the Binder venv's) on a free 127.0.0.1 port with a token, in Jupyter
directories of its own under ``tmp_path``; :class:`LabRun` asks the server (``/api/...``)
and finds every process of that run (the server and its kernels, by the runtime directory
in their environment), so a test can prove that SIGTERM left none behind.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from support.waiting import wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def lab_env(tmp_path: Path, base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """An environment whose Jupyter and mission_widgets folders are all under ``tmp_path``."""
    env = dict(base if base is not None else os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(tmp_path / "jconfig"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jruntime"),
        JUPYTER_DATA_DIR=str(tmp_path / "jdata"),
        IPYTHONDIR=str(tmp_path / "ipython"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        MISSION_WIDGETS_STORE=str(tmp_path / "lab-store"),
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
    )
    env.pop("PYTHONPATH", None)
    env.update(extra)
    return env


class LabRun:
    """One ``mission-widgets lab`` process and the JupyterLab it started."""

    def __init__(self, proc: subprocess.Popen, port: int, token: str, runtime_dir: str):
        self.proc, self.port, self.token, self.runtime_dir = proc, port, token, runtime_dir

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def wait_until_serving(self, timeout: float = 120) -> dict:
        def answers():
            try:
                return self.api("status")
            except OSError:
                assert self.proc.poll() is None, f"lab exited:\n{self.output()}"
                return None

        return wait_for(answers, timeout, "JupyterLab to answer on its port")

    def processes(self) -> list[psutil.Process]:
        """The server and kernels of this run (their environment names its runtime dir)."""
        found = []
        for proc in psutil.process_iter(["pid", "status"]):
            try:
                if proc.pid == self.proc.pid or proc.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                if proc.environ().get("JUPYTER_RUNTIME_DIR") == self.runtime_dir:
                    cmdline = " ".join(proc.cmdline())
                    if "mission_widgets.worker" not in cmdline:
                        found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def output(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        return self.proc.stdout.read() if self.proc.stdout else ""

    def kill_everything(self) -> None:
        """Last resort at the end of a test: nothing of this run may outlive it."""
        leftovers = self.processes()
        if self.proc.poll() is None:
            leftovers.append(psutil.Process(self.proc.pid))
        for proc in leftovers:
            try:
                proc.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(leftovers, timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()


def start_lab(
    command: list[str], tmp_path: Path, *, cwd: Path, env: dict[str, str] | None = None
) -> LabRun:
    """``command lab --no-browser`` (``command`` runs the CLI, e.g. ``[python, "-m",
    "mission_widgets"]``) on a free port with a token, from ``cwd``."""
    port, token = free_port(), secrets.token_hex(8)
    env = env if env is not None else lab_env(tmp_path)
    proc = subprocess.Popen(
        [*command, "lab", "--port", str(port), "--no-browser", "--ServerApp.ip=127.0.0.1"]
        + [f"--IdentityProvider.token={token}"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    return LabRun(proc, port, token, env["JUPYTER_RUNTIME_DIR"])


def opens_the_quickstart(run: LabRun) -> str:
    """Check through the REST API that the server serves the quickstart at its root and can
    run it (a session with a live kernel); return the root's listing of lessons."""
    run.wait_until_serving()
    listing = run.api("contents/")
    names = sorted(item["name"] for item in listing["content"])
    assert "01-quickstart.ipynb" in names, names
    notebook = run.api("contents/01-quickstart.ipynb")
    assert notebook["type"] == "notebook" and notebook["content"]["cells"], notebook["name"]
    session = run.api(
        "sessions",
        "POST",
        {"path": "01-quickstart.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    assert session["path"] == "01-quickstart.ipynb", session
    kernels = run.api("kernels")
    assert [k["id"] for k in kernels] == [session["kernel"]["id"]], kernels
    return ", ".join(names)


def stops_on(run: LabRun, signum: int) -> str:
    """Send ``signum`` to the ``lab`` command alone and check that it stops JupyterLab and
    its kernels, leaving no Jupyter process behind; return the command's output."""
    assert run.processes(), "JupyterLab and a kernel should run before the signal"
    run.proc.send_signal(signum)
    out, _ = run.proc.communicate(timeout=90)
    wait_for(lambda: not run.processes(), 30, "no Jupyter process of this run to be left")
    return out
