"""Load manifests: files and folders, multi-document YAML, a position for every field,
${env.X} / ${var.X} substituted, ${<kind>.<name>.<attr>} kept as references, resources
with `for_each` / `count` expanded into instances (`valohai.datum.part[p0]`), so the
engine sees only ordinary resources.

Merging across files and documents:
  * resources are concatenated; an address declared twice is an error naming both places;
  * a variable defined twice is an error naming both places;
  * providers merge per provider and per field: a field set in two places must be equal;
  * backend must be identical wherever it appears;
  * outputs are merged by name (a name declared twice is an error);
  * top-level `x-*` keys and `templates:` are ignored: a place for YAML anchors.
A folder argument loads every *.yaml / *.yml directly in it (sorted; not its sub-folders,
not hidden files), like Terraform does with *.tf.

Everything wrong is collected and raised at once as one ManifestError.
"""
from __future__ import annotations

import hashlib
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from reconciler.config import expressions, sensitivity
from reconciler.config import imports as importsmod
from reconciler.config import lookups as lookupsmod
from reconciler.config import moved as movedmod
from reconciler.config import policies as policy_config
from reconciler.config import variables as varmod
from reconciler.config.cache import ManifestCache, said_digest
from reconciler.config.hints import did_you_mean
from reconciler.config.instances import instances as expand_instances
from reconciler.config.model import (
    Import,
    Lifecycle,
    Lookup,
    Manifest,
    Move,
    Output,
    Position,
    Ref,
    Resource,
    Template,
)
from reconciler.config.validation import (
    LazyValidator,
    load_schema,
    schema_problems,
    validator_class,
    validator_for,
)
from reconciler.config.walk import copy_plain
from reconciler.config.yamlread import Document, PositionView, locate, read_documents
from reconciler.errors import ManifestError, Problem

MAX_FILE_BYTES = 10 * 1024 * 1024
SUFFIXES = (".yaml", ".yml")
VAR_FILE_SUFFIXES = (".vars.yaml", ".vars.yml")  # variable files by convention (--var-file), never manifests
OUTPUT_LONG_KEYS = frozenset({"value", "description", "sensitive"})


def load_manifest(paths: Sequence[str | Path], env: Mapping[str, str] | None = None,
                  inputs: varmod.Inputs | None = None, require_values: bool = True,
                  cache: ManifestCache | None = None) -> Manifest:
    """The manifest in these files and folders. Raises ManifestError with every Problem.
    `inputs`: variable values from the command line (and a saved plan); with
    require_values=False a variable with no value is an error only where it is used.
    `cache`: unchanged files are not parsed again (config/cache.py)."""
    env = os.environ if env is None else env
    paths = list(paths) or ["."]
    problems: list[Problem] = []
    first = Path(paths[0])
    root = first if first.is_dir() else first.parent
    var_files = {Path(f).resolve() for f in (inputs.var_files if inputs is not None else ())}
    files = [f for f in _files(paths, problems) if f.resolve() not in var_files]  # --var-file: never a manifest
    texts = [(f, _read(f, problems)) for f in files]
    load = None
    if cache is not None and not problems:
        load = cache.start([(str(f), t) for f, t in texts if t is not None], env, inputs, require_values)
        known = load.remembered()
        if known is not None:
            return known
        env = load.env  # what the load reads of the environment is part of the key
        cache.read_ahead([(str(f), t) for f, t in texts if t is not None])
    builder = _Builder(env, problems, inputs, require_values)
    digest = hashlib.sha256()
    file_digests: dict[str, str] = {}
    for f, text in texts:
        if text is None:
            continue
        before = len(problems)
        docs = load.documents(text, str(f), problems) if load else read_documents(text, str(f), problems)
        said = (load.said(str(f)) if load else None) or said_digest([d.value for d in docs])
        file_digests[_relative(f, root)] = said
        digest.update(_relative(f, root).encode() + b"\0" + said.encode() + b"\0")
        if len(problems) == before and not any(d.value is not None and d.value != {} for d in docs):
            problems.append(Problem(str(f), 1, 1, "", "the file is empty: expected a mapping with "
                                    "resources: (and optionally providers:, variables:, backend:)"))
        for doc in docs:
            builder.document(str(f), doc)
    if not files and not problems:
        problems.append(Problem(str(first), 0, 0, "", "no *.yaml or *.yml files here"))
    manifest = builder.finish(files, digest.hexdigest(), str(root))
    manifest.file_digests = file_digests
    if problems:
        raise ManifestError(sorted(dict.fromkeys(problems), key=_order(files)))
    if load is not None:
        load.finish(manifest)
    return manifest


