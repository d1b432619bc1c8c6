"""The layers of reconciler/, read from every import with `ast` (function-level and
TYPE_CHECKING ones included, `from reconciler import x` resolved to the module x).

Imports only go down this list; a module may import its own package and anything below:

    cli         click commands: parse, call the engine, render, exit code
    watch       the service loop over the engine
    engine      graph, planner, applier, recovery, drift, outputs, pins, runner
    render      text, markdown, json of a plan (plan/ only)
    providers   contract (Kind), http, doctor types, then valdi/ valohai/ codeocean/
    plan        the plan as data, diffing, plan files, scope
    state       the stores
    config      what the user wrote: YAML, manifest, expressions, validation, local files
    errors      the exception tree (a leaf)

The emulator is an island: it imports nothing of the tool, and only cli (the sandbox) and
tests import it. Outside providers/ nothing names a provider's package (valdi, valohai,
codeocean): the engine reaches them only through the registry in providers/__init__.py.
No module imports another module's _private name, and no two modules import each other,
directly or through a chain (a cycle).
"""
import ast
import graphlib
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "reconciler"
ORDER = ["cli", "watch", "engine", "render", "providers", "plan", "state", "config", "errors"]
APIS = {"valdi", "valohai", "codeocean"}
TOP_LEVEL_ALLOWED = {"__init__.py", "__main__.py", "errors.py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def imports(path: Path, mod: str = "") -> list[tuple[int, str, list[str]]]:
    """(line, module imported, names taken from it) for every reconciler import."""
    mod = mod or module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names if a.name.startswith("reconciler")]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            if not base.startswith("reconciler"):
                continue
            names = [a.name for a in node.names]
            # `from reconciler.x import y` where y is a module is an import of that module
            for name in names:
                if f"{base}.{name}" in MODULES:
                    found.append((node.lineno, f"{base}.{name}", []))
            found.append((node.lineno, base, [n for n in names if f"{base}.{n}" not in MODULES]))
    return sorted(found)


def layer(mod: str) -> str:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else ""


TOOL = {m: p for m, p in MODULES.items() if layer(m) not in ("emulator", "")}


def test_only_the_allowed_modules_stay_at_the_top():
    top = {p.name for p in PKG.glob("*.py")}
    assert top <= TOP_LEVEL_ALLOWED, f"move {sorted(top - TOP_LEVEL_ALLOWED)} into the package of its concern"


def test_every_package_has_a_place_in_the_order():
    packages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - {"emulator"} == set(ORDER) - {"errors"}


def climbs(mod: str, path: Path) -> list[str]:
    here = layer(mod)
    found = []
    for line, target, _ in imports(path, mod):
        there = layer(target)
        if there in ("", here):
            continue
        if there == "emulator":
            if here != "cli":
                found.append(f"line {line}: {target} (only cli starts the emulator)")
            continue
        if ORDER.index(there) < ORDER.index(here):
            found.append(f"line {line}: {target} ({there} is above {here})")
        elif there == "providers" and set(target.split(".")[2:3]) & APIS:
            found.append(f"line {line}: {target} (reach providers through the registry)")
    return found


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_names(mod: str, path: Path) -> list[str]:
    """`from m import _x`, and `m._x` where m names another reconciler module."""
    found = [f"line {line}: {target}.{name}" for line, target, names in imports(path, mod)
             for name in names if _private(name) and target != mod]
    tree = ast.parse(path.read_text())
    aliases = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reconciler"):
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names
                            if f"{node.module}.{a.name}" in MODULES})
        elif isinstance(node, ast.Import):
            aliases.update({a.asname: a.name for a in node.names if a.asname and a.name in MODULES})
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and _private(node.attr) and aliases[node.value.id] != mod):
            found.append(f"line {node.lineno}: {aliases[node.value.id]}.{node.attr}")
    return sorted(found)


@pytest.mark.parametrize("mod", sorted(TOOL))
def test_imports_only_go_down(mod):
    found = climbs(mod, TOOL[mod])
    assert not found, f"{mod} imports upwards:\n" + "\n".join(found)


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_no_private_name_is_imported_from_another_module(mod):
    found = private_names(mod, MODULES[mod])
    assert not found, f"{mod} takes private names:\n" + "\n".join(found)
def test_the_emulator_imports_nothing_of_the_tool():
    for mod, path in MODULES.items():
        if layer(mod) == "emulator":
            bad = [t for _, t, _ in imports(path) if layer(t) not in ("emulator", "")]
            assert not bad, f"{mod} imports {bad}"


def test_no_import_cycle_between_modules():
    graph = {mod: {t for _, t, _ in imports(path) if t in MODULES and t != mod
                   and not mod.startswith(t + ".")}  # a package's __init__ runs before its modules anyway
             for mod, path in MODULES.items()}
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as cycle:
        pytest.fail(f"import cycle: {' -> '.join(cycle.args[1])}")


def test_the_checks_see_a_climb_a_private_name_and_a_cycle(tmp_path):
    """The rules above can fail: a planted climb, private import and cycle are each found."""
    planted = tmp_path / "x.py"
    planted.write_text("def f():\n    from reconciler.engine.planner import _private\n"
                       "from reconciler import providers\nimport reconciler.providers.valdi.vm\n"
                       "from reconciler.config import localfiles\nlocalfiles._hidden(1)\n")
    assert climbs("reconciler.config.x", planted) == [
        "line 2: reconciler.engine.planner (engine is above config)",
        "line 3: reconciler.providers (providers is above config)",
        "line 4: reconciler.providers.valdi.vm (providers is above config)"]
    assert climbs("reconciler.engine.x", planted) == [
        "line 4: reconciler.providers.valdi.vm (reach providers through the registry)"]
    assert private_names("reconciler.engine.x", planted) == ["line 2: reconciler.engine.planner._private",
                                                             "line 6: reconciler.config.localfiles._hidden"]
    with pytest.raises(graphlib.CycleError):
        tuple(graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).static_order())
