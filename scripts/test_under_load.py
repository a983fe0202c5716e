"""Run the README's test command while the machine is busy, to prove the suite holds under load.

Starts ``--burners`` (default 4) busy loops (``python -c "while True: pass"``, each in its own
process group), runs ``bash scripts/test.sh`` ``--runs`` times (default 2) one after the
other, stops the loops whatever happens, and prints one line per run: wall time, the pytest
summary and the load average. Exits non-zero if any run failed. Extra arguments after ``--``
go to pytest, e.g. ``python scripts/test_under_load.py -- -m "not browser"``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def start_burners(count: int) -> list[subprocess.Popen]:
    return [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]


def stop_burners(burners: list[subprocess.Popen]) -> None:
    for proc in burners:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    for proc in burners:
        proc.wait(timeout=30)


def summary_line(output: str) -> str:
    """pytest's last line (``=== 1079 passed, 2 skipped in 600.1s ===``), or what is there."""
    for line in reversed(output.splitlines()):
        if re.search(r"\b(passed|failed|error)\b", line):
            return line.strip("= ").strip()
    return "(no pytest summary)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burners", type=int, default=4, help="busy loops beside the suite")
    parser.add_argument("--runs", type=int, default=2, help="suite runs, one after the other")
    parser.add_argument("--log-dir", type=Path, default=REPO / "artifacts" / "load")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args(argv)
    if args.burners < 0 or args.runs < 1:
        parser.error("--burners must be >= 0 and --runs >= 1")
    args.log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, MW_PYTHON=os.environ.get("MW_PYTHON", sys.executable))
    burners = start_burners(args.burners)
    failed = 0
    try:
        for run in range(1, args.runs + 1):
            log = args.log_dir / f"run-{run}.log"
            started = time.monotonic()
            with open(log, "w") as out:
                code = subprocess.call(
                    ["bash", str(REPO / "scripts" / "test.sh"), *args.pytest_args],
                    cwd=REPO,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            wall = time.monotonic() - started
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            verdict = "ok" if code == 0 else f"FAILED (exit {code})"
            print(
                f"run {run}: {verdict} in {wall / 60:.1f} min with {args.burners} busy loops "
                f"(load {load}): {summary_line(log.read_text())}; log {log}",
                flush=True,
            )
            failed += code != 0
    finally:
        stop_burners(burners)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
