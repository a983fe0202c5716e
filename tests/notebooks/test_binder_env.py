"""The Binder environment, rebuilt the way repo2docker builds it, runs the lessons.

repo2docker (what mybinder.org runs) reads only ``binder/`` when that folder exists: it picks
Python from ``binder/runtime.txt``, runs ``pip install -r binder/requirements.txt`` from the
repository root (after copying the repository in, because the file names a local path), then
``./binder/postBuild`` if there is one. This test does the same in a fresh venv (pip may
download from the package index; its cache is reused) and executes lessons 01 and 04 in a
kernel running that venv's interpreter, so a stale Binder configuration fails CI.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from support.lab_cli import lab_env, opens_the_quickstart, start_lab, stops_on
from support.notebooks import (
    NOTEBOOKS_DIR,
    ROOT,
    execute,
    hermetic_env,
    kill_workers,
    leftover_workers,
    unfinished_missions,
    write_kernelspec,
)

#: Building the venv (the first test pays for it) downloads from the package index when
#: pip's cache is cold; minutes on a loaded two-core machine, hence the long timeout.
pytestmark = [pytest.mark.slow, pytest.mark.kernel, pytest.mark.timeout(900)]

BINDER = ROOT / "binder"
LESSONS = ("01-quickstart.ipynb", "04-failures-stalls-cancel.ipynb")
#: The page the Binder link opens (``urlpath=lab/tree/<this>``).
BINDER_START_PAGE = "notebooks/01-quickstart.ipynb"


#: What pip says when it cannot reach the package index at all (no network, no DNS, a proxy
#: that refuses): building the Binder venv is then impossible here, which is a missing
#: environment (skip with the reason), not a broken Binder configuration (fail).
OFFLINE_SIGNS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "ProxyError",
)


def offline_reason(output: str) -> str | None:
    """Why pip's ``output`` shows the package index unreachable, or None when it does not."""
    for line in output.splitlines():
        if any(sign in line for sign in OFFLINE_SIGNS):
            return f"offline: pip cannot reach the package index ({line.strip()[:200]})"
    return None