def _order(files: list[Path]) -> Callable[[Problem], tuple[int, int, int]]:
    rank = {str(f): i for i, f in enumerate(files)}
    return lambda p: (rank.get(p.file, -1), p.line, p.column)


def _relative(f: Path, root: Path) -> str:
    try:
        return f.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return f.name


# -- files ------------------------------------------------------------------------------
def _files(paths: Sequence[str | Path], problems: list[Problem]) -> list[Path]:
    out: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix in SUFFIXES and not f.name.startswith(".")
                           and not f.name.endswith(VAR_FILE_SUFFIXES) and f.is_file())
        elif p.is_file() or p.exists():  # a device or pipe is refused, unread, when read
            found = [p]
        else:
            problems.append(Problem(str(p), 0, 0, "", "no such file or directory"))
            continue
        for f in found:
            key = f.resolve()
            if key not in seen:  # a folder and a file in it, or a path given twice
                seen.add(key)
                out.append(f)
    return out


def _read(f: Path, problems: list[Problem]) -> str | None:
    """The file's text, or None with a Problem: too large, unreadable, not UTF-8."""
    name = str(f)
    from reconciler.config.boundedread import Refused, read_bytes
    try:
        data = read_bytes(f, MAX_FILE_BYTES)
    except Refused as e:
        problems.append(Problem(name, 1, 1, "", f"the file {e}"))
        return None
    except OSError as e:
        problems.append(Problem(name, 0, 0, "", f"cannot read the file: {e.strerror or e}"))
        return None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        problems.append(Problem(name, 1, 1, "", "the file is UTF-16; save it as UTF-8"))
        return None
    try:
        return data.decode("utf-8-sig")  # a BOM is harmless
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        line = data.count(b"\n", 0, e.start) + 1
        column = len(data[line_start:e.start].decode("utf-8", "replace")) + 1
        problems.append(Problem(name, line, column, "",
                                f"not valid UTF-8 (byte 0x{data[e.start]:02x}); save the file as UTF-8"))
        return None


# -- documents -> Manifest -----------------------------------------------------------------
class _Variable:
    def __init__(self, decl: varmod.Declaration, positions: Mapping[str, Position]):
        self.decl, self.position, self.positions = decl, decl.position, positions
        self.value: Any = None
        self.problems: list[str] | None = None  # None: not evaluated yet
        self.reported = False  # no value, or the wrong type: said once at the declaration


