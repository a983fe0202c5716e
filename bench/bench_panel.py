"""Panel benchmark (issue 16.7, 15.5): the cost of a redraw with N missions, as ratios.

Run from the repository root:

    .venv/bin/python bench/bench_panel.py              # 1,000 and 10,000 missions
    .venv/bin/python bench/bench_panel.py --sizes 1000 # one size

For each size, missions are queued on a thread-backend orchestrator (a temporary store), and
the panel is measured against a baseline from the same run: building one page of rows
(``page_size`` MissionRow widgets bound to their views) once, which is the least a first
draw must do. Subject and baseline repetitions are interleaved and medians reported:

* first draw    ``orch.panel()`` (build + first redraw) / baseline
* full redraw   ``panel.redraw(force=True)`` (every visible row redrawn) / baseline
* idle redraw   ``panel.redraw()`` when nothing changed (what each watcher tick costs) / baseline

Absolute medians are printed too, to compare with issue 15's 0.3 s first draw.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Callable

from mission_widgets.widgets.row import MissionRow

from mission_widgets import Mission, MissionOrchestrator
from mission_widgets.core.progress import mission_view
from mission_widgets.widgets.panel import MissionPanel


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def baseline(panel: MissionPanel) -> float:
    """Build and bind one page of rows, as a first draw minimally must."""
    now = time.time()
    ids = list(panel.orchestrator.missions)[: panel.page_size]
    views = [mission_view(panel.orchestrator.get(i), now) for i in ids]

    def build() -> None:
        rows = [MissionRow(panel) for _ in views]
        for row, view in zip(rows, views):
            row.bind(view, True)
        for row in rows:
            row.close()

    return timed(build)


def measure(size: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as store:
        orch = MissionOrchestrator(backend="thread", model="demo:fast", store=store)
        try:
            for i in range(size):
                orch.submit(Mission(f"benchmark goal {i}"))
            first, full, idle, base = [], [], [], []
            for _ in range(repeats):
                start = time.perf_counter()
                panel = MissionPanel(orch, auto_refresh=False)
                first.append(time.perf_counter() - start)
                base.append(baseline(panel))
                full.append(timed(functools.partial(panel.redraw, force=True)))
                idle.append(timed(panel.redraw))
                panel.close()
        finally:
            orch.close()
    b = statistics.median(base)
    return {
        "baseline_s": b,
        "first_draw_s": statistics.median(first),
        "first_draw_x": statistics.median(first) / b,
        "full_redraw_x": statistics.median(full) / b,
        "idle_redraw_x": statistics.median(idle) / b,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| missions | baseline (s) | first draw (s) | first draw x | full redraw x | idle x |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        r = measure(size, args.repeats)
        print(
            f"| {size:,} | {r['baseline_s']:.4f} | {r['first_draw_s']:.4f} "
            f"| {r['first_draw_x']:.2f} | {r['full_redraw_x']:.2f} | {r['idle_redraw_x']:.2f} |"
        )


if __name__ == "__main__":
    main()
