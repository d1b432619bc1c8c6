"""The compiled fast check (schemafast) agrees with jsonschema: every example spec and many
mutations of it (each field set to each JSON type, removed, an unknown field added, a
reference put in its place) are judged the same by both, for every kind's schema."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from reconciler.config import schemafast
from reconciler.config.manifest import load_manifest
from reconciler.config.model import Ref, Template
from reconciler.config.validation import load_schema, validator_class

ROOT = Path(__file__).resolve().parent.parent
REPLACEMENTS = [None, True, False, 0, 1, -1, 1.0, 2.5, "", "x", "running", "a" * 300, [], ["a", "a"], ["a", "b"],
                [1, True], {}, {"x": 1}, Ref("valdi.ssh_key.k", "id"), Template(("s3://", Ref("valdi.volume.v", "b")))]


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _paths(v, prefix + (i,))


def _set(value, path, new):
    out = copy.deepcopy(value)
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = new
    return out


def _drop(value, path):
    out = copy.deepcopy(value)
    node = out
    for p in path[:-1]:
        node = node[p]
    if isinstance(node, dict):
        del node[path[-1]]
    else:
        node.pop(path[-1])
    return out


def _variants(spec):
    yield spec
    for path in _paths(spec):
        if not path:
            continue
        for new in REPLACEMENTS:
            yield _set(spec, path, new)
        yield _drop(spec, path)
    for path in _paths(spec):
        node = spec
        for p in path:
            node = node[p]
        if isinstance(node, dict):
            yield _set(spec, path + ("zz_unknown",), 1) if path else {**spec, "zz_unknown": 1}


def _example_specs():
    manifest = load_manifest([str(ROOT / "examples")], {"VALDI_EMAIL": "e", "VALDI_PASSWORD": "p",
                                                         "VALOHAI_TOKEN": "t", "VALOHAI_PROJECT": "p",
                                                         "CODEOCEAN_DOMAIN": "d", "CODEOCEAN_TOKEN": "t"})
    return [(r.kind, r.spec) for r in manifest.resources]


@pytest.mark.parametrize("kind,spec", _example_specs(), ids=lambda x: x if isinstance(x, str) else "")
def test_fast_check_agrees_with_jsonschema(kind, spec):
    schema = load_schema(f"{kind}.schema.json")
    check = schemafast.compile_schema(schema)
    assert check is not None, "every kind's schema compiles"
    validator = validator_class(schema)
    judged = 0
    for instance in _variants(spec):
        try:
            fast = check(instance)
        except schemafast.Unsure:
            continue
        assert fast == validator.is_valid(instance), instance
        judged += 1
    assert judged > 20


@pytest.mark.parametrize("schema,instance,valid", [
    ({"type": "integer"}, 3.0, True),  # 2020-12: a float with no fraction is an integer
    ({"type": "integer"}, True, False),  # a boolean is not a number
    ({"enum": [1, 2]}, True, False),
    ({"enum": [1, 2]}, 1.0, True),
    ({"const": False}, 0, False),
    ({"uniqueItems": True}, [1, 1.0], False),
    ({"uniqueItems": True}, [1, True], True),
    ({"additionalProperties": False, "properties": {"a": {}}}, {"b": Ref("x.y", "id")}, False),
    ({"properties": {"a": {"type": "integer"}}}, {"a": Ref("x.y", "id")}, True),
    ({"oneOf": [{"type": "integer"}, {"minimum": 0}]}, 5, False),
    ({"if": {"required": ["a"]}, "then": {"required": ["b"]}}, {"a": 1}, False),
    ({"$defs": {"n": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/n"}}}, {"x": 1}, False),
], ids=lambda x: None)
def test_keyword_edges_match_jsonschema(schema, instance, valid):
    assert validator_class(schema).is_valid(instance) is valid
    assert schemafast.is_valid(schemafast.compile_schema(schema), instance) is valid


def test_an_unknown_keyword_means_no_fast_path():
    assert schemafast.compile_schema({"type": "object", "dependentRequired": {"a": ["b"]}}) is None


def _outcome(check, instance):
    try:
        return check(instance)
    except schemafast.Unsure:
        return "unsure"


EDGE_SCHEMAS = [
    {"type": ["integer", "null"], "minimum": 0, "exclusiveMaximum": 10, "multipleOf": 2},
    {"type": "number", "maximum": 1.5, "exclusiveMinimum": -1},
    {"enum": ["a", 1, None, True]}, {"const": [1]}, {"const": 1.0},
    {"allOf": []}, {"anyOf": []}, {"anyOf": [{"type": "string"}, {"type": "array", "maxItems": 1}]},
    {"oneOf": [{"type": "integer"}, {"minimum": 0}]}, {"not": {"type": "object"}},
    {"if": {"properties": {"a": {"const": 1}}}, "then": {"required": ["b"]}, "else": {"maxProperties": 1}},
    {"type": "object", "patternProperties": {"^x": {"type": "integer"}}, "additionalProperties": False,
     "minProperties": 1, "propertyNames": {"maxLength": 3}},
    {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "boolean"}},
    {"type": "array", "items": {"$ref": "#/$defs/n"}, "minItems": 1, "uniqueItems": True,
     "$defs": {"n": {"anyOf": [{"type": "string", "pattern": "^a$"},
                               {"type": "array", "items": {"$ref": "#/$defs/n"}}]}}},
    {"properties": {"x": {"$ref": "other.schema.json"}}, "type": "object"},
    {"type": "integer", "enum": [1, 2]}, True, False, {},
]
EDGE_INSTANCES = [*REPLACEMENTS, 3.0, float("nan"), 12, 4, -2, "a\n", "abc", ["a", ["a"]], [["b"]], [1, 1.0],
                  {"a": 1}, {"a": 1, "b": 2}, {"xa": 1}, {"xa": "1"}, {"xyzw": 1}, {"a": "s", "b": True},
                  {"a": "s", "b": 1}, {"x": 1}, {"x": Ref("a.b", "c")}, {"a": Ref("a.b", "c")}]


KIND_SCHEMAS = [load_schema(f.name) for f in sorted((ROOT / "schemas").glob("*.json"))]


@pytest.mark.parametrize("schema", EDGE_SCHEMAS + KIND_SCHEMAS, ids=lambda x: None)
def test_generated_check_agrees_with_the_closures(schema):
    """The written-out functions answer every value exactly as the keyword closures do
    (Unsure included), for the schemas the kinds use and the keywords' edge cases."""
    generated, closures = schemafast.compile_schema(schema), schemafast.compile_closures(schema)
    if closures is None:
        assert generated is None
        return
    instances = list(EDGE_INSTANCES)
    for kind, spec in _example_specs():
        if isinstance(schema, dict) and schema.get("title") == kind:
            instances.extend(_variants(spec))
    for instance in instances:
        assert _outcome(generated, instance) == _outcome(closures, instance), instance
