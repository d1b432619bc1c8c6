"""Load manifests: files and folders, multi-document YAML, positions for every field,
${env.X} / ${var.X} substituted, ${<kind>.<name>.<attr>} kept as references."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from reconciler.errors import ManifestError, Problem
from reconciler.model import Lifecycle, Manifest, Position, Ref, Resource, Template

try:
    Loader = yaml.CSafeLoader  # libyaml: ~4x faster on large manifests
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    Loader = yaml.SafeLoader

MAX_FILE_BYTES = 10 * 1024 * 1024
EXPR = re.compile(r"\$\$\{|\$\{([^}]*)\}")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
TOP_KEYS = {"providers", "variables", "resources", "backend"}
RESOURCE_KEYS = {"kind", "name", "spec", "lifecycle", "deletion_policy", "depends_on"}


def _files(paths: Sequence[str | Path], problems: list[Problem]) -> list[Path]:
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file()))
        elif p.is_file():
            out.append(p)
        else:
            problems.append(Problem(str(p), 0, 0, "", "no such file or directory"))
    return out


def load_manifest(paths: Sequence[str | Path], env: Mapping[str, str] | None = None) -> Manifest:
    env = os.environ if env is None else env
    problems: list[Problem] = []
    files = _files(paths, problems)
    if not files and not problems:
        problems.append(Problem(str(paths[0] if paths else "."), 0, 0, "", "no *.yaml or *.yml files found"))
    digest = hashlib.sha256()
    docs: list[tuple[str, yaml.Node]] = []
    for f in files:
        name = str(f)
        try:
            data = f.read_bytes()
        except OSError as e:
            problems.append(Problem(name, 0, 0, "", f"cannot read: {e.strerror}"))
            continue
        if len(data) > MAX_FILE_BYTES:
            problems.append(Problem(name, 1, 1, "", f"file is larger than {MAX_FILE_BYTES // 1048576} MB"))
            continue
        digest.update(f.name.encode() + b"\0" + data + b"\0")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            line = data[:e.start].count(b"\n") + 1
            problems.append(Problem(name, line, 1, "", "the file is not valid UTF-8"))
            continue
        try:
            for node in yaml.compose_all(text, Loader=Loader):
                if node is not None:
                    docs.append((name, node))
        except yaml.MarkedYAMLError as e:
            mark = e.problem_mark or e.context_mark
            problems.append(Problem(name, (mark.line + 1) if mark else 1, (mark.column + 1) if mark else 1, "",
                                    f"YAML syntax: {e.problem or e.context}"))
        except yaml.YAMLError as e:
            problems.append(Problem(name, 1, 1, "", f"YAML: {e}"))
    root = Path(paths[0]) if paths else Path(".")
    root = root if root.is_dir() else root.parent
    state = _Builder(env, problems)
    for name, node in docs:
        state.document(name, node)
    state.finish()
    if problems:
        raise ManifestError(problems)
    return Manifest(resources=state.resources, providers=state.providers,
                    provider_problems=state.provider_problems, variables=state.variables,
                    backend=state.backend, files=[str(f) for f in files], digest=digest.hexdigest(),
                    root=str(root))


def _pos(file: str, node: yaml.Node) -> Position:
    return Position(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    def __init__(self, env: Mapping[str, str], problems: list[Problem]):
        self.env = env
        self.problems = problems
        self.resources: list[Resource] = []
        self.providers: dict[str, dict] = {}
        self.provider_problems: dict[str, list[Problem]] = {}
        self.variables: dict[str, Any] = {}
        self.backend: dict | None = None
        self._var_nodes: list[tuple[str, str, yaml.Node]] = []
        self._raw_resources: list[tuple[str, int, yaml.Node]] = []
        self._raw_providers: list[tuple[str, yaml.Node]] = []
        self._seen: dict[str, Position] = {}

    def problem(self, file: str, node: yaml.Node | None, path: str, message: str, sink=None) -> None:
        pos = _pos(file, node) if node is not None else Position(file, 1, 1)
        (sink if sink is not None else self.problems).append(Problem(file, pos.line, pos.column, path, message))

    def document(self, file: str, node: yaml.Node) -> None:
        if not isinstance(node, yaml.MappingNode):
            self.problem(file, node, "", "a manifest document must be a mapping with `resources:`")
            return
        for key, value in self._pairs(file, node, ""):
            if key == "resources":
                if not isinstance(value, yaml.SequenceNode):
                    self.problem(file, value, "resources", "must be a list of resources")
                    continue
                for i, item in enumerate(value.value):
                    self._raw_resources.append((file, i, item))
            elif key == "variables":
                if not isinstance(value, yaml.MappingNode):
                    self.problem(file, value, "variables", "must be a mapping")
                    continue
                for k, v in self._pairs(file, value, "variables"):
                    self._var_nodes.append((file, k, v))
            elif key == "providers":
                if not isinstance(value, yaml.MappingNode):
                    self.problem(file, value, "providers", "must be a mapping")
                    continue
                self._raw_providers.append((file, value))
            elif key == "backend":
                self.backend = self._value(file, value, "backend", self.problems, refs=False)
            else:
                self.problem(file, value, key, f"unknown top-level field '{key}' "
                             f"(expected one of {', '.join(sorted(TOP_KEYS))})")

    def _pairs(self, file: str, node: yaml.MappingNode, base: str):
        seen: set[str] = set()
        for knode, vnode in node.value:
            key = knode.value if isinstance(knode, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.problem(file, knode, base, "keys must be strings")
                continue
            if key in seen:
                self.problem(file, knode, f"{base}.{key}" if base else key, f"duplicate key '{key}'")
                continue
            seen.add(key)
            yield key, vnode

    def finish(self) -> None:
        for file, key, node in self._var_nodes:
            if key in self.variables:
                self.problem(file, node, f"variables.{key}", "variable defined twice")
            self.variables[key] = self._value(file, node, f"variables.{key}", self.problems, refs=False,
                                              allow_vars=False)
        for file, node in self._raw_providers:
            for pname, pnode in self._pairs(file, node, "providers"):
                sink = self.provider_problems.setdefault(pname, [])
                value = self._value(file, pnode, f"providers.{pname}", sink, refs=False)
                if not isinstance(value, dict):
                    self.problem(file, pnode, f"providers.{pname}", "must be a mapping")
                    continue
                merged = self.providers.setdefault(pname, {})
                for k, v in value.items():
                    if k in merged and merged[k] != v:
                        self.problem(file, pnode, f"providers.{pname}.{k}",
                                     "set differently in another file")
                    merged[k] = v
        self.provider_problems = {k: v for k, v in self.provider_problems.items() if v}
        for file, i, node in self._raw_resources:
            self._resource(file, i, node)

    def _resource(self, file: str, index: int, node: yaml.Node) -> None:
        where = f"resources[{index}]"
        if not isinstance(node, yaml.MappingNode):
            self.problem(file, node, where, "a resource must be a mapping with kind, name and spec")
            return
        fields = dict(self._pairs(file, node, where))
        for key in fields:
            if key not in RESOURCE_KEYS:
                self.problem(file, fields[key], f"{where}.{key}",
                             f"unknown field '{key}' (expected {', '.join(sorted(RESOURCE_KEYS))})")
        kind, name = fields.get("kind"), fields.get("name")
        for label, n in (("kind", kind), ("name", name)):
            if n is None:
                self.problem(file, node, where, f"missing `{label}`")
            elif not isinstance(n, yaml.ScalarNode) or not isinstance(n.value, str) or n.tag.endswith(":null"):
                self.problem(file, n, f"{where}.{label}", "must be a string")
        if not isinstance(kind, yaml.ScalarNode) or not isinstance(name, yaml.ScalarNode):
            return
        if not NAME.match(name.value):
            self.problem(file, name, f"{where}.name", f"'{name.value}' is not a valid name "
                         "(lower-case letters, digits, '-' and '_', starting with a letter or digit)")
            return
        address = f"{kind.value}.{name.value}"
        if address in self._seen:
            first = self._seen[address]
            self.problem(file, name, address, f"duplicate address {address} (first defined at {first})")
            return
        self._seen[address] = _pos(file, node)
        positions: dict[str, Position] = {"kind": _pos(file, kind), "name": _pos(file, name)}
        spec_node = fields.get("spec")
        spec: Any = {}
        if spec_node is not None:
            spec = self._value(file, spec_node, f"{address}.spec", self.problems, positions=positions,
                               pos_prefix="spec")
            if not isinstance(spec, dict):
                self.problem(file, spec_node, f"{address}.spec", "must be a mapping")
                spec = {}
        lifecycle = Lifecycle()
        if "lifecycle" in fields:
            lc = self._value(file, fields["lifecycle"], f"{address}.lifecycle", self.problems,
                             positions=positions, pos_prefix="lifecycle", refs=False)
            if not isinstance(lc, dict):
                self.problem(file, fields["lifecycle"], f"{address}.lifecycle", "must be a mapping")
            else:
                for k in lc:
                    if k not in ("prevent_destroy", "ignore_changes"):
                        self.problem(file, fields["lifecycle"], f"{address}.lifecycle.{k}",
                                     f"unknown field '{k}' (expected prevent_destroy, ignore_changes)")
                pd, ic = lc.get("prevent_destroy", False), lc.get("ignore_changes", [])
                if not isinstance(pd, bool):
                    self.problem(file, fields["lifecycle"], f"{address}.lifecycle.prevent_destroy",
                                 "must be true or false")
                    pd = False
                if not isinstance(ic, list) or not all(isinstance(x, str) for x in ic):
                    self.problem(file, fields["lifecycle"], f"{address}.lifecycle.ignore_changes",
                                 "must be a list of field paths")
                    ic = []
                lifecycle = Lifecycle(pd, tuple(ic))
        policy = None
        if "deletion_policy" in fields:
            policy = self._value(file, fields["deletion_policy"], f"{address}.deletion_policy", self.problems,
                                 refs=False)
            positions["deletion_policy"] = _pos(file, fields["deletion_policy"])
            if not isinstance(policy, str):
                self.problem(file, fields["deletion_policy"], f"{address}.deletion_policy", "must be a string")
                policy = None
        depends: list[str] = []
        if "depends_on" in fields:
            dv = self._value(file, fields["depends_on"], f"{address}.depends_on", self.problems, refs=False)
            positions["depends_on"] = _pos(file, fields["depends_on"])
            if not isinstance(dv, list) or not all(isinstance(x, str) for x in dv):
                self.problem(file, fields["depends_on"], f"{address}.depends_on", "must be a list of addresses")
            else:
                depends = dv
        self.resources.append(Resource(kind=kind.value, name=name.value, spec=spec, position=_pos(file, node),
                                       lifecycle=lifecycle, deletion_policy=policy, depends_on=depends,
                                       positions=positions, base_dir=str(Path(file).parent)))

    # -- values -----------------------------------------------------------------------
    def _value(self, file: str, node: yaml.Node, path: str, sink: list, *, refs: bool = True,
               allow_vars: bool = True, positions: dict | None = None, pos_prefix: str = "",
               depth: int = 0) -> Any:
        if positions is not None and pos_prefix:
            positions[pos_prefix] = _pos(file, node)
        if depth > 50:
            self.problem(file, node, path, "nested deeper than 50 levels", sink)
            return None
        if isinstance(node, yaml.MappingNode):
            out = {}
            for key, vnode in self._pairs(file, node, path):
                out[key] = self._value(file, vnode, f"{path}.{key}", sink, refs=refs, allow_vars=allow_vars,
                                       positions=positions, pos_prefix=f"{pos_prefix}.{key}" if pos_prefix else "",
                                       depth=depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._value(file, v, f"{path}[{i}]", sink, refs=refs, allow_vars=allow_vars,
                                positions=positions, pos_prefix=f"{pos_prefix}[{i}]" if pos_prefix else "",
                                depth=depth + 1) for i, v in enumerate(node.value)]
        try:
            value = _CONSTRUCTOR.construct_object(node)
        except yaml.YAMLError as e:
            self.problem(file, node, path, f"bad value: {e}", sink)
            return None
        if isinstance(value, str):
            if len(value) > 1_000_000:
                self.problem(file, node, path, "string longer than 1,000,000 characters", sink)
                return None
            if "${" in value:
                return self._expand(file, node, path, value, sink, refs, allow_vars)
        return value

    def _expand(self, file, node, path, text, sink, refs, allow_vars) -> Any:
        parts: list[Any] = []
        last = 0
        for m in EXPR.finditer(text):
            parts.append(text[last:m.start()])
            last = m.end()
            if m.group(0) == "$${":
                parts.append("${")
                continue
            expr = m.group(1).strip()
            head, _, rest = expr.partition(".")
            if head == "env" and rest:
                if rest not in self.env:
                    self.problem(file, node, path, f"environment variable {rest} is not set", sink)
                    parts.append("")
                else:
                    parts.append(self.env[rest])
            elif head == "var" and rest:
                if not allow_vars or rest not in self.variables:
                    self.problem(file, node, path, f"variable '{rest}' is not defined in `variables:`", sink)
                    parts.append("")
                else:
                    parts.append(self.variables[rest])
            else:
                bits = expr.split(".")
                if not refs or len(bits) < 4:
                    self.problem(file, node, path, f"cannot resolve ${{{expr}}}: expected ${{env.NAME}}, "
                                 "${var.NAME} or ${<kind>.<name>.<attribute>}", sink)
                    parts.append("")
                else:
                    parts.append(Ref(".".join(bits[:-1]), bits[-1]))
        parts.append(text[last:])
        parts = [p for p in parts if not (isinstance(p, str) and p == "")]
        if len(parts) == 1 and not isinstance(parts[0], str):
            return parts[0]  # a whole-value reference or a non-string variable keeps its type
        if not any(isinstance(p, Ref) for p in parts):
            return "".join(str(p) for p in parts)
        merged: list[Any] = []
        for p in parts:
            if isinstance(p, str) and merged and isinstance(merged[-1], str):
                merged[-1] += p
            else:
                merged.append(p if isinstance(p, Ref) else str(p))
        return Template(tuple(merged))


_CONSTRUCTOR = yaml.constructor.SafeConstructor()