def _run(
    args: list,
    *,
    cwd: Path,
    env: dict[str, str],
    what: str,
    timeout: float = 840,  # pip on two busy cores; the test itself has 900 s
) -> str:
    started = time.monotonic()
    proc = subprocess.run(
        [os.fspath(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 and (reason := offline_reason(output)):
        pytest.skip(f"{what}: {reason}")
    assert proc.returncode == 0, f"{what} failed (exit {proc.returncode}):\n{output[-4000:]}"
    print(f"{what}: {time.monotonic() - started:.1f} s")
    return output


def _runtime_python() -> str:
    """An interpreter of the version binder/runtime.txt asks for (repo2docker's default else)."""
    runtime = BINDER / "runtime.txt"
    wanted = "3.10"  # repo2docker's default Python 3 when runtime.txt says nothing
    if runtime.exists():
        name, _, version = runtime.read_text().strip().partition("-")
        assert name == "python", f"binder/runtime.txt must name python-X.Y, got {name!r}"
        wanted = ".".join(version.split(".")[:2])
    if "{}.{}".format(*sys.version_info[:2]) == wanted:
        return sys.executable
    found = shutil.which(f"python{wanted}")
    if found is None:
        pytest.skip(f"binder/runtime.txt asks for Python {wanted}, which is not installed here")
    return found


def _build_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def binder_venv(tmp_path_factory) -> Path:
    """A venv built from binder/ alone, as repo2docker would build the image."""
    venv = tmp_path_factory.mktemp("binder") / "venv"
    env = _build_env(venv)
    _run([_runtime_python(), "-m", "venv", venv], cwd=ROOT, env=env, what="python -m venv")
    python = venv / "bin" / "python"
    # repo2docker's environment ships a recent pip; a venv's bundled one may be old.
    _run(
        [python, "-m", "pip", "install", "-q", "--upgrade", "pip"],
        cwd=ROOT,
        env=env,
        what="upgrade pip",
    )
    _run(
        [python, "-m", "pip", "install", "-q", "-r", "binder/requirements.txt"],
        cwd=ROOT,  # where repo2docker runs it: "." in the file is the repository
        env=env,
        what="pip install -r binder/requirements.txt",
    )
    post_build = BINDER / "postBuild"
    if post_build.exists():
        _run(["bash", post_build], cwd=ROOT, env=env, what="binder/postBuild")
    return venv


def test_pip_failing_to_reach_the_index_reads_as_offline_and_nothing_else_does():
    unreachable = (
        "WARNING: Retrying (Retry(total=4, connect=None, read=None, redirect=None, status=None))"
        " after connection broken by 'NewConnectionError(...: Failed to establish a new"
        " connection: [Errno -3] Temporary failure in name resolution')': /simple/jupyterlab/\n"
        "ERROR: No matching distribution found for jupyterlab>=4"
    )
    assert offline_reason(unreachable).startswith("offline: pip cannot reach the package index")
    # A requirement that does not exist is the Binder files' fault: it must fail, not skip.
    assert offline_reason("ERROR: No matching distribution found for jupyterlabb>=4") is None


def test_binder_files_are_what_repo2docker_reads():
    assert (BINDER / "requirements.txt").exists()
    lines = [
        line.split("#", 1)[0].strip()
        for line in (BINDER / "requirements.txt").read_text().splitlines()
    ]
    lines = [line for line in lines if line]
    # "-e ." or "." resolve against the directory pip runs in (the repository root), never
    # against binder/; a path such as "../" would point outside the repository there.
    assert any(line.split("[")[0] in (".", "-e .") for line in lines), lines
    assert not any(line.startswith("..") for line in lines), lines
    assert any(line.startswith("jupyterlab") for line in lines), lines
    assert (ROOT / BINDER_START_PAGE).exists(), f"the Binder link opens {BINDER_START_PAGE}"


def test_binder_venv_has_the_package_and_jupyterlab(binder_venv):
    python = binder_venv / "bin" / "python"
    env = _build_env(binder_venv)
    out = _run(
        [
            python,
            "-c",
            "import mission_widgets, ipywidgets, ipykernel, jupyterlab, jupyterlab_widgets, openai;"
            "print(mission_widgets.__file__)",
        ],
        cwd=NOTEBOOKS_DIR,  # not the repository root: the import must come from the venv
        env=env,
        what="import check",
    )
    assert str(binder_venv) in out, f"mission_widgets was not imported from the venv: {out}"
    extensions = _run(
        [binder_venv / "bin" / "jupyter", "labextension", "list"],
        cwd=ROOT,
        env=env,
        what="jupyter labextension list",
    )
    assert "@jupyter-widgets/jupyterlab-manager" in extensions, extensions


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_runs_in_binder_env(name, binder_venv, tmp_path):
    store = tmp_path / "store"
    with hermetic_env(tmp_path, store):
        kernel = write_kernelspec(tmp_path / "jupyter", binder_venv / "bin" / "python")
        nb = nbformat.read(NOTEBOOKS_DIR / name, as_version=4)
        nb.cells.append(
            nbformat.v4.new_code_cell(
                "import sys, mission_widgets; print(sys.executable, mission_widgets.__file__)"
            )
        )
        try:
            run = execute(nb, kernel, name)
        finally:
            leftovers = leftover_workers(store)
            kill_workers(leftovers)
    print(f"{name} in the Binder env: {run.seconds:.1f} s")
    assert not run.problems, "\n".join(run.problems)
    assert not leftovers, f"{name} left worker processes running: {leftovers}"
    assert not unfinished_missions(store)
    # The probe cell added above: the kernel ran the Binder venv, and imported from it.
    interpreter, package = run.texts()[-1].split()
    assert Path(interpreter).parent == binder_venv / "bin", interpreter
    assert package.startswith(str(binder_venv)), package


def test_lab_in_the_binder_env_opens_lesson_01_and_stops_on_sigterm(binder_venv, tmp_path):
    """The Binder env is a non-editable install: from outside the checkout, ``lab`` opens the
    user's own copy of the shipped lessons at lesson 01; from the checkout, ``./notebooks``."""
    env = lab_env(tmp_path, _build_env(binder_venv))
    cli = [binder_venv / "bin" / "mission-widgets"]
    outside = tmp_path / "home"
    outside.mkdir()
    run = start_lab(cli, tmp_path, cwd=outside, env=env)
    try:
        opens_the_quickstart(run)
        out = stops_on(run, signal.SIGTERM)
    finally:
        run.kill_everything()
    mine = tmp_path / "data" / "mission_widgets" / "lessons"
    assert "your own copy of the lessons, " in out and str(mine) in out, out
    assert (mine / "01-quickstart.ipynb").is_file()
    from_checkout = start_lab(
        cli, tmp_path / "again", cwd=ROOT, env=lab_env(tmp_path / "again", _build_env(binder_venv))
    )
    try:
        opens_the_quickstart(from_checkout)
        out = stops_on(from_checkout, signal.SIGTERM)
    finally:
        from_checkout.kill_everything()
    assert f"the lessons of this checkout: {NOTEBOOKS_DIR}" in out, out
