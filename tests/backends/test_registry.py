"""Backends are found by name through the registry; no backend module imports another."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mission_widgets.runtime import registry
from mission_widgets.runtime.backend import Backend
from mission_widgets.runtime.registry import (
    backend_class,
    known_backends,
    make_backend,
    register_backend,
)
from mission_widgets.runtime.subprocess_backend import SubprocessBackend
from mission_widgets.runtime.thread_backend import ThreadBackend

RUNTIME_MODULES = [
    "mission_widgets.runtime.backend",
    "mission_widgets.runtime.registry",
    "mission_widgets.runtime.thread_backend",
    "mission_widgets.runtime.subprocess_backend",
    "mission_widgets.runtime.worker",
]


def run_python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_built_in_backends_by_name(store):
    assert {"thread", "subprocess", "dask"} <= set(known_backends())
    assert backend_class("thread") is ThreadBackend
    assert isinstance(make_backend("subprocess", store, print), SubprocessBackend)


def test_unknown_backend_is_named_with_the_choices(store):
    with pytest.raises(ValueError, match=r"unknown backend 'martian'; choose one of: ") as error:
        make_backend("martian", store, print)
    assert {"thread", "subprocess", "dask"} <= set(str(error.value).split(": ")[1].split(", "))


def test_options_a_backend_does_not_take_are_named(store):
    with pytest.raises(TypeError, match="takes no options, got colour"):
        make_backend("thread", store, print, colour="red")


def test_an_instance_is_used_as_it_is(store):
    backend = ThreadBackend(store)
    assert make_backend(backend, store, print) is backend


def test_a_registered_backend_is_found_by_name(store, monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))

    class Remote(Backend):
        name = "remote-test"

    register_backend("remote-test", Remote)
    assert isinstance(make_backend("remote-test", store, print), Remote)
    with pytest.raises(TypeError, match="must be a Backend subclass"):
        register_backend("bad", object)  # type: ignore[arg-type]


@pytest.mark.parametrize("module", RUNTIME_MODULES)
def test_each_module_imports_alone_without_dask(module):
    """No import cycle (each module imports first, alone) and Dask stays unloaded."""
    out = run_python(
        f"import sys, {module}\n"
        "print(sorted(m for m in sys.modules if m.startswith(('distributed', 'dask'))\n"
        "             or m.startswith('mission_widgets.runtime.dask')))"
    )
    assert out.strip() == "[]"


def test_making_local_backends_loads_no_dask(tmp_path):
    out = run_python(
        "import sys\n"
        "from mission_widgets.runtime.registry import make_backend\n"
        "from mission_widgets.runtime.store import MissionStore\n"
        f"store = MissionStore({str(tmp_path / 's')!r})\n"
        "make_backend('thread', store, print); make_backend('subprocess', store, print)\n"
        "print(any(m.startswith(('distributed', 'dask')) for m in sys.modules))"
    )
    assert out.strip() == "False"


def test_the_dask_backend_imports_first_and_is_found_by_name():
    """No cycle: the Dask kernel side imports alone, and the registry hands out its class."""
    out = run_python(
        "import mission_widgets.runtime.dask_kernel as kernel\n"
        "from mission_widgets.runtime.registry import backend_class\n"
        "print(backend_class('dask') is kernel.DaskBackend)"
    )
    assert out.strip() == "True"
