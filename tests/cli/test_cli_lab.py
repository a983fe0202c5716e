"""``mission-widgets lab``: Jupyter's own arguments pass through; as root it adds
``--allow-root`` (JupyterLab refuses root otherwise) unless the user said either way."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from support.cli import cli_env, wait_for

from mission_widgets.cli import build_parser, parse_args
from mission_widgets.cli.commands import lab_command, quickstart_notebook

NOTEBOOK = Path("/repo/notebooks/01-quickstart.ipynb")


def test_lab_passes_unknown_arguments_to_jupyter_in_order():
    args = parse_args(
        build_parser(),
        ["lab", "--no-browser", "--ServerApp.token", "t", "--store", "s", "--port", "9000"],
    )
    assert args.store == "s" and args.port == 9000
    assert args.jupyter_args == ["--no-browser", "--ServerApp.token", "t"]
    command, cwd = lab_command(args.jupyter_args, notebook=NOTEBOOK, port=9000, is_root=False)
    assert command == [
        sys.executable, "-m", "jupyter", "lab", "01-quickstart.ipynb",
        "--port=9000", "--no-browser", "--ServerApp.token", "t",
    ]  # fmt: skip
    assert cwd == NOTEBOOK.parent


def test_other_commands_still_refuse_unknown_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(build_parser(), ["status", "--no-browser"])
    assert exc.value.code == 2
    assert "unrecognized arguments: --no-browser" in capsys.readouterr().err


def test_lab_adds_allow_root_as_root_only():
    as_root, _ = lab_command([], notebook=NOTEBOOK, port=None, is_root=True)
    assert as_root[-1] == "--allow-root"
    as_user, _ = lab_command([], notebook=NOTEBOOK, port=None, is_root=False)
    assert "--allow-root" not in as_user
    for given in (["--allow-root"], ["--no-allow-root"], ["--ServerApp.allow_root=False"]):
        command, _ = lab_command(given, notebook=NOTEBOOK, port=None, is_root=True)
        assert command.count("--allow-root") == given.count("--allow-root"), command


def test_lab_opens_what_the_user_names_instead_of_the_quickstart(tmp_path):
    command, cwd = lab_command(["mine.ipynb"], notebook=NOTEBOOK, port=None, is_root=False)
    assert command[-1] == "mine.ipynb" and "01-quickstart.ipynb" not in command
    assert cwd is None
    assert quickstart_notebook().is_file()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None, reason="needs JupyterLab")
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")
def test_lab_starts_a_real_jupyterlab_with_the_given_arguments(tmp_path):
    """As root (the CI container) this only works because --allow-root is added."""
    port, token = _free_port(), "mw-test-token"
    env = cli_env(
        tmp_path,
        JUPYTER_CONFIG_DIR=str(tmp_path / "jconfig"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "jruntime"),
        JUPYTER_DATA_DIR=str(tmp_path / "jdata"),
        IPYTHONDIR=str(tmp_path / "ipython"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mission_widgets", "lab", "--port", str(port), "--no-browser"]
        + ["--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={token}"]
        + ["--store", str(tmp_path / "lab-store")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # so the whole group (the CLI and Jupyter) can be stopped
    )
    url = f"http://127.0.0.1:{port}/api/status?token={token}"

    def answers():
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return None

    try:
        status = wait_for(answers, 90, "JupyterLab to answer on its port")
        assert "started" in status
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/contents/01-quickstart.ipynb?token={token}&content=0",
            timeout=5,
        ) as response:
            assert json.loads(response.read())["name"] == "01-quickstart.ipynb"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
    if os.geteuid() == 0:
        assert "--allow-root" in out.splitlines()[0]  # the "Starting: ..." line
