"""Opening a current store (MissionStore(root), 300 times) with this tree's code against a
baseline commit's, interleaved in fresh processes: the format check of store_format.py
must not make opening slower. Prints each run, then median, p90 and the ratio.

    python bench/bench_store_open.py [BASE_COMMIT] [ROUNDS]
"""

from __future__ import annotations

import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OPEN = """
import sys, time
from mission_widgets.runtime.store import MissionStore
MissionStore(sys.argv[1]).close()
began = time.perf_counter()
for _ in range(300):
    MissionStore(sys.argv[1]).close()
print((time.perf_counter() - began) / 300 * 1e6)
"""


def main(base: str = "3c29a75", rounds: int = 7) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", base, "mission_widgets"],
            check=True,
            capture_output=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(Path(tmp, "base"), filter="tar")
        runs: dict[str, list[float]] = {"base": [], "this": []}
        for n in range(rounds):
            for name, code in (("base", Path(tmp, "base")), ("this", REPO)):
                env = dict(os.environ, PYTHONPATH=str(code))
                out = subprocess.run(
                    [sys.executable, "-c", OPEN, str(Path(tmp, f"{name}-{n}"))],
                    check=True,
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=tmp,
                ).stdout
                runs[name].append(float(out))
                print(name, f"{runs[name][-1]:.0f} us per open")
    for name, values in runs.items():
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        print(f"{name}: median {statistics.median(values):.0f} us, p90 {p90:.0f} us")
    ratio = statistics.median(runs["this"]) / statistics.median(runs["base"])
    print(f"ratio this/base: {ratio:.2f}; load average {os.getloadavg()}")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["3c29a75"]), *[int(a) for a in sys.argv[2:3]])
