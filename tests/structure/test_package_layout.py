"""The package as a newcomer reads it, from the source: the import graph (no circles, even
through imports inside functions or under TYPE_CHECKING; the flow one way), module sizes and
docstrings, backend names, one palette, test support out of the wheel, one orchestrator
fixture, no dead code, mypy clean.

Complements tests/core/test_core_contracts.py (enums, hooks table, dispatch) and
tests/backends/test_registry.py (registry, lazy Dask).
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import mission_widgets

PACKAGE = Path(mission_widgets.__file__).resolve().parent
REPO = PACKAGE.parent
TESTS = REPO / "tests"
#: "modules of about 600 lines at most"
MAX_MODULE_LINES = 650


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (packages by their own name)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(
    name: str, path: Path, known: set[str], *, module_level_only: bool = False
) -> set[str]:
    """The modules ``name`` imports: every import statement in the file, also those inside
    functions and under ``if TYPE_CHECKING:`` (a circle kept apart only by a late import is
    still a circle); with ``module_level_only``, what importing the module runs at once."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()

    def add(node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            return
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        # ``from pkg import submodule`` imports the submodule; the package itself only for
        # names that are not submodules (importing a submodule runs its package's __init__
        # first, as for any import: not an edge of its own).
        submodules = {f"{module}.{alias.name}" for alias in node.names}
        targets.update(submodules & known)
        if not submodules <= known:
            targets.add(module)

    def visit(statements: list[ast.stmt]) -> None:
        for node in statements:
            if isinstance(node, ast.Import | ast.ImportFrom):
                add(node)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)

    tree = ast.parse(path.read_text())
    if module_level_only:
        visit(tree.body)
    else:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                add(node)
    return targets


