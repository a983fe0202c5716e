"""A Jupyter kernelspec that runs a chosen interpreter, for tests that start real kernels.

Writing the spec into a private data directory (pointed at by ``JUPYTER_PATH`` or a
KernelSpecManager) keeps the machine's own kernels, and the user's profile, out of a test.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def write_kernelspec(
    data_dir: str | os.PathLike,
    name: str = "python3",
    *,
    python: str | os.PathLike | None = None,
    python_args: Sequence[str] = (),
    display_name: str = "Python 3 (mission_widgets)",
    env: Mapping[str, str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``data_dir/kernels/<name>/kernel.json`` running ``python -m ipykernel_launcher``
    (this interpreter by default); returns the spec's directory."""
    spec_dir = Path(data_dir) / "kernels" / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec: dict[str, Any] = {
        "argv": [
            os.fspath(python or sys.executable),
            *python_args,
            "-m",
            "ipykernel_launcher",
            "-f",
            "{connection_file}",
        ],
        "display_name": display_name,
        "language": "python",
        "env": dict(env or {}),
    }
    if metadata:
        spec["metadata"] = dict(metadata)
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return spec_dir
