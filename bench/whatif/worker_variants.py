"""What-if: a no-op mission's worker, as is and with suggested fixes patched in at start-up.

    .venv/bin/python bench/whatif/worker_variants.py [REPS]

Each variant runs ``mission_widgets.runtime.worker.main`` on a prepared no-op mission (as
SubprocessBackend.launch prepares it) under the same tiny driver as P5; wall time, CPU time
(user + sys of the worker) and peak RSS are compared with ``python -c "import cloudpickle"``.
Variants are interleaved. Nothing in the package is edited; the patches name module globals
of mission_widgets.core.mission, so this script is evidence for one report, not a fixture.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_runtime as br

PICKLE_FIRST = """
import base64, pickle, mission_widgets.core.mission as mm
def pb(v):
    try:
        return base64.b64encode(pickle.dumps(v)).decode()
    except Exception:
        import cloudpickle
        return base64.b64encode(cloudpickle.dumps(v)).decode()
mm.pickle_b64 = pb
"""
NO_FSYNC = """
import json, os
def w(path, data):
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=2))
    os.replace(tmp, path)
mm.write_json_atomic = w
"""
NO_CHECKPOINT = """
import mission_widgets.core.mission as mm
mm.Mission._save_checkpoint = lambda self: None
"""
VARIANTS = {
    "as is (-m mission_widgets.worker)": None,
    "as is, via the -c wrapper the variants use": "",
    "A: checkpoint executors with pickle (no cloudpickle import)": PICKLE_FIRST,
    "A + B: checkpoint without tempfile and fsync": PICKLE_FIRST + NO_FSYNC,
    "no checkpoint at all (lower bound)": NO_CHECKPOINT,
}
DRIVER = br.RSS_DRIVER.replace(
    "pid = os.posix_spawn(", "import time\nt0 = time.perf_counter()\npid = os.posix_spawn("
).replace(
    "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,",
    "wall = time.perf_counter() - t0\n"
    "r = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(json.dumps([wall, r.ru_maxrss, r.ru_utime + r.ru_stime,",
)


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    br.configure_bytecode(False)
    br.warm_up()
    store = br.MissionStore(br.tmp_store("whatif"))
    env = br.worker_environment()

    def drive(cmd: list[str]) -> tuple[float, float, int]:
        out = subprocess.run(
            [sys.executable, "-I", "-S", "-c", DRIVER, json.dumps(cmd), json.dumps(env)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        wall, rss, cpu, code = json.loads(out)
        assert code == 0, out
        return wall, cpu, rss

    def variant(pre: str | None):
        def arm():
            cmd, mission_id = br.prepared_worker_cmd(store)
            if pre is not None:
                main_code = pre + "\nfrom mission_widgets.runtime.worker import main\nmain()"
                cmd = [sys.executable, "-c", main_code, *cmd[3:]]
            result = drive(cmd)
            assert store.row(mission_id)["status"] == "succeeded"
            return result

        return arm

    arms = [variant(pre) for pre in VARIANTS.values()] + [lambda: drive(br.CLOUDPICKLE_CMD)]
    names = [*VARIANTS, "baseline: python -c 'import cloudpickle'"]
    results = br.interleaved(arms, reps, warmup=2)
    base = [statistics.median(x[i] for x in results[-1]) for i in range(3)]
    print(f"{'variant':<62} {'wall ms':>8} {'CPU ms':>7} {'RSS MiB':>8}   x baseline")
    for name, rs in zip(names, results):
        wall, cpu, rss = (statistics.median(x[i] for x in rs) for i in range(3))
        print(
            f"{name:<62} {wall * 1000:8.1f} {cpu * 1000:7.1f} {rss / 1024:8.2f}   "
            f"{wall / base[0]:.2f} / {cpu / base[1]:.2f} / {rss / base[2]:.2f}"
        )
    print("(wall: posix_spawn -> waitpid in the driver; CPU: user + sys of the worker)")

    shutil.rmtree(store.root, ignore_errors=True)


if __name__ == "__main__":
    main()
