"""``mission-widgets lab``: it opens the quickstart lesson after any install (``./notebooks``
of a checkout first, else the user's own copy of the lessons shipped in the wheel), Jupyter's
own arguments pass through, as root it adds ``--allow-root`` (JupyterLab refuses root
otherwise) unless the user said either way, and SIGTERM stops JupyterLab and its kernels."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from support.lab_cli import lab_env, opens_the_quickstart, start_lab, stops_on

from mission_widgets.cli import build_parser, lab, parse_args
from mission_widgets.cli.lab import QUICKSTART, copy_lessons, find_lessons, lab_command

NOTEBOOK = Path("/repo/notebooks/01-quickstart.ipynb")
ROOT = Path(__file__).resolve().parents[2]


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


def fake_lessons(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True)
    for name in names:
        (folder / name).write_text(f'{{"lesson": "{name}"}}')
    return folder


def test_lab_prefers_the_notebooks_of_the_checkout_it_runs_in(tmp_path):
    fake_lessons(tmp_path / "notebooks", QUICKSTART)
    lessons, where = find_lessons(tmp_path)
    assert lessons == tmp_path / "notebooks" and "this checkout" in where


def test_lab_copies_the_shipped_lessons_into_the_users_own_folder(tmp_path, monkeypatch):
    shipped = fake_lessons(tmp_path / "site" / "lessons", QUICKSTART, "02-missions.ipynb")
    monkeypatch.setattr(lab, "packaged_lessons", lambda: shipped)
    monkeypatch.setattr(lab, "checkout_lessons", lambda: tmp_path / "no-checkout")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    lessons, where = find_lessons(tmp_path / "elsewhere")
    mine = tmp_path / "data" / "mission_widgets" / "lessons"
    assert lessons == mine and "2 copied now" in where
    assert sorted(p.name for p in mine.iterdir()) == ["01-quickstart.ipynb", "02-missions.ipynb"]
    assert (mine.stat().st_mode & 0o077) == 0  # the student's own
    (mine / QUICKSTART).write_text("my edits")
    assert copy_lessons(shipped, mine) == []  # a lesson already there is never overwritten
    assert (mine / QUICKSTART).read_text() == "my edits"
    assert "copied" not in find_lessons(tmp_path / "elsewhere")[1]


def test_lab_says_when_it_finds_no_lessons(tmp_path, monkeypatch):
    monkeypatch.setattr(lab, "packaged_lessons", lambda: tmp_path / "none")
    monkeypatch.setattr(lab, "checkout_lessons", lambda: tmp_path / "none")
    assert find_lessons(tmp_path) == (
        None,
        "no lessons found (neither ./notebooks nor the package has them)",
    )


def needs_lab(test):
    """Marks of a test that runs a real JupyterLab."""
    for mark in (
        pytest.mark.slow,
        pytest.mark.timeout(300),
        pytest.mark.skipif(
            importlib.util.find_spec("jupyterlab") is None, reason="needs JupyterLab"
        ),
        pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    ):
        test = mark(test)
    return test


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@needs_lab
def test_lab_from_a_checkout_opens_its_quickstart_and_a_signal_stops_everything(tmp_path, signum):
    """Run from the repository root (``./notebooks``); as root (the CI container) this only
    works because --allow-root is added."""
    run = start_lab([sys.executable, "-m", "mission_widgets"], tmp_path, cwd=ROOT)
    try:
        opens_the_quickstart(run)
        out = stops_on(run, signum)
    finally:
        run.kill_everything()
    assert f"Lessons: the lessons of this checkout: {ROOT / 'notebooks'}" in out, out
    assert "Stopping JupyterLab and its kernels" in out, out
    assert run.proc.returncode == 130, out
    if os.geteuid() == 0:
        starting = next(line for line in out.splitlines() if line.startswith("Starting:"))
        assert "--allow-root" in starting


def build_wheel(tmp_path: Path) -> Path:
    """This checkout as a wheel, the way pip builds one for a non-editable install."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "dist", ROOT],
        check=True,
        capture_output=True,
        timeout=240,
    )
    (wheel,) = (tmp_path / "dist").glob("mission_widgets-*.whl")
    return wheel


def fresh_venv_with(wheel: Path, venv: Path) -> Path:
    """A new venv with the wheel installed (not editable). Its dependencies come from this
    venv through a ``.pth`` line (nothing downloaded); the wheel's own files win."""
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel],
        check=True,
        capture_output=True,
        timeout=240,
    )
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    (Path(site) / "zz_dependencies.pth").write_text("\n".join(ours) + "\n")
    return python


@needs_lab
def test_lab_after_a_wheel_install_opens_the_users_copy_of_the_quickstart(tmp_path):
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        shipped = {n for n in archive.namelist() if n.startswith("mission_widgets/lessons/")}
    assert "mission_widgets/lessons/01-quickstart.ipynb" in shipped, shipped
    python = fresh_venv_with(wheel, tmp_path / "venv")
    where = subprocess.run(
        [python, "-c", "import mission_widgets; print(mission_widgets.__file__)"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert where.startswith(str(tmp_path / "venv")), where  # the wheel, not this checkout
    elsewhere = tmp_path / "somewhere"  # not a checkout: no ./notebooks here
    elsewhere.mkdir()
    # Jupyter's own files (JupyterLab's assets, server extensions) of this venv.
    prefix = Path(sys.prefix)
    env = lab_env(
        tmp_path,
        JUPYTERLAB_DIR=str(prefix / "share" / "jupyter" / "lab"),
        JUPYTER_PATH=str(prefix / "share" / "jupyter"),
        JUPYTER_CONFIG_PATH=str(prefix / "etc" / "jupyter"),
    )
    env["PATH"] = f"{python.parent}{os.pathsep}{prefix / 'bin'}{os.pathsep}{env['PATH']}"
    run = start_lab([python, "-m", "mission_widgets"], tmp_path, cwd=elsewhere, env=env)
    try:
        opens_the_quickstart(run)
        out = stops_on(run, signal.SIGTERM)
    finally:
        run.kill_everything()
    mine = tmp_path / "data" / "mission_widgets" / "lessons"
    assert f"your own copy of the lessons, {len(shipped)} copied now: {mine}" in out, out
    assert (mine / "01-quickstart.ipynb").is_file()
