"""Executors for the runtime benchmarks (bench_runtime.py).

They live in a module of their own so a worker process unpickles them by reference
(``bench_tasks.noop``) instead of by value; bench_runtime.py puts this directory on
``sys.path`` and the subprocess backend hands the kernel's path to its workers.
"""

from __future__ import annotations

import time


def noop(task, session, context):
    """Does nothing: the mission's cost is all runtime overhead."""
    return "ok"


def sleeper(task, session, context):
    """Sleeps the number of seconds that ends the step description ("sleep 0.25")."""
    time.sleep(float(task.split()[-1]))
    return "slept"


def import_numpy(task, session, context):
    """Imports numpy (free when the warm server preloaded it) and uses it once."""
    import numpy

    return float(numpy.arange(3).sum())
