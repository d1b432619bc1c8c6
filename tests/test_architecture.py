"""The engine (everything outside reconciler/providers and reconciler/emulator) imports no
provider and no emulator module; the emulator imports nothing of the engine."""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "reconciler"
ENGINE = [p for p in PKG.rglob("*.py")
          if not {"providers", "emulator", "cli"} & set(p.relative_to(PKG).parts)]


def imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: str(p.relative_to(PKG)))
def test_engine_module_imports_no_provider_or_emulator(path):
    bad = {n for n in imports(path) if n.startswith(("reconciler.emulator", "reconciler.providers."))}
    # providers.base is the protocol the engine is written against, not a provider
    bad -= {"reconciler.providers.base"}
    assert not bad, f"{path.name} imports {sorted(bad)}"


def test_emulator_imports_nothing_of_the_engine():
    for path in (PKG / "emulator").rglob("*.py"):
        bad = {n for n in imports(path) if n.startswith("reconciler.") and not n.startswith("reconciler.emulator")}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_engine_list_is_not_empty():
    assert any(p.name == "planner.py" for p in ENGINE)