def module_level_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """What importing ``name`` imports at once (not under TYPE_CHECKING, not in functions)."""
    return imports_of(name, path, known, module_level_only=True)


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {
        name: {t for t in imports_of(name, path, known) if t in known and t != name}
        for name, path in found.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def strong(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                strong(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in graph:
        if node not in index:
            strong(node)
    return found


def test_the_graph_reader_sees_a_cycle_when_there_is_one():
    # The check below must be able to fail: a made-up graph with a cycle is found.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    graph = import_graph()
    kernel_side = graph["mission_widgets.orchestrator.mission_orchestrator"]
    assert any(target.startswith("mission_widgets.core") for target in kernel_side)


def test_no_module_imports_one_that_imports_it_back():
    assert cycles(import_graph()) == []


def test_core_imports_nothing_above_it_at_module_level():
    above = (
        "mission_widgets.runtime",
        "mission_widgets.orchestrator",
        "mission_widgets.widgets",
        "mission_widgets.cli",
    )
    found = modules()
    for name, path in found.items():
        if not name.startswith("mission_widgets.core"):
            continue
        imported = module_level_imports(name, path, set(found))
        bad = {
            t
            for t in imported
            if t.startswith(above) or t.split(".")[0] in ("pandas", "ipywidgets")
        }
        assert bad == set(), name


def test_the_flow_is_one_way_runtime_never_imports_the_orchestrator_or_widgets():
    graph = import_graph()
    for name, targets in graph.items():
        if name.startswith("mission_widgets.runtime"):
            upward = {
                t
                for t in targets
                if not t.startswith(("mission_widgets.runtime", "mission_widgets.core"))
            }
            assert upward == set(), name


def printed_by(code: str) -> str:
    """What a fresh interpreter running ``code`` prints (it must exit 0)."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_worker_imports_no_pandas_ipywidgets_or_ipython():
    code = (
        "import sys, runpy\n"
        "sys.argv = ['x']\n"
        "import mission_widgets.worker, mission_widgets.runtime.worker\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pandas', 'ipywidgets', 'IPython', 'numpy', 'dask'))\n"
        "print(bad)\n"
    )
    assert printed_by(code) == "[]"


def test_the_worker_and_its_trace_context_load_no_openssl():
    # hashlib loads OpenSSL (about 4 MiB of RSS in every worker) for one sha256 of an id.
    code = (
        "import sys\n"
        "import mission_widgets.worker, mission_widgets.runtime.worker\n"
        "from mission_widgets.core.tracecontext import enter_trace, leave_trace\n"
        "leave_trace(enter_trace('mission_x'))\n"
        "print(sorted(m for m in sys.modules if m in ('hashlib', '_hashlib')))\n"
    )
    assert printed_by(code) == "[]"


@pytest.mark.parametrize("name", sorted(modules()))
def test_each_module_is_of_a_size_a_person_can_hold_and_says_its_job(name):
    path = modules()[name]
    source = path.read_text()
    n_lines = len(source.splitlines())
    assert n_lines <= MAX_MODULE_LINES, f"{path.relative_to(REPO)} has {n_lines} lines"
    docstring = ast.get_docstring(ast.parse(source))
    assert docstring and len(docstring.split()) >= 3, f"{path.relative_to(REPO)}: no docstring"


BACKEND_NAME_COMPARISON = re.compile(
    r"""(==|!=)\s*["'](thread|subprocess|dask)["']|["'](thread|subprocess|dask)["']\s*(==|!=)"""
    r"""|in\s*\(\s*["'](thread|subprocess|dask)["']|runs_on\s*==|Backend\.terminate\("""
)


def test_orchestrator_cli_and_panel_ask_the_backend_instead_of_comparing_names():
    assert BACKEND_NAME_COMPARISON.search('if row["backend"] == "subprocess":')  # can fail
    outside_runtime = [
        p
        for p in PACKAGE.rglob("*.py")
        if "runtime" not in p.relative_to(PACKAGE).parts and p.parent.name != "testing"
    ]
    hits = [
        f"{p.relative_to(REPO)}:{n}: {line.strip()}"
        for p in outside_runtime
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if BACKEND_NAME_COMPARISON.search(line)
    ]
    assert hits == []


def test_one_palette_for_statuses():
    from mission_widgets.core.progress import STATUS_STYLES

    colours = {style.colour.lower() for style in STATUS_STYLES.values()}
    assert len(colours) >= 5
    palette = PACKAGE / "core" / "progress.py"
    elsewhere = {
        f"{p.relative_to(REPO)}: {colour}"
        for p in PACKAGE.rglob("*.py")
        if p != palette
        for colour in colours
        if colour in p.read_text().lower()
    }
    assert elsewhere == set()


def test_the_package_ships_only_the_fake_llm_server_as_test_support():
    testing = PACKAGE / "testing"
    shipped = {p.name for p in testing.glob("*.py")} if testing.exists() else set()
    assert shipped <= {"__init__.py", "fake_llm.py"}
    assert (TESTS / "support" / "__init__.py").exists()
    assert (TESTS / "support" / "waiting.py").exists() and (
        TESTS / "support" / "kernelspec.py"
    ).exists()
    assert not (PACKAGE / "testing" / "waiting.py").exists()


def _fixtures_making_orchestrators() -> list[str]:
    """Fixtures that hand out an orchestrator they built themselves (not those that only
    reattach one to clean a store up)."""
    found = []
    for path in TESTS.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            is_fixture = any("fixture" in ast.unparse(d) for d in node.decorator_list)
            made = {
                ast.unparse(assign.targets[0])
                for assign in ast.walk(node)
                if isinstance(assign, ast.Assign)
                and isinstance(assign.value, ast.Call)
                and ast.unparse(assign.value.func).endswith("MissionOrchestrator")
            }
            handed_out = {
                name.id
                for out in ast.walk(node)
                if isinstance(out, ast.Yield | ast.Return) and out.value is not None
                for name in ast.walk(out.value)
                if isinstance(name, ast.Name)
            }
            if is_fixture and made & handed_out:
                found.append(f"{path.relative_to(TESTS)}::{node.name}")
    return found


def test_one_orchestrator_fixture():
    # The fixture itself builds orchestrators in a helper class (Orchestrators.__call__),
    # so no fixture anywhere hands out a MissionOrchestrator it constructed.
    assert _fixtures_making_orchestrators() == []
    conftest = (TESTS / "conftest.py").read_text()
    assert "def orchestrators(" in conftest


DEAD = (
    "state_home",
    "default_store_path",
    "_schema_ready",
    "missions_dir",
    "logs_dir",
    "current_step_context",
    "remove_listener",
)


def test_the_dead_code_the_issue_names_is_gone_and_no_private_import_crosses_modules():
    defined = []
    private_imports = []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if node.name in DEAD:
                    defined.append(f"{path.relative_to(REPO)}: {node.name}")
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if (
                        isinstance(target, ast.Name | ast.Attribute)
                        and ast.unparse(target).split(".")[-1] in DEAD
                    ):
                        defined.append(f"{path.relative_to(REPO)}: {ast.unparse(target)}")
            elif isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        private_imports.append(f"{path.relative_to(REPO)}: {alias.name}")
    assert defined == []
    assert private_imports == []


def test_docstrings_point_to_files_the_repository_has():
    for path in PACKAGE.rglob("*.py"):
        for match in re.finditer(r"\b([A-Z][A-Z_]+\.md)\b", path.read_text()):
            assert (REPO / match.group(1)).exists() or list(REPO.rglob(match.group(1))), (
                f"{path.relative_to(REPO)} points to {match.group(1)}"
            )


def test_mypy_settings_are_stated_and_ci_runs_mypy_beside_ruff():
    pyproject = (REPO / "pyproject.toml").read_text()
    assert "[tool.mypy]" in pyproject
    ci = (REPO / ".ci" / "run").read_text()
    assert "ruff" in ci and "mypy" in ci


@pytest.mark.skipif(
    shutil.which("mypy", path=str(Path(sys.executable).parent)) is None, reason="no mypy"
)
@pytest.mark.timeout(900)  # mypy beside other work on two busy cores takes minutes
def test_mypy_is_clean():
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "mission_widgets"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:]


def test_backends_sit_behind_a_base_and_a_registry_and_dask_is_split_by_side():
    found = modules()
    graph = import_graph()
    assert (
        "mission_widgets.runtime.backend" in found and "mission_widgets.runtime.registry" in found
    )
    assert "mission_widgets.runtime.dask_backend" not in found  # the 1,213-line module is gone
    # The worker side never needs the kernel side (it runs on Dask workers, far from the store).
    worker_side = graph["mission_widgets.runtime.dask_worker"]
    assert not worker_side & {
        "mission_widgets.runtime.dask_kernel",
        "mission_widgets.runtime.dask_ingest",
    }
    # The base knows no concrete backend; the registry finds them (Dask lazily).
    base = graph["mission_widgets.runtime.backend"]
    assert not {t for t in base if t.endswith(("_backend", "dask_kernel", "registry"))}
    assert "mission_widgets.runtime.dask_kernel" not in graph["mission_widgets.runtime.registry"]


def _warn_loops(tree: ast.AST) -> list[int]:
    """Lines of ``for f in ...: try: f(...) except ...: warnings.warn(...)`` loops."""
    lines = []
    for loop in ast.walk(tree):
        if not isinstance(loop, ast.For):
            continue
        items = {name.id for name in ast.walk(loop.target) if isinstance(name, ast.Name)}
        for attempt in loop.body:
            if not isinstance(attempt, ast.Try):
                continue
            calls_item = any(
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id in items
                for stmt in attempt.body
                for call in ast.walk(stmt)
            )
            warns = any(
                isinstance(call, ast.Call) and ast.unparse(call.func).endswith("warnings.warn")
                for handler in attempt.handlers
                for call in ast.walk(handler)
            )
            if calls_item and warns:
                lines.append(loop.lineno)
    return lines


def test_call_each_listener_and_warn_is_written_once():
    sample = (
        "for cb in cbs:\n    try:\n        cb(x)\n"
        "    except Exception:\n        warnings.warn('x')\n"
    )
    assert _warn_loops(ast.parse(sample)) == [1]  # the reader finds one
    found = {
        str(p.relative_to(REPO)): lines
        for p in PACKAGE.rglob("*.py")
        if (lines := _warn_loops(ast.parse(p.read_text())))
    }
    assert set(found) == {"mission_widgets/core/listeners.py"}, found


def test_statuses_are_str_enums_and_store_rows_are_typed_records():
    import enum
    import typing

    from mission_widgets import MissionStatus, StepStatus
    from mission_widgets.runtime.store import MissionStore
    from mission_widgets.runtime.store_row import MissionRow

    for kind in (MissionStatus, StepStatus):
        assert issubclass(kind, str) and issubclass(kind, enum.Enum)
        assert all(member == member.value and str(member) == member.value for member in kind)
    assert typing.is_typeddict(MissionRow)
    for method in (MissionStore.row, MissionStore.rows, MissionStore.rows_by_id):
        assert "MissionRow" in str(method.__annotations__["return"]), method


#: The one-way flow, lowest first; a module may import its own layer and those below it.
LAYERS = ("core", "runtime", "orchestrator", "widgets", "cli")
#: Upward edges that the public API asks for, each made inside one function: ``orch.panel()``
#: returns a MissionPanel.
UPWARD_ALLOWED = {("mission_widgets.orchestrator.mission_orchestrator", "widgets")}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_the_reader_sees_imports_inside_functions_and_under_type_checking(tmp_path):
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .b import B\n"
        "def f():\n    from .c import C\n"
    )
    known = {"pkg.probe", "pkg.b", "pkg.c"}
    assert imports_of("pkg.probe", source, known) >= {"pkg.b", "pkg.c"}
    assert not module_level_imports("pkg.probe", source, known) & {"pkg.b", "pkg.c"}


def test_the_layers_import_downward_only():
    upward = set()
    for name, targets in import_graph().items():
        here = layer(name)
        if here is None:
            continue
        for target in targets:
            there = layer(target)
            if there is not None and LAYERS.index(there) > LAYERS.index(here):
                upward.add((name, there))
    assert upward <= UPWARD_ALLOWED, sorted(upward - UPWARD_ALLOWED)
