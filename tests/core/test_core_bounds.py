"""Bounds and persistence in proportion to the work."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest
from support.waiting import wait_for

from mission_widgets import CheckpointError, Mission, MissionStep, MissionValidationError
from mission_widgets.core import checkpoint
from mission_widgets.core.mission import MAX_PARALLEL, MAX_PLAN_STEPS
from mission_widgets.core.values import LARGE_VALUE_BYTES


def open_lines(path):
    with open(path) as handle:
        return len(handle.read().splitlines())


def chain(n, executor=None):
    executor = executor or (lambda t, s, c: t)
    return [
        MissionStep(f"s{i}", f"step {i}", executor=executor, depends_on=[f"s{i - 1}"] if i else [])
        for i in range(n)
    ]


# -- plan and step limits -------------------------------------------------------------------


def test_defaults():
    assert (MAX_PLAN_STEPS, MAX_PARALLEL) == (100, 8)
    mission = Mission("g")
    assert (mission.max_steps, mission.max_parallel) == (100, 8)


def test_a_plan_over_the_limit_fails_at_once_naming_the_limit():
    calls = []

    def model(prompt):
        calls.append(prompt)
        return json.dumps([{"id": f"s{i}", "description": "x"} for i in range(101)])

    mission = Mission("g", model=model, executor=lambda t, s, c: calls.append(t)).run()
    assert mission.status == "failed"
    assert "101 steps" in mission.error and "max_steps=100" in mission.error
    assert len(calls) == 1  # planned once, nothing executed
    done = next(e for e in mission.audit_log if e["event"] == "planner_done")
    assert done["error_type"] == "plan_error"


def test_the_limit_is_configurable():
    plan = json.dumps([{"id": f"s{i}", "description": "x"} for i in range(150)])
    mission = Mission("g", model=lambda p: plan, executor=lambda t, s, c: "ok", max_steps=150).run()
    assert mission.status == "succeeded" and len(mission.steps) == 150
    with pytest.raises(MissionValidationError, match="max_steps=3"):
        Mission("g", steps=chain(4), max_steps=3)
    for bad in (0, -1, 1.5, "8", True):
        with pytest.raises(MissionValidationError, match="max_parallel"):
            Mission("g", max_parallel=bad)


def test_a_huge_plan_is_refused_quickly():
    plan = json.dumps([{"id": f"s{i}", "description": "x"} for i in range(10_000)])
    started = time.monotonic()
    mission = Mission("g", model=lambda p: plan, executor=lambda t, s, c: 1).run()
    assert mission.status == "failed" and "10000 steps" in mission.error
    assert time.monotonic() - started < 10


class Turnstile:
    """Executor of parallel steps that counts how many run at once: a step comes in, then
    waits until the test lets one step out (no step ends by itself, so none ends early)."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.now = self.most = self.passes = self.out = 0
        self.threads: set[int] = set()

    def __call__(self, task, session, context):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.threads.add(threading.get_ident())
            assert self.lock.wait_for(lambda: self.passes > self.out, timeout=60)
            self.out += 1
            self.now -= 1
        return task

    def let_one_out(self) -> None:
        with self.lock:
            self.passes += 1
            self.lock.notify_all()


@pytest.mark.parametrize(("limit", "n"), [(8, 12), (3, 7), (2, 5), (1, 3)])
def test_parallel_steps_never_run_more_than_max_parallel_at_once(limit, n):
    """The pool is filled to ``max_parallel`` and refilled one for one: each time a step is let
    out, exactly ``min(limit, steps left)`` are in, never one more."""
    gate = Turnstile()
    steps = [MissionStep(f"p{i}", f"p{i}", executor=gate, parallel=True) for i in range(n)]
    mission = Mission("g", steps=steps, max_parallel=limit)
    before = threading.active_count()
    runner = threading.Thread(target=mission.run, daemon=True)
    runner.start()
    for released in range(n):
        expected = min(limit, n - released)
        wait_for(lambda e=expected: gate.now >= e, 60, f"{expected} steps in")
        assert gate.now == expected
        gate.let_one_out()
        wait_for(lambda r=released: gate.out == r + 1, 60, "a step out")
    runner.join(60)
    assert mission.status == "succeeded"
    assert gate.most == limit  # reached, never passed
    assert len(gate.threads) <= limit
    assert threading.active_count() <= before + 1


# -- results that cannot be saved; checkpoints that cannot be written ----------------------


