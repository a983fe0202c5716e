"""Runs the fault-injection suite (tests/faults) and writes its table to bench/RESULTS-faults.md.

Run from the repository root:

    .venv/bin/python bench/faults_report.py

Each scenario appends, through ``$MISSION_WIDGETS_FAULTS_LOG``, the missions it submitted and
how many were lost (submitted, never ended nor queued), run twice (more than one
``mission_start``) and ended twice (more than one ``mission_done``); the tests themselves
assert that all three are 0. The table shows each scenario's counts and its pytest outcome.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS-faults.md"


def run_suite(log: str, report: str) -> int:
    env = {**os.environ, "MISSION_WIDGETS_FAULTS_LOG": log}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults"]
    command += ["-rA", f"--junitxml={report}"]
    return subprocess.run(command, cwd=ROOT, env=env).returncode


def outcomes(report: str) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    result = {}
    for case in ET.parse(report).iter("testcase"):
        kinds = [child.tag for child in case]
        if "failure" in kinds or "error" in kinds:
            outcome = "FAILED"
        elif "skipped" in kinds:
            outcome = "skipped/xfail"
        else:
            outcome = "passed"
        result[case.get("name", "?")] = outcome
    return result


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        log, report = os.path.join(scratch, "faults.jsonl"), os.path.join(scratch, "junit.xml")
        Path(log).touch()
        started = time.time()
        code = run_suite(log, report)
        lines = [json.loads(line) for line in Path(log).read_text().splitlines() if line]
        tests = outcomes(report) if os.path.exists(report) else {}
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started))
    table = [
        "# Fault injection: missions lost / run twice (issue 12)",
        "",
        f"Run {stamp} with `bench/faults_report.py` (pytest tests/faults; exit {code}).",
        "Lost = submitted but never ended nor queued; run twice = more than one `mission_start`;",
        "ended twice = more than one `mission_done`. Every scenario asserts all three are 0.",
        "",
        "| fault | missions | lost | run twice | ended twice |",
        "|---|---:|---:|---:|---:|",
    ]
    for line in lines:
        table.append(
            f"| {line['fault']} | {line['missions']} | {line['lost']} | {line['run_twice']} "
            f"| {line['ended_twice']} |"
        )
    table += ["", "| test | outcome |", "|---|---|"]
    table += [f"| {name} | {outcome} |" for name, outcome in tests.items()]
    RESULTS.write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
