"""One owner per piece of the orchestrator's state: MissionOrchestrator is split by file into
itself, StoreMirror (mirror.py) and MissionControl (control.py); each attribute is bound
(``self.x = ...``) in exactly one of those files, and MissionControl binds none. The comment
block above ``class MissionOrchestrator`` names the owners; this test keeps it true."""

from __future__ import annotations

import ast
from pathlib import Path

import mission_widgets.orchestrator as orchestrator_package

HERE = Path(orchestrator_package.__file__).resolve().parent
FILES = ("mission_orchestrator.py", "mirror.py", "control.py")


def bound_attributes(source: str) -> set[str]:
    """Names ``x`` of every ``self.x = ...`` / ``self.x: T = ...`` / ``a, self.x = ...`` /
    ``self.x += ...`` in ``source`` (item assignment ``self.x[k] = v`` mutates, not binds)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        else:
            continue
        for target in targets:
            items = target.elts if isinstance(target, ast.Tuple) else [target]
            for item in items:
                if (
                    isinstance(item, ast.Attribute)
                    and isinstance(item.value, ast.Name)
                    and item.value.id == "self"
                ):
                    names.add(item.attr)
    return names


def owners() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in FILES:
        for attribute in bound_attributes((HERE / name).read_text()):
            found.setdefault(attribute, []).append(name)
    return found


def test_the_reader_finds_bindings_but_not_item_assignments():
    source = "def f(self):\n    self.a = 1\n    b, self.c = 2, 3\n    self.d: int = 4\n"
    source += "    self.e[1] = 5\n    self.g += 1\n"
    assert bound_attributes(source) == {"a", "c", "d", "g"}


def test_every_attribute_has_one_owning_file():
    shared = {attribute: files for attribute, files in owners().items() if len(files) > 1}
    assert shared == {}


def test_the_control_actions_own_no_state():
    assert bound_attributes((HERE / "control.py").read_text()) == set()


def test_the_ownership_block_names_what_the_mirror_owns():
    block = (HERE / "mission_orchestrator.py").read_text().split("class MissionOrchestrator")[0]
    mirror = bound_attributes((HERE / "mirror.py").read_text())
    assert mirror, "the mirror owns the mirrors"
    unnamed = {attribute for attribute in mirror if attribute not in block}
    assert unnamed == set()