def test_an_unpicklable_result_is_kept_as_repr_with_a_warning(tmp_path):
    mission = Mission(
        "g",
        steps=[
            MissionStep("a", "a", executor=lambda t, s, c: threading.Lock()),
            MissionStep("b", "b", executor=lambda t, s, c: "b", depends_on="a"),
        ],
    )
    mission.checkpoint_path = str(tmp_path / "c.json")
    with pytest.warns(RuntimeWarning, match=r"step 'a' returned a value that kept as its repr"):
        mission.run()
    assert mission.status == "succeeded"
    a = mission.steps[0]
    assert a.result.startswith("<unlocked _thread.lock")
    assert "lock cannot be saved" in a.result_note
    done = next(e for e in mission.audit_log if e["event"] == "step_done")
    assert done["result_note"] == a.result_note
    assert Mission.load(tmp_path / "c.json").steps[0].result == a.result


def test_a_checkpoint_that_cannot_be_written_only_warns(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    mission = Mission("g", steps=chain(3))
    mission.checkpoint_path = str(blocker / "c.json")  # a file is in the way
    with pytest.warns(RuntimeWarning, match="could not checkpoint") as record:
        mission.run()
    assert mission.status == "succeeded"
    assert len(record) == 1  # once, not per step
    assert [e["event"] for e in mission.audit_log].count("mission_done") == 1


# -- journal: O(step) per step, resume from any point -----------------------------------------


def test_each_step_appends_one_line_not_a_full_rewrite(tmp_path):
    path = tmp_path / "c.json"
    journal = checkpoint.journal_path(str(path))
    sizes = []

    def look(task, session, context):
        lines = open_lines(journal) if os.path.exists(journal) else 0
        sizes.append((path.stat().st_ino, lines))  # a full write replaces the file
        return task

    mission = Mission("g", steps=chain(20, look))
    mission.checkpoint_path = str(path)
    mission.run()
    full_writes = {inode for inode, _ in sizes}
    assert len(full_writes) == 1  # the full checkpoint was written once before the steps
    assert [lines for _, lines in sizes] == list(range(20))
    assert not os.path.exists(checkpoint.journal_path(str(path)))  # folded in at the end
    final = json.loads(path.read_text())
    assert [s["status"] for s in final["steps"]] == ["done"] * 20


def test_full_rewrites_are_rare_on_long_missions(tmp_path, monkeypatch):
    writes = []
    real = checkpoint.write_json_atomic

    def counting(path, data, **kw):
        writes.append(len(data.get("steps") or ()))
        return real(path, data, **kw)

    monkeypatch.setattr(checkpoint, "write_json_atomic", counting)
    mission = Mission("g", steps=chain(100), max_steps=100)
    mission.checkpoint_path = str(tmp_path / "c.json")
    mission.run()
    assert len(writes) <= 3  # start, at most one on the way, end


@pytest.mark.parametrize("stop_at", [0, 1, 7, 19])
def test_resume_from_any_point_replays_the_journal(tmp_path, stop_at):
    path = tmp_path / "c.json"
    ran = []

    def step(task, session, context):
        if task == f"step {stop_at}" and not ran.count("resumed"):
            # A crash here is simulated: the files as they are now are put back below.
            snapshot.update({p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()})
        ran.append(task)
        return task.upper()

    snapshot: dict = {}
    mission = Mission("g", steps=chain(20, step), mission_id="m1")
    mission.checkpoint_path = str(path)
    mission.run()
    for p in tmp_path.iterdir():  # back to the moment step `stop_at` started
        if p.is_file():
            p.unlink()
    for p, data in snapshot.items():
        p.write_bytes(data)
    resumed = Mission.load(path, executor=step)  # the saved executor is a copy: use this one
    assert resumed.id == "m1"
    done = [s.id for s in resumed.steps if s.status == "done"]
    assert done == [f"s{i}" for i in range(stop_at)]
    assert [s.result for s in resumed.steps[:stop_at]] == [f"STEP {i}" for i in range(stop_at)]
    ran.clear()
    ran.append("resumed")
    resumed.run()
    assert resumed.status == "succeeded"
    assert ran[1:] == [f"step {i}" for i in range(stop_at, 20)]


def test_a_torn_last_journal_line_is_ignored(tmp_path):
    path = tmp_path / "c.json"
    mission = Mission("g", steps=chain(3), mission_id="m2")
    mission.checkpoint_path = str(path)
    mission.save(path)
    journal = checkpoint.journal_path(str(path))
    state = checkpoint.step_state(mission.steps[0], include_executor=False)
    state["status"] = "done"
    with open(journal, "w") as handle:
        handle.write(json.dumps({"seq": 1, "step": state}) + "\n" + '{"seq": 2, "st')
    assert [s.status for s in Mission.load(path).steps] == ["done", "pending", "pending"]
    with open(journal, "w") as handle:
        handle.write('{"seq": 1, "st\n' + json.dumps({"seq": 2, "step": state}) + "\n")
    with pytest.raises(CheckpointError, match="journal.*line 1"):
        Mission.load(path)


# -- large values ----------------------------------------------------------------------------


def test_a_large_result_is_stored_once_beside_the_checkpoint_and_read_when_asked(tmp_path):
    big = "x" * (LARGE_VALUE_BYTES + 10)
    path = tmp_path / "c.json"
    mission = Mission(
        "g",
        steps=[
            # Built inside: a closure over `big` would be saved with the executor.
            MissionStep("big", "big", executor=lambda t, s, c: "x" * (LARGE_VALUE_BYTES + 10)),
            MissionStep("next", "next", executor=lambda t, s, c: len(c), depends_on="big"),
        ],
        mission_id="m3",
    )
    mission.checkpoint_path = str(path)
    mission.run()
    assert mission.status == "succeeded"
    assert path.stat().st_size < 100_000  # the checkpoint holds a reference, not the value
    entry = json.loads(path.read_text())["steps"][0]["result"]
    assert entry["bytes"] > LARGE_VALUE_BYTES and entry["summary"].startswith("xxx")
    files = list((tmp_path / "c.large").iterdir())
    assert len(files) == 1 and files[0].stat().st_mode & 0o777 == 0o600
    assert mission.steps[1].result < 10_000  # the next step was told a summary
    loaded = Mission.load(path)
    assert isinstance(loaded.steps[0].stored_result(), checkpoint.LargeValue)  # not read yet
    assert loaded.steps[0].result == big  # read when asked
    mission.save(tmp_path / "again.json")  # a save beside another file stores it there
    assert Mission.load(tmp_path / "again.json").steps[0].result == big


def test_a_large_goal_is_summarised_in_events_and_stored_once(tmp_path):
    goal = "g" * (LARGE_VALUE_BYTES + 5)
    mission = Mission(goal, steps=chain(1))
    mission.checkpoint_path = str(tmp_path / "c.json")
    mission.run()
    start = next(e for e in mission.audit_log if e["event"] == "mission_start")
    assert len(start["goal"]) < 1000 and "bytes" in start["goal"]
    assert (tmp_path / "c.json").stat().st_size < 100_000
    assert Mission.load(tmp_path / "c.json").goal == goal
    final = json.loads((tmp_path / "c.json").read_text())
    mirror = Mission("mirror goal")
    mirror.checkpoint_path = str(tmp_path / "c.json")
    mirror.load_state(final, final=True)
    assert mirror.goal == "mirror goal"  # a mirror does not load a large goal to attach


def test_a_reference_cannot_leave_its_folder(tmp_path):
    mission = Mission("g", steps=chain(1), mission_id="m4")
    mission.save(tmp_path / "m.json")
    data = json.loads((tmp_path / "m.json").read_text())
    data["steps"][0]["result"] = {"$large": "../../etc/passwd", "bytes": 1, "summary": ""}
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match="invalid large value"):
        Mission.load(tmp_path / "m.json")


