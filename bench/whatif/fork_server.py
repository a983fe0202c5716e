"""What-if: workers forked from a pre-imported process instead of spawned interpreters.

    .venv/bin/python bench/whatif/fork_server.py [N]

This process imports the worker module once, then runs N prepared no-op missions one after
the other, each in a child made with ``os.fork()`` + ``os.setsid()`` that calls
``run_worker`` (a fresh SQLite connection in the child) -- what a fork server started in its
own session would do. Compared with spawning ``python -c "import cloudpickle"`` N times.
A sketch for the numbers only: a real fork server must be single-threaded when it forks.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import bench_runtime as br

from mission_widgets.runtime.worker import run_worker


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    br.configure_bytecode(False)
    br.warm_up()
    store = br.MissionStore(br.tmp_store("fork"))
    ids = [br.prepared_worker_cmd(store)[1] for _ in range(n)]
    forked, c0 = [], children_cpu()
    for mission_id in ids:
        t = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os.setsid()
            store._local = threading.local()  # never reuse the parent's SQLite connection
            os._exit(run_worker(str(store.root), mission_id, 2.0))
        os.waitpid(pid, 0)
        forked.append(time.perf_counter() - t)
    fork_cpu = (children_cpu() - c0) / n
    assert all(store.row(m)["status"] == "succeeded" for m in ids)
    spawned, c0 = [], children_cpu()
    for _ in range(n):
        spawned.append(br.spawn_and_wait(br.CLOUDPICKLE_CMD))
    spawn_cpu = (children_cpu() - c0) / n
    print(
        f"fork from a warmed process:           wall {statistics.median(forked) * 1000:5.1f} ms, "
        f"CPU {fork_cpu * 1000:5.1f} ms per mission"
    )
    print(
        f"spawn python -c 'import cloudpickle': wall {statistics.median(spawned) * 1000:5.1f} ms, "
        f"CPU {spawn_cpu * 1000:5.1f} ms"
    )

    shutil.rmtree(store.root, ignore_errors=True)


if __name__ == "__main__":
    main()