class _Builder:
    def __init__(self, env: Mapping[str, str], problems: list[Problem],
                 inputs: varmod.Inputs | None = None, require_values: bool = True):
        self.env = env
        self.problems = problems
        self.inputs = inputs
        self.require_values = require_values
        self.given: dict[str, varmod.Given] = {}
        self.variables: dict[str, _Variable] = {}
        self.raw_outputs: dict[str, tuple[Any, Position, Mapping[str, Position]]] = {}
        self.credential_names: set[str] = set()
        self.raw_providers: list[tuple[str, Any, Mapping[str, Position]]] = []  # (name, block, positions)
        self.backend: tuple[dict, Position, Mapping[str, Position]] | None = None
        self.raw_resources: list[tuple[str, int, dict, Position, Mapping[str, Position]]] = []
        self._folders: dict[str, str] = {}  # manifest file -> its folder
        self.policies: list[policy_config.Policy] = []
        self.files_read: list[str] = []  # by file(path) in expressions: a saved plan pins them
        self.moves: list[Move] = []
        self.imports: list[Import] = []
        self.lookups: dict[str, Lookup] = {}

    def _scope(self, variable: Callable[[str], Any], **kw: Any) -> expressions.Scope:
        """A Scope over this run's environment; file(path) calls are recorded in files_read."""
        return expressions.Scope(self.env, variable, files_read=self.files_read, **kw)

    def problem(self, pos: Position, path: str, message: str, sink: list | None = None) -> None:
        (self.problems if sink is None else sink).append(Problem(pos.file, pos.line, pos.column, path, str(message)))

    def locator(self, doc: Document) -> Callable[[str], Position]:
        def locate(key: str) -> Position:
            while key:
                if key in doc.positions:
                    return doc.positions[key]
                cut = max(key.rfind("."), key.rfind("["))
                key = key[:cut] if cut > 0 else ""
            return doc.position
        return locate

    # -- one document ---------------------------------------------------------------------
    def document(self, file: str, doc: Document) -> None:
        if doc.value is None:
            return  # an empty document between `---` lines
        if not isinstance(doc.value, dict):
            self.problem(doc.position, "", f"a manifest must be a mapping with resources: (and optionally "
                         f"providers:, variables:, backend:), not a {_kind_of(doc.value)}")
            return
        locate = self.locator(doc)
        value = doc.value
        bad = _envelope_problems(value, locate)
        self.problems.extend(bad)
        broken = {p.path for p in bad}
        positions_by_item = self._split_resources(doc)
        for name, block in (value.get("variables") or {}).items() if isinstance(value.get("variables"), dict) else ():
            key = f"variables.{name}"
            pos = locate(key)
            if name in self.variables:
                self.problem(pos, key, f"variable '{name}' is defined twice (also at {self.variables[name].position})")
                continue
            positions = _sub(doc.positions, key)
            self.variables[name] = _Variable(varmod.declare(name, block, pos, positions, self.problems), positions)
        if isinstance(value.get("outputs"), dict):
            for name, block in value["outputs"].items():
                key = f"outputs.{name}"
                if name in self.raw_outputs:
                    self.problem(locate(key), key, f"output '{name}' is declared twice "
                                 f"(also at {self.raw_outputs[name][1]})")
                    continue
                self.raw_outputs[name] = (block, locate(key), _sub(doc.positions, key))
        if isinstance(value.get("providers"), dict):
            for pname, block in value["providers"].items():
                if isinstance(block, dict):
                    self.raw_providers.append((pname, block, _sub(doc.positions, f"providers.{pname}")))
        if "policies" in value:  # guardrails: config/policies.py
            self.policies.extend(policy_config.parse(value["policies"], "policies", locate, self.problems, broken))
        if isinstance(value.get("backend"), dict):
            self._backend(value["backend"], locate("backend"), _sub(doc.positions, "backend"))
        self.moves += movedmod.entries(value.get("moved"), locate, self.problems)
        self.imports += importsmod.entries(value.get("imports"), locate, self.problems)
        lookupsmod.entries(value.get("lookups"), locate, doc.positions, self.lookups, self.problems)
        resources = value.get("resources")
        if isinstance(resources, list):
            for i, item in enumerate(resources):
                where = f"resources[{i}]"
                # a resource without a usable kind and name has no address: reported, not built
                if isinstance(item, dict) and f"{where}.kind" not in broken and f"{where}.name" not in broken:
                    item_pos = locate(where)
                    self.raw_resources.append((where, i, item, item_pos, positions_by_item.get(i, {})))

    def _split_resources(self, doc: Document) -> dict[int, Mapping[str, Position]]:
        """Each resource's positions, "resources[3].spec.x" seen as {3: {"spec.x": ...}}:
        views, not copies (positions deeper than a resource are read only if needed)."""
        resources = doc.value.get("resources") if isinstance(doc.value, dict) else None
        if not isinstance(resources, list):
            return {}
        return {i: PositionView(doc.positions, f"resources[{i}]") for i in range(len(resources))}

    def _backend(self, block: dict, pos: Position, positions: Mapping[str, Position]) -> None:
        if self.backend is not None and self.backend[0] != block:
            self.problem(pos, "backend", f"backend is declared differently at {self.backend[1]}; "
                         "declare it once")
            return
        self.backend = (block, pos, positions)

    # -- variables ------------------------------------------------------------------------
    def variable(self, name: str) -> Any:
        var = self.variables.get(name)
        if var is None:
            raise expressions.ExpressionError(f"variable '{name}' is not defined under variables:"
                                              + did_you_mean(name, self.variables))
        if var.problems is None:
            problems: list[str] = []
            var.problems = problems
            decl, given = var.decl, self.given.get(name)
            if given is not None:
                var.value = copy_plain(given.value)
            elif decl.has_default:
                scope = self._scope(self._no_nested_variables, refs=False, where="in variables",
                                          base_dir=str(Path(var.position.file).parent))
                var.value = expressions.walk(copy_plain(decl.default), scope,
                                             lambda path, message: problems.append(message))
            else:
                var.reported = True
            wrong = None if var.problems else varmod.type_problem(var.value, decl.type, decl.sensitive)
            if wrong and given is None and isinstance(decl.default, str) and "${" in decl.default:
                var.problems.append(wrong)  # an ${env.X} default: said where it is used
            elif wrong:
                var.reported = True
        if var.reported:
            raise expressions.AlreadyReported(f"variable '{name}' has no usable value")
        if var.problems:
            error = expressions.MissingValue if isinstance(var.problems[0], expressions.Missing) \
                else expressions.ExpressionError
            raise error(f"variable '{name}' (at {var.position}): {var.problems[0]}")
        return copy_plain(var.value)

    @staticmethod
    def _no_nested_variables(name: str) -> Any:
        raise expressions.ExpressionError(f"${{var.{name}}}: a variable cannot use another variable")

    # -- the whole manifest ---------------------------------------------------------------------
    def finish(self, files: list[Path], digest: str, root: str) -> Manifest:
        self._check_variables()
        providers, provider_problems = self._providers()
        backend = None
        if self.backend is not None:
            block, _pos, positions = self.backend
            scope = self._scope(self._credential, refs=False, where="in the backend block")
            backend = expressions.walk(copy_plain(block), scope, lambda path, message: self.problem(
                locate(positions, path), f"backend.{path}", message))
        resources = self._resources()
        outputs = self._outputs()
        declared = {r.address for r in resources}
        blocks = {a.split("[", 1)[0] for a in declared if "[" in a}
        moves = movedmod.resolve(self.moves, declared | blocks, self.problems)
        imports = importsmod.check(self.imports, declared, blocks, self.problems)
        lookups = self._lookups()
        variables = {}
        for name in self.variables:
            try:
                variables[name] = self.variable(name)
            except expressions.ExpressionError:
                pass  # reported where it is used; an unused broken variable harms nothing
        return Manifest(resources=resources, providers=providers, provider_problems=provider_problems,
                        variables=variables, backend=backend, files=[str(f) for f in files],
                        digest=digest, root=root, outputs=outputs,
                        sensitive_variables=self.sensitive_names | self.credential_names,
                        policies=self.policies, moved=moves, imports=imports, lookups=lookups,
                        files_read=sorted(set(self.files_read)))

    def _lookups(self) -> dict[str, Lookup]:
        """`where` values may use ${var.X} and ${env.X}, never a resource reference."""
        out = {}
        for name, lookup in self.lookups.items():
            scope = self._scope(self.variable, refs=False, where="in a lookup (it is read "
                                      "before any resource exists)")

            def report(path: str, message: str, lk: Lookup = lookup) -> None:
                self.problem(lk.positions.get(f"where.{path.split('.')[0]}", lk.position),
                             f"lookups.{lk.name}.where.{path}", message)

            where = expressions.walk(copy_plain(dict(lookup.where)), scope, report)
            for key, value in where.items():  # compared with one field of a row: a list or mapping equals none
                if isinstance(value, (dict, list)):
                    report(str(key), "expected a string, number or boolean to compare with the catalogue's field, "
                                     f"got a {'mapping' if isinstance(value, dict) else 'list'}")
            out[name] = Lookup(name, lookup.kind, where, lookup.position, lookup.positions)
        return out

    def _credential(self, name: str) -> Any:
        """A variable read by a providers or backend block: it may be a password, so a saved
        plan records it only as a digest."""
        self.credential_names.add(name)
        return self.variable(name)

    @property
    def sensitive_names(self) -> frozenset:
        return frozenset(n for n, v in self.variables.items() if v.decl.sensitive)

    def _check_variables(self) -> None:
        """Values from outside, then: every variable has a value, of its declared type."""
        declared = {n: v.decl for n, v in self.variables.items()}
        self.given = varmod.given_values(self.inputs, self.env, declared, self.problems)
        for name, var in self.variables.items():
            decl, given = var.decl, self.given.get(name)
            if given is None and not decl.has_default:
                if self.require_values:
                    self.problem(decl.position, f"variables.{name}", f"variable '{name}' has no value: "
                                 f"set it with --var {name}=..., --var-file FILE or {varmod.ENV_PREFIX}{name}"
                                 ", or give it a default")
                continue
            if given is None and isinstance(decl.default, str) and "${" in decl.default:
                continue  # an ${env.X} default: checked when used
            wrong = varmod.type_problem(given.value if given else decl.default, decl.type, decl.sensitive)
            if not wrong:
                continue
            if given is None:
                self.problem(decl.default_position or decl.position, f"variables.{name}", wrong)
            elif given.position is None:
                self.problems.append(varmod.InputProblem(given.origin, 0, 0, f"variables.{name}", wrong))
            else:
                self.problem(given.position, f"variables.{name}", wrong)
        if self.inputs and self.inputs.recorded:
            values = {}
            for name in self.variables:
                try:
                    values[name] = self.variable(name)
                except expressions.ExpressionError:
                    pass
            for name in varmod.recorded_mismatches(self.inputs.recorded, values, self.inputs.pin):
                self.problem(self.variables[name].position if name in self.variables else Position("?", 1, 1),
                             f"variables.{name}", f"sensitive variable '{name}' is not the value the saved plan "
                             "was made with (or has none now); make a new plan")

    def _outputs(self) -> dict[str, Output]:
        out: dict[str, Output] = {}
        for name, (block, pos, positions) in self.raw_outputs.items():
            sensitive, description, value, prefix = False, "", block, ""
            if isinstance(block, dict) and "value" in block and OUTPUT_LONG_KEYS.issuperset(block):
                value, prefix = block["value"], "value"
                flag = block.get("sensitive", False)
                if not isinstance(flag, bool):
                    self.problem(positions.get("sensitive", pos), f"outputs.{name}.sensitive", "expected true or false")
                sensitive = flag is True
                given_description = block.get("description")
                description = given_description if isinstance(given_description, str) else ""
            scope = self._scope(self.variable, refs=True, sensitive=self.sensitive_names,
                                      sensitive_paths=set(), base_dir=str(Path(pos.file).parent))

            def report(path: str, message: str, name: str = name, positions: Mapping[str, Position] = positions,
                       prefix: str = prefix) -> None:
                key = ".".join(p for p in (prefix, path) if p)
                self.problem(locate(positions, key) if positions else pos,
                             ".".join(p for p in ("outputs", name, key) if p), message)

            value = expressions.walk(copy_plain(value), scope, report)
            out[name] = Output(name, value, pos, sensitive or bool(scope.sensitive_paths), description)
        return out

    def _providers(self) -> tuple[dict[str, dict], dict[str, list[Problem]]]:
        providers: dict[str, dict] = {}
        origin: dict[tuple[str, str], tuple[Mapping[str, Position], str]] = {}
        sinks: dict[str, list[Problem]] = {}
        for pname, block, positions in self.raw_providers:
            sink = sinks.setdefault(pname, [])
            scope = self._scope(self._credential, refs=False, where="in the providers block")

            def report(path: str, message: str, positions: Mapping[str, Position] = positions, pname: str = pname,
                       sink: list[Problem] = sink) -> None:
                # an unset env var waits until the provider is used; a malformed block does not
                pos = locate(positions, path)
                self.problem(pos, f"providers.{pname}.{path}", message,
                             sink if isinstance(message, expressions.Missing) else None)

            merged = providers.setdefault(pname, {})
            for key, value in expressions.walk(copy_plain(block), scope, report).items():
                if key in merged and merged[key] != value:
                    self.problem(locate(positions, key), f"providers.{pname}.{key}",
                                 f"set differently at {locate(*origin[(pname, key)])}; set it once")
                    continue
                merged[key] = value
                origin.setdefault((pname, key), (positions, key))  # located only if it conflicts
        self._credentials_in_addresses(providers, origin)
        return providers, {k: v for k, v in sinks.items() if v}

    def _credentials_in_addresses(self, providers: dict[str, dict], origin: dict) -> None:
        """An endpoint, host or domain (set here or by its env fallback) holding a credential
        is refused before it is ever looked up; the message names where the secret came from."""
        used = {item["kind"].split(".", 1)[0] for _w, _i, item, _p, _ps in self.raw_resources
                if isinstance(item, dict) and isinstance(item.get("kind"), str)}
        found = sensitivity.credentials(providers, self.env, used)
        why = ("an address must not carry a secret (it would be sent out as a DNS lookup and shown "
               "in errors)")
        for pname in sorted(set(providers) | used):
            config = providers.get(pname) or {}
            for key in sensitivity.ADDRESS_FIELDS:
                value, env_name = config.get(key), f"{pname.upper()}_{key.upper()}"
                from_env = value is None and bool(self.env.get(env_name))
                text = self.env.get(env_name) if from_env else value
                if not isinstance(text, str):
                    continue
                label = sensitivity.credential_in_address(text, found)
                if label is None:
                    continue
                message = f"holds a credential ({label}); {why}"
                if from_env:
                    self.problems.append(varmod.InputProblem(env_name, 0, 0, f"providers.{pname}.{key}", message))
                else:
                    self.problem(locate(*origin[(pname, key)]), f"providers.{pname}.{key}", message)

    def _resources(self) -> list[Resource]:
        out: list[Resource] = []
        seen: dict[str, tuple[Mapping[str, Position], Position]] = {}
        expanded: dict[str, list[str]] = {}  # block address -> its instances' addresses
        for where, _i, item, item_pos, positions in self.raw_resources:
            kind, name = item.get("kind"), item.get("name")
            if not isinstance(kind, str) or not isinstance(name, str):
                continue  # the schema check reported it
            address = f"{kind}.{name}"
            if address in seen:  # positions looked up only now: they may need a second read
                first_positions, first_pos = seen[address]
                self.problem(positions.get("name", item_pos), address,
                             f"duplicate address {address}: also declared at "
                             f"{first_positions.get('name', first_pos)}")
                continue
            seen[address] = (positions, item_pos)
            folder = self._folder(item_pos.file)

            def scope(field: str, folder: str = folder) -> expressions.Scope:
                return self._instance_scope(field, folder)

            instances = expand_instances(item, address, item_pos, positions, scope, self.problem)
            if instances is None:
                out.append(self._resource(item, kind, name, item_pos, positions, item.get("spec"), None, None))
                continue
            said: set = set()  # one report per problem in the block, not one per instance
            for key, instance in instances:
                spec = item.get("spec")
                out.append(self._resource(item, kind, f"{name}[{key}]", item_pos, positions,
                                          copy_plain(spec), instance, said))
            expanded[address] = [f"{address}[{key}]" for key, _ in instances]
        if expanded:  # depends_on a whole for_each / count block: on each of its instances
            for r in out:
                if any(d in expanded for d in r.depends_on):
                    r.depends_on = [x for d in r.depends_on for x in expanded.get(d, [d])]
        return out

    def _folder(self, file: str) -> str:
        """The folder of a manifest file, worked out once per file (pathlib per resource:
        0.1 ms each, seconds at 100,000)."""
        folder = self._folders.get(file)
        if folder is None:
            folder = self._folders[file] = str(Path(file).parent)
        return folder

    def _instance_scope(self, field: str, folder: str | None = None) -> expressions.Scope:
        return self._scope(self.variable, refs=False, where=f"in {field} (it must be known before "
                                 "any API call)", sensitive=self.sensitive_names, sensitive_paths=set(),
                                 base_dir=folder)

    def _resource(self, item: dict, kind: str, name: str, item_pos: Position, positions: Mapping[str, Position],
                  spec: Any, instance: dict | None, said: set | None) -> Resource:
        base_dir = self._folder(item_pos.file)
        resource = Resource(kind=kind, name=name, spec={}, position=item_pos, positions=positions,
                            base_dir=base_dir)

        def report(path: str, message: str, r: Resource = resource) -> None:
            pos = r.where(f"spec.{path}" if path else "spec")
            if said is not None:
                if (pos, path, str(message)) in said:
                    return
                said.add((pos, path, str(message)))
            self.problem(pos, f"{r.address}.spec.{path}" if path else f"{r.address}.spec", message)

        if isinstance(spec, dict):
            found: set[str] = set()
            scope = self._scope(self.variable, refs=True, instance=instance,
                                      sensitive=self.sensitive_names, sensitive_paths=found,
                                      base_dir=base_dir)
            resource.spec = expressions.walk(spec, scope, report)
            if found:
                resource.sensitive_paths = found
        lifecycle = item.get("lifecycle")
        if isinstance(lifecycle, dict):
            prevent = lifecycle.get("prevent_destroy", False)
            ignore = lifecycle.get("ignore_changes", [])
            resource.lifecycle = Lifecycle(
                prevent_destroy=prevent if isinstance(prevent, bool) else False,
                ignore_changes=tuple(x for x in ignore if isinstance(x, str)) if isinstance(ignore, list) else ())
        policy = item.get("deletion_policy")
        resource.deletion_policy = policy if isinstance(policy, str) else None
        depends = item.get("depends_on")
        if isinstance(depends, list):
            resource.depends_on = [d for d in depends if isinstance(d, str)]
        resource.expires = item.get("expires") if isinstance(item.get("expires"), dict) else None
        resource.schedule = item.get("schedule") if isinstance(item.get("schedule"), list) else None
        return resource

