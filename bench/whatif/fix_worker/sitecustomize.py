"""What-if (worker processes only): the two worker fixes suggested by the 2026-11-25 report.

Put this directory on PYTHONPATH to run the benchmarks as if they were applied, without
editing the package:

    PYTHONPATH=bench/whatif/fix_worker .venv/bin/python bench/bench_runtime.py

A. checkpoints encode executors with plain ``pickle`` (by reference) and fall back to
   cloudpickle only when that fails, so the worker never imports cloudpickle;
B. the checkpoint file is written without ``tempfile`` (an import) and without ``fsync``.

It patches module globals of mission_widgets.core.mission, so it stops meaning anything once
the fixes (or a rename) land.
"""

import sys

if "mission_widgets.worker" in getattr(sys, "orig_argv", ()):
    import base64
    import json
    import os
    import pickle

    import mission_widgets.core.mission as _mission

    def _pickle_b64(value):
        try:
            return base64.b64encode(pickle.dumps(value)).decode("ascii")
        except Exception:
            import cloudpickle

            return base64.b64encode(cloudpickle.dumps(value)).decode("ascii")

    def _write_json_atomic(path, data):
        text = json.dumps(data, indent=2, ensure_ascii=False)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
        return path

    _mission.pickle_b64 = _pickle_b64
    if os.environ.get("MW_WHATIF_KEEP_FSYNC") != "1":
        _mission.write_json_atomic = _write_json_atomic
