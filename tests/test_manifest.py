"""Loading manifests: files and folders, documents, variables, env, references,
templates, escaping, exact positions, merging, and a 10,000-resource manifest."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler.config.manifest import load_manifest
from reconciler.config.model import Position, Ref, Template
from reconciler.config.yamlread import read_documents
from reconciler.errors import ManifestError


def write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body).lstrip("\n"))
    return path


def problems(paths, env=None) -> list[str]:
    with pytest.raises(ManifestError) as info:
        load_manifest([str(p) for p in paths], env or {})
    return [str(p) for p in info.value.problems]


def test_a_folder_loads_every_yaml_file_sorted_and_skips_the_rest(tmp_path):
    write(tmp_path, "b.yml", "resources:\n  - {kind: test.item, name: b}\n")
    write(tmp_path, "a.yaml", "resources:\n  - {kind: test.item, name: a}\n")
    write(tmp_path, "notes.txt", "resources: [oops\n")
    write(tmp_path, ".hidden.yaml", "resources: [oops\n")
    write(tmp_path, "sub/c.yaml", "resources: [oops\n")  # sub-folders are not read
    m = load_manifest([tmp_path], {})
    assert [r.address for r in m.resources] == ["test.item.a", "test.item.b"]
    assert [Path(f).name for f in m.files] == ["a.yaml", "b.yml"]
    assert m.root == str(tmp_path)


def test_files_and_folders_together_each_file_once(tmp_path):
    a = write(tmp_path, "a.yaml", "resources:\n  - {kind: test.item, name: a}\n")
    other = write(tmp_path, "more/b.yaml", "resources:\n  - {kind: test.item, name: b}\n")
    m = load_manifest([a, tmp_path, other], {})
    assert [r.address for r in m.resources] == ["test.item.a", "test.item.b"]
    assert m.root == str(tmp_path)  # the folder of the first path
    assert m.resources[1].base_dir == str(other.parent)


def test_multi_document_files(tmp_path):
    write(tmp_path, "m.yaml", """
        resources:
          - {kind: test.item, name: a}
        ---
        # an empty document is fine
        ---
        resources:
          - kind: test.item
            name: b
        """)
    m = load_manifest([tmp_path], {})
    assert [r.address for r in m.resources] == ["test.item.a", "test.item.b"]
    assert m.resources[1].position == Position(str(tmp_path / "m.yaml"), 7, 5)


def test_positions_are_exact(tmp_path):
    f = write(tmp_path, "m.yaml", """
        resources:
          - kind: valdi.vm
            name: trainer
            spec:
              details: {vcpus: 4, flavor_id: x}
              files:
                - path: /a
                  source: a.txt
                - {path: /b, source: b.txt}
            lifecycle:
              prevent_destroy: true
        """)
    r = load_manifest([f], {}).resources[0]
    at = lambda line, col: Position(str(f), line, col)  # noqa: E731
    assert r.position == at(2, 5)
    assert r.positions["kind"] == at(2, 5)
    assert r.positions["name"] == at(3, 5)
    assert r.positions["spec.details"] == at(5, 7)
    assert r.positions["spec.details.vcpus"] == at(5, 17)
    assert r.positions["spec.details.flavor_id"] == at(5, 27)
    assert r.positions["spec.files[0]"] == at(7, 11)
    assert r.positions["spec.files[0].source"] == at(8, 11)
    assert r.positions["spec.files[1].path"] == at(9, 12)
    assert r.positions["lifecycle.prevent_destroy"] == at(11, 7)
    assert r.where("spec.details.vcpus.deeper") == at(5, 17)  # falls back to the parent
    assert r.lifecycle.prevent_destroy is True


def test_env_variables_and_types(tmp_path):
    f = write(tmp_path, "m.yaml", """
        variables:
          region: eu-west
          size: 4
          tags: [a, b]
          home: "${env.HOME_DIR}"
        resources:
          - kind: test.item
            name: a
            spec:
              region: "${var.region}"
              size: "${var.size}"
              label: "n-${var.size}-${var.region}"
              tags: "${var.tags}"
              where: "${env.HOME_DIR}/x"
              home: "${var.home}"
              flag: "${var.size}${var.size}"
        """)
    m = load_manifest([f], {"HOME_DIR": "/home/me"})
    spec = m.resources[0].spec
    assert spec == {"region": "eu-west", "size": 4, "label": "n-4-eu-west", "tags": ["a", "b"],
                    "where": "/home/me/x", "home": "/home/me", "flag": "44"}
    assert m.variables["size"] == 4


def test_references_and_templates(tmp_path):
    f = write(tmp_path, "m.yaml", """
        resources:
          - kind: valdi.ssh_key
            name: deploy
          - kind: valdi.vm
            name: trainer
            spec:
              ssh_key_id: "${valdi.ssh_key.deploy.id}"
              url: "s3://${valohai.datum.d.bucket}/${env.PREFIX}/x"
              list: ["${valdi.ssh_key.deploy.name}"]
        """)
    spec = load_manifest([f], {"PREFIX": "p"}).resources[1].spec
    assert spec["ssh_key_id"] == Ref("valdi.ssh_key.deploy", "id")
    assert spec["url"] == Template(("s3://", Ref("valohai.datum.d", "bucket"), "/p/x"))
    assert spec["list"] == [Ref("valdi.ssh_key.deploy", "name")]


@pytest.mark.parametrize("text, value", [
    ("$${env.X}", "${env.X}"),
    ("a $${not.a.ref} b", "a ${not.a.ref} b"),
    ("cost: $5", "cost: $5"),
    ("{braces}", "{braces}"),
    ("$${x} ${env.X}", "${x} v"),
], ids=["escaped-env", "escaped-ref", "lone-dollar", "braces", "escape-then-env"])
def test_escaping(tmp_path, text, value):
    f = write(tmp_path, "m.yaml", f"resources:\n  - kind: t.k\n    name: a\n    spec: {{v: '{text}'}}\n")
    assert load_manifest([f], {"X": "v"}).resources[0].spec["v"] == value


def test_env_values_are_not_parsed_again(tmp_path):
    f = write(tmp_path, "m.yaml", "resources:\n  - {kind: t.k, name: a, spec: {v: '${env.X}'}}\n")
    assert load_manifest([f], {"X": "${env.SECRET}"}).resources[0].spec["v"] == "${env.SECRET}"


def test_yaml_scalars_stay_json_shaped(tmp_path):
    f = write(tmp_path, "m.yaml", """
        resources:
          - kind: t.k
            name: a
            spec:
              date: 2024-01-02
              on: yes
              n: 0x10
              f: 1.5
              nothing: ~
              quoted: "true"
        """)
    spec = load_manifest([f], {}).resources[0].spec
    assert spec == {"date": "2024-01-02", "on": True, "n": 16, "f": 1.5, "nothing": None, "quoted": "true"}


def test_anchors_and_merge_keys_copy_values(tmp_path):
    # anchors must sit under a known top-level key: variables is the natural place
    f = write(tmp_path, "m.yaml", """
        variables:
          common: &common {size: 2, tags: [a]}
        resources:
          - {kind: t.k, name: a, spec: {<<: *common, size: 3}}
          - {kind: t.k, name: b, spec: *common}
        """)
    a, b = load_manifest([f], {}).resources
    assert a.spec == {"size": 3, "tags": ["a"]} and b.spec == {"size": 2, "tags": ["a"]}
    a.spec["tags"].append("z")
    assert b.spec["tags"] == ["a"]  # not shared


def test_x_keys_and_templates_hold_anchors_and_are_otherwise_ignored(tmp_path):
    f = write(tmp_path, "m.yaml", """
        x-defaults: &defaults {size: 2, tags: [a]}
        templates:
          big: &big {size: 64}
        resources:
          - {kind: t.k, name: a, spec: {<<: *defaults, size: 3}}
          - {kind: t.k, name: b, spec: {<<: [*big, *defaults]}}
        """)
    a, b = load_manifest([f], {}).resources
    assert a.spec == {"size": 3, "tags": ["a"]} and b.spec == {"size": 64, "tags": ["a"]}


def test_a_mapping_is_the_long_form_only_when_its_keys_are_the_long_forms(tmp_path):
    f = write(tmp_path, "m.yaml", """
        variables:
          plain: {default: 1, other: 2}          # not the long form: a mapping default
          long: {default: 1, description: d}
          wrapped: {default: {type: x}}          # a mapping with a key named type, via default
        resources: []
        """)
    assert load_manifest([f], {}).variables == {"plain": {"default": 1, "other": 2}, "long": 1,
                                                "wrapped": {"type": "x"}}


def test_providers_merge_across_files_and_backend(tmp_path):
    write(tmp_path, "a.yaml", """
        providers:
          valdi: {email: "${env.E}"}
        backend: {url: "postgresql://db/${var.db}", workspace: prod}
        variables: {db: state}
        resources: []
        """)
    write(tmp_path, "b.yaml", """
        providers:
          valdi: {email: "${env.E}", password: pw}
          valohai: {token: t}
        backend: {url: "postgresql://db/${var.db}", workspace: prod}
        """)
    m = load_manifest([tmp_path], {"E": "me@x"})
    assert m.providers == {"valdi": {"email": "me@x", "password": "pw"}, "valohai": {"token": "t"}}
    assert m.backend == {"url": "postgresql://db/state", "workspace": "prod"}
    assert m.provider_problems == {}


def test_a_missing_env_var_in_a_provider_block_waits_until_the_provider_is_used(tmp_path):
    f = write(tmp_path, "m.yaml", """
        providers:
          codeocean: {domain: "${env.CO_DOMAIN}", token: "${env.CO_TOKEN}"}
        resources:
          - {kind: t.k, name: a}
        """)
    m = load_manifest([f], {})
    assert [str(p) for p in m.provider_problems["codeocean"]] == [
        f"{f}:2:15: providers.codeocean.domain: environment variable CO_DOMAIN is not set (${{env.CO_DOMAIN}})",
        f"{f}:2:43: providers.codeocean.token: environment variable CO_TOKEN is not set (${{env.CO_TOKEN}})",
    ]


def test_an_unused_broken_variable_is_not_an_error(tmp_path):
    f = write(tmp_path, "m.yaml", "variables: {x: '${env.NOPE}'}\nresources:\n  - {kind: t.k, name: a}\n")
    m = load_manifest([f], {})
    assert "x" not in m.variables


def test_every_problem_is_reported_at_once(tmp_path):
    write(tmp_path, "a.yaml", "resources:\n  - {kind: t.k, name: A}\n  - {kind: t.k, name: b, spec: {v: '${env.N1}'}}\n")
    write(tmp_path, "b.yaml", "resources:\n  - {kind: t.k, name: c, spec: {v: '${env.N2}', w: '${var.q}'}}\n")
    lines = problems([tmp_path])
    assert len(lines) == 4
    assert lines[0].startswith(f"{tmp_path / 'a.yaml'}:2:17: resources[0].name:")
    assert "N1" in lines[1] and "N2" in lines[2] and "'q'" in lines[3]


def test_digest_covers_names_and_content_in_order_not_comments(tmp_path):
    a = write(tmp_path, "a.yaml", "resources: []\n")
    write(tmp_path, "b.yaml", "resources:\n  - {kind: t.k, name: x}\n")
    first = load_manifest([tmp_path], {})
    assert sorted(first.file_digests) == ["a.yaml", "b.yaml"]
    a.write_text("resources: []  # a comment, and layout\n\n")
    assert load_manifest([tmp_path], {}).digest == first.digest
    a.write_text("resources: []\nvariables: {x: 1}\n")
    again = load_manifest([tmp_path], {})
    assert again.digest != first.digest and again.file_digests["b.yaml"] == first.file_digests["b.yaml"]
    (tmp_path / "b.yaml").rename(tmp_path / "c.yaml")  # the names count
    assert load_manifest([tmp_path], {}).digest != again.digest


def test_read_documents_reports_duplicate_keys_with_both_lines():
    found: list = []
    read_documents("a:\n  x: 1\n  y: 2\n  x: 3\n", "f.yaml", found)
    assert [str(p) for p in found] == ["f.yaml:4:3: a.x: duplicate key 'x' (first at line 2)"]


def test_ten_thousand_resources_load(tmp_path):
    lines = ["resources:"]
    for i in range(10_000):
        lines.append(f"  - kind: valdi.vm\n    name: vm{i}\n    spec:\n      details: {{vcpus: 4, key: "
                     f"\"${{valdi.ssh_key.k.id}}\"}}\n      tags: [a, \"n-{i}\"]")
    f = tmp_path / "big.yaml"
    f.write_text("\n".join(lines) + "\n")
    m = load_manifest([f], {})
    assert len(m.resources) == 10_000
    last = m.resources[-1]
    assert last.spec["details"]["key"] == Ref("valdi.ssh_key.k", "id")
    assert last.positions["spec.tags[1]"].line == 2 + 5 * 9_999 + 4


def test_plain_scalars_in_mappings_and_lists_read_as_yaml_reads_them():
    """Words, numbers and names read the same whether they are a field's value, a list's
    item or a lone value (the latter always asks YAML's resolver)."""
    import yaml

    words = ["false", "False", "FALSE", "off", "Off", "on", "no", "NO", "yes", "y", "n", "null", "Null", "~",
             "offset", "nullable", "yesterday", "falsehood", "~tilde", "f020000", "true1", "Truey", "n-1",
             "0", "7", "007", "12", "-3", "+5", "1_000", "1e3", "1.5", ".inf", "0x1f", "0o17", "123456789012345678",
             "1234567890123456789012", "<<x", "plain", "Ö-name", "'quoted'", '"007"']
    body = "\n".join(f"  k{i}: {w}" for i, w in enumerate(words))
    items = ", ".join(words)
    found: list = []
    docs = read_documents(f"m:\n{body}\nl: [{items}]\n", "f.yaml", found)
    assert found == []
    expected = [yaml.safe_load(f"v: {w}")["v"] for w in words]
    assert list(docs[0].value["m"].values()) == expected
    assert docs[0].value["l"] == expected
    assert [type(v) for v in docs[0].value["l"]] == [type(v) for v in expected]
    alone = [read_documents(w, "f.yaml", [])[0].value for w in words]
    assert alone == expected