# -- the envelope schema, fast --------------------------------------------------------------
_RESOURCE_KEYS = frozenset({"kind", "name", "spec", "lifecycle", "deletion_policy", "depends_on"})  # + for_each, count
_KIND = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")  # fullmatch
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


def _envelope_problems(doc: dict, locate: Callable[[str], Position]) -> list[Problem]:
    """manifest.schema.json on one document. jsonschema takes ~0.2 ms per resource, so
    resources that are plainly valid (the common case) skip it; the rest get its
    precise messages."""
    resources = doc.get("resources")
    if not isinstance(resources, list):
        return schema_problems(validator_for("manifest.schema.json"), doc, "", locate, lambda k: k)
    problems = schema_problems(validator_for("manifest.schema.json"), {**doc, "resources": []}, "",
                               locate, lambda k: k)
    item_validator = _resource_validator()
    for i, item in enumerate(resources):
        if not _plainly_valid(item):
            problems.extend(schema_problems(item_validator, item, f"resources[{i}]", locate, lambda k: k))
    return problems


@lru_cache(maxsize=1)
def _resource_validator() -> LazyValidator:
    schema = load_schema("manifest.schema.json")
    return validator_class({**schema["$defs"]["resource"], "$defs": schema["$defs"]})


def _plainly_valid(item: Any) -> bool:
    """True only when manifest.schema.json's resource definition surely accepts `item`."""
    if not isinstance(item, dict) or not _RESOURCE_KEYS.issuperset(item):
        return False  # for_each / count blocks are rare (one per 2,000 instances): the schema checks them
    kind, name = item.get("kind"), item.get("name")
    if not (isinstance(kind, str) and _KIND.fullmatch(kind) and isinstance(name, str) and len(name) <= 128
            and _NAME.fullmatch(name) and "\n" not in name and "\n" not in kind):
        return False
    if "spec" in item and not isinstance(item["spec"], dict):
        return False
    if "deletion_policy" in item and not isinstance(item["deletion_policy"], str):
        return False
    if "depends_on" in item:
        return False  # rare: let the schema check items and uniqueness
    lifecycle = item.get("lifecycle")
    if lifecycle is not None:
        if not isinstance(lifecycle, dict) or not {"prevent_destroy", "ignore_changes"}.issuperset(lifecycle):
            return False
        if not isinstance(lifecycle.get("prevent_destroy", False), bool):
            return False
        if "ignore_changes" in lifecycle:
            return False
    return True


# -- small helpers -----------------------------------------------------------------------
def _sub(positions: Mapping[str, Position], prefix: str) -> Mapping[str, Position]:
    """Positions under `prefix`, keyed relative to it ("" for the prefix itself)."""
    return PositionView(positions, prefix)


def _kind_of(value: Any) -> str:
    return {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "value")


__all__ = ["load_manifest", "MAX_FILE_BYTES", "Ref", "Template"]
