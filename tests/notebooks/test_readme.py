"""The README's examples run as written.

Every ```python block of README.md runs, in order, in one fresh Python process (one namespace,
as the cells of one notebook would), against a temporary store, with no OpenAI settings and the
offline demo model; the run must end without an error, and every mission it started is
cancelled and every orchestrator closed at the end. The Quickstart cell must end with the
panel, and the install lines must give the checkout's form beside the PyPI one.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.notebooks import ROOT, SCRUBBED_ENV, kill_workers, leftover_workers

README = ROOT / "README.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)

#: Runs the blocks given as JSON in one namespace, then cancels and closes what they opened.
RUNNER = r"""
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
try:
    for block in blocks:
        print(f"--- README block at line {block['line']}", flush=True)
        exec(compile(block["code"], f"README.md:{block['line']}", "exec"), namespace)
finally:
    from mission_widgets import MissionOrchestrator
    for value in list(namespace.values()):
        if isinstance(value, MissionOrchestrator):
            value.cancel_all()
            value.close()
    for name in ("client", "cluster"):
        closer = getattr(namespace.get(name), "close", None)
        if closer is not None:
            closer()
print("README: all blocks ran", flush=True)
"""


def readme_blocks(language: str) -> list[dict]:
    text = README.read_text(encoding="utf-8")
    return [
        {"line": text.count("\n", 0, match.start()) + 2, "code": match.group(2)}
        for match in BLOCK.finditer(text)
        if match.group(1) == language
    ]


def section(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_quickstart_cell_ends_with_the_panel():
    block = BLOCK.search(section("Quickstart"))
    assert block and block.group(1) == "python"
    last = ast.parse(block.group(2)).body[-1]
    assert isinstance(last, ast.Expr), "the Quickstart cell must end with an expression"
    call = last.value
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
    assert call.func.attr == "panel", ast.unparse(last)


def test_examples_have_no_placeholders():
    for block in readme_blocks("python"):
        tree = ast.parse(block["code"])  # every block is valid Python
        dots = [n for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value is Ellipsis]
        assert not dots, f"README block at line {block['line']} has a `...` placeholder"


def test_install_gives_the_checkout_form_beside_pypi():
    text = README.read_text(encoding="utf-8")
    assert 'pip install "mission-widgets[openai]"' in text
    assert 'pip install -e ".[openai]"' in text


def test_fresh_machine_commands_stay_true():
    first, second = (b["code"].strip() for b in readme_blocks("bash")[:2])
    assert first == (
        "python3 -m venv .venv && .venv/bin/pip install -q -e . && .venv/bin/mission-widgets demo"
    )
    assert second == "bash scripts/test.sh"
    assert (ROOT / "scripts" / "test.sh").is_file()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'mission-widgets = "mission_widgets.cli:main"' in pyproject


def test_readme_names_every_command_the_cli_has():
    from mission_widgets.cli import COMMANDS

    text = section("The command line")
    for command in COMMANDS:
        assert f"mission-widgets {command}" in text, command


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_readme_python_examples_run_as_written(tmp_path):
    blocks = readme_blocks("python")
    assert len(blocks) >= 5
    (tmp_path / "blocks.json").write_text(json.dumps(blocks))
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(
        MISSION_WIDGETS_STORE=str(store),
        XDG_STATE_HOME=str(tmp_path / "state"),
        TMPDIR=str(tmp_path),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),  # this checkout, also in worker processes
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", RUNNER, str(tmp_path / "blocks.json")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=360,
            stdin=subprocess.DEVNULL,
        )
    finally:
        leftovers = leftover_workers(store)
        kill_workers(leftovers)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    assert "README: all blocks ran" in done.stdout
    assert not leftovers, f"the README examples left workers running: {leftovers}"
    assert Path(store, "store.sqlite").is_file()  # they used the temporary store