# -- progress never goes back --------------------------------------------------------------


def test_progress_never_goes_back_while_running_and_a_failure_keeps_it():
    from mission_widgets import report_progress

    seen = []
    attempts = []

    def flaky(task, session, context):
        attempts.append(task)
        for i in range(1, 10):
            report_progress(i / 10)
        if task == "step 2" and len(attempts) < 5:
            raise RuntimeError("again")
        return task

    mission = Mission("g", steps=chain(4, flaky), backoff_factor=0)
    mission.add_event_sink(lambda e: seen.append(mission.progress))
    mission.run()
    assert mission.status == "succeeded"
    assert seen == sorted(seen), "progress went backwards"

    failing = Mission(
        "g",
        steps=chain(4, lambda t, s, c: (report_progress(0.5), 1 / 0 if t == "step 3" else t)[1]),
        backoff_factor=0,
        stall_policy={"on_max_retries": "abort"},
    )
    values = []
    failing.add_event_sink(lambda e: values.append(failing.progress))
    failing.run()
    assert failing.status == "failed"
    assert values == sorted(values)
    assert failing.progress == pytest.approx(3.5 / 4)  # kept where it stopped


def test_mirror_progress_follows_the_same_rule():
    from mission_widgets import report_progress
    from mission_widgets.core import apply_event

    def flaky(task, session, context, calls=[]):  # noqa: B006 - counts calls
        calls.append(1)
        report_progress(0.9)
        if len(calls) == 1:
            raise RuntimeError("once")
        return "ok"

    mission = Mission("g", steps=chain(2, flaky), backoff_factor=0).run()
    mirror = Mission("g")
    values = []
    for event in mission.audit_log:
        apply_event(mirror, event)
        values.append(mirror.progress)
    assert values == sorted(values)
    assert values[-1] == 1.0


