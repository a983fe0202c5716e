"""Lessons on a shared classroom server: two students (two Unix users) run the restart lesson
one after the other, each in a real kernel (then a second kernel that reattaches), with no
``MISSION_WIDGETS_STORE`` set, as students would. Neither gets a ``StoreError``: every run
makes a private store of its own (never a fixed path in the shared temporary directory).

The students are made with ``setpriv --reuid/--regid`` (root only); each has a home of its
own (``HOME``, Jupyter and IPython directories), as on a real server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import nbformat
import pytest
from support.notebooks import NOTEBOOKS_DIR, is_split, kill_workers, leftover_workers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.kernel,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux)"),
]

#: Two students: uids (and gids) with no other use on the machine.
STUDENTS = (61001, 61002)
TESTS_DIR = Path(__file__).resolve().parents[1]

#: Run as a student: both parts of the split lesson, each in a kernel of its own; prints
#: what went wrong (errors, warnings) and where the lesson kept its missions.
STUDENT = """
import json, re, sys
import nbformat
from support.notebooks import execute, select_cells, write_kernelspec

path, home = sys.argv[1:3]
kernel = write_kernelspec(f"{home}/jupyter", sys.executable)
nb = nbformat.read(path, as_version=4)
problems, texts = [], []
for part in ("kernel-1", "kernel-2"):
    run = execute(select_cells(nb, part), kernel, part)
    problems += [f"{part}: {p}" for p in run.problems]
    texts += run.texts()
stores = sorted(set(re.findall(r"store: (\\S+)", "".join(texts))))
print(json.dumps({"problems": problems, "stores": stores, "texts": texts}))
"""


def restart_lesson() -> Path:
    """The lesson that runs as two kernels (its cells tagged kernel-1 / kernel-2)."""
    found = [p for p in sorted(NOTEBOOKS_DIR.glob("*.ipynb")) if is_split(nbformat.read(p, 4))]
    assert len(found) == 1, found
    return found[0]


def student_env(home: Path) -> dict[str, str]:
    """A student's own environment: home, Jupyter and IPython folders; no store setting."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MISSION_WIDGETS", "JUPYTER", "IPYTHON", "XDG_", "OPENAI"))
        and k not in ("PYTHONPATH", "TMPDIR")
    }
    env.update(
        HOME=str(home),
        USER=home.name,
        PYTHONPATH=str(TESTS_DIR),
        JUPYTER_PATH=str(home / "jupyter"),
        JUPYTER_CONFIG_DIR=str(home / "jupyter-config"),
        JUPYTER_RUNTIME_DIR=str(home / "jupyter-runtime"),
        JUPYTER_DATA_DIR=str(home / "jupyter-data"),
        JUPYTER_PLATFORM_DIRS="1",
        IPYTHONDIR=str(home / "ipython"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    return env


def as_student(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def runs_for_students(python: str) -> bool:
    """Whether a student can run ``python`` and it can start itself again (kernels and
    workers are started with ``sys.executable``)."""
    check = "import subprocess, sys; subprocess.run([sys.executable, '-c', ''], check=True)"
    done = subprocess.run(
        [*as_student(STUDENTS[0]), python, "-c", check], capture_output=True, timeout=60
    )
    return done.returncode == 0


def students_python(shared: Path) -> str:
    """An interpreter the students can run with this venv's packages: this one, or (when it
    lives where students cannot reach, e.g. under /root) a venv of the system's Python of the
    same version that reads this venv's site-packages."""
    if runs_for_students(sys.executable):
        return sys.executable
    system = shutil.which(f"python{sys.version_info[0]}.{sys.version_info[1]}", path="/usr/bin")
    if system is None:
        pytest.skip("this interpreter is out of the students' reach and no system Python")
    venv = shared / "venv"
    subprocess.run([system, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    purelib = next(Path(venv / "lib").glob("python3*")) / "site-packages"
    ours = [p for p in sys.path if p.endswith("site-packages")]
    lines = [f"import site; site.addsitedir({p!r})" for p in ours]
    (purelib / "zz_lesson_packages.pth").write_text("\n".join(lines) + "\n")
    python = str(venv / "bin" / "python")
    if not runs_for_students(python):
        pytest.skip("no Python interpreter that the students can run")
    return python


def test_two_students_run_the_restart_lesson_without_a_store_error():
    lesson = restart_lesson()
    homes = Path(tempfile.mkdtemp(prefix="mw-classroom-"))  # not tmp_path: root's, 0700
    os.chmod(homes, 0o755)
    python = students_python(homes)
    stores: list[Path] = []
    leftovers: list = []
    try:
        for uid in STUDENTS:
            home = homes / f"student{uid}"
            home.mkdir(mode=0o700)
            os.chown(home, uid, uid)
            done = subprocess.run(
                [*as_student(uid), python, "-c", textwrap.dedent(STUDENT), str(lesson), str(home)],
                capture_output=True,
                text=True,
                timeout=540,
                env=student_env(home),
                cwd=home,
            )
            assert done.returncode == 0, done.stderr[-4000:]
            report = json.loads(done.stdout.strip().splitlines()[-1])
            mine = [Path(s) for s in report["stores"]]
            stores += mine
            assert not report["problems"], f"student {uid}: {report['problems']}"
            assert "StoreError" not in "".join(report["texts"])
            assert len(mine) == 1, report["stores"]  # both kernels on the one store of the run
            store = mine[0]
            assert store.stat().st_uid == uid and (store.stat().st_mode & 0o077) == 0
            assert Path(tempfile.gettempdir()) in store.parents or store.is_relative_to(home)
        assert len(set(stores)) == len(STUDENTS), stores  # a store per student
    finally:
        for store in stores:
            leftovers += leftover_workers(store)
            kill_workers(leftovers)
            shutil.rmtree(store, ignore_errors=True)
        shutil.rmtree(homes, ignore_errors=True)
    assert not leftovers, f"the lesson left worker processes running: {leftovers}"