def test_live_summary_is_kept_without_walking_the_steps():
    mission = Mission("g", steps=chain(5))
    assert mission.live_summary() == {
        "status": "pending",
        "n_steps": 5,
        "n_done": 0,
        "n_failed": 0,
        "progress": 0.0,
        "waiting_on": None,
    }
    summaries = []
    mission.add_event_sink(lambda e: summaries.append(mission.live_summary()["n_done"]))
    mission.run()
    assert summaries[-1] == 5 and summaries == sorted(summaries)
    assert mission.live_summary()["progress"] == 1.0


def test_a_mirror_without_the_folder_finds_a_large_result_from_the_final_state(tmp_path):
    """The runtime's final state (to_dict without executors) references the file; a kernel
    mirror that applies it reads the value only when asked."""
    mission = Mission(
        "g",
        steps=[MissionStep("big", "big", executor=lambda t, s, c: "y" * (LARGE_VALUE_BYTES + 1))],
    )
    mission.checkpoint_path = str(tmp_path / "checkpoints" / "c.json")
    mission.run()
    final = json.loads(json.dumps(mission.to_dict(include_executors=False)))
    assert len(json.dumps(final)) < 100_000
    mirror = Mission("g", mission_id=mission.id)
    mirror.load_state(final, final=True)
    assert isinstance(mirror.steps[0].stored_result(), checkpoint.LargeValue)
    assert mirror.steps[0].result == "y" * (LARGE_VALUE_BYTES + 1)


def test_a_full_disk_under_the_journal_never_fails_the_mission(tmp_path, monkeypatch):
    """Writes and the final close of the journal fail as on a full disk: warnings only."""
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def write(self, text):
            raise OSError(28, "No space left on device")

        def flush(self):
            raise OSError(28, "No space left on device")

        def close(self):
            self.handle.close()
            raise OSError(28, "No space left on device")

    def fdopen(fd, mode="r", *args, **kwargs):
        handle = real_fdopen(fd, mode, *args, **kwargs)
        return FullDisk(handle) if mode == "a" else handle

    monkeypatch.setattr(os, "fdopen", fdopen)
    mission = Mission("g", steps=chain(3))
    mission.checkpoint_path = str(tmp_path / "c.json")
    with pytest.warns(RuntimeWarning, match="No space left"):
        mission.run()
    assert mission.status == "succeeded"
    assert [e["event"] for e in mission.audit_log].count("mission_done") == 1


def test_a_cancelled_mission_keeps_the_progress_it_reached():
    from mission_widgets import report_progress
    from mission_widgets.core import apply_event

    reached = threading.Event()
    mission: Mission

    def long_step(task, session, context):
        report_progress(0.6)
        reached.set()
        mission._cancel.wait(10)  # until cancelled
        raise RuntimeError("stopped")

    mission = Mission("g", steps=chain(1) + [MissionStep("long", "long", executor=long_step)])
    values = []
    mission.add_event_sink(lambda e: values.append(mission.progress))
    thread = threading.Thread(target=mission.run)
    thread.start()
    assert reached.wait(10)
    before = mission.progress
    mission.request_cancel()
    thread.join(10)
    assert mission.status == "cancelled"
    assert mission.progress == before == pytest.approx(0.8)
    assert values == sorted(values)
    mirror = Mission("g")
    for event in mission.audit_log:
        apply_event(mirror, event)
    assert mirror.progress == pytest.approx(0.8)
