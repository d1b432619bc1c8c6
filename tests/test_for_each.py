"""for_each and count end to end against the emulator: instances addressed kind.name[key]
in plans, the state, --target, import, references and the graph; removing a key removes
that instance only; map values that are objects."""
from __future__ import annotations

import textwrap

import httpx
import pytest
from conftest import Infra, cli

from reconciler.config.manifest import load_manifest
from reconciler.config.model import Ref, Template
from reconciler.emulator.core import SANDBOX

BUCKET, PROJECT = SANDBOX["valohai_bucket"], SANDBOX["valohai_project_id"]

MANIFEST = """
variables:
  shards: [p0, p1, p2]
  owner: ml-team
  splits:
    train: {rows: 4, file: data/train.csv}
    test: {rows: 2, file: data/test.csv}
resources:
  - kind: valohai.datum
    name: shard
    for_each: ${var.shards}
    spec:
      store: sandbox-store
      url: s3://sandbox-bucket/shards/${each.value}.csv
      properties: {shard: "${each.key}", owner: "${var.owner}"}
  - kind: valohai.datum
    name: counted
    count: 2
    spec: {store: sandbox-store, url: "s3://sandbox-bucket/data/counted/c${count.index}.csv",
           properties: {index: "${count.index}"}}
  - kind: valohai.datum
    name: split
    for_each: ${var.splits}
    spec:
      store: sandbox-store
      url: s3://sandbox-bucket/${each.value.file}
      properties: {rows: "${each.value.rows}", first_shard: "${valohai.datum.shard[p0].id}"}
outputs:
  first_shard: ${valohai.datum.shard[p0].id}
"""


@pytest.fixture
def infra(tmp_path, sandbox_env, admin):
    for i in range(2):
        admin.put(f"/_emulator/s3/{BUCKET}/data/counted/c{i}.csv", content=b"x\n").raise_for_status()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "main.yaml").write_text(textwrap.dedent(MANIFEST))
    return Infra(tmp_path / "m", "main.yaml")


@pytest.fixture
def vh(emulator):
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Token {SANDBOX['valohai_token']}"}) as c:
        yield c


def datum(vh, key: str) -> dict:
    items = vh.get("/api/v0/data/", params={"project": PROJECT, "limit": 1000}).json()["results"]
    return next(d for d in items if d["uri"] == f"s3://{BUCKET}/{key}")


def test_instances_everywhere_and_removing_a_key_removes_that_instance_only(infra, vh):
    code, out = infra.apply()
    assert code == 0, out
    resources = infra.state()["resources"]
    ids = {a: r["id"] for a, r in resources.items()}
    assert sorted(ids) == ["valohai.datum.counted[0]", "valohai.datum.counted[1]", "valohai.datum.shard[p0]",
                           "valohai.datum.shard[p1]", "valohai.datum.shard[p2]", "valohai.datum.split[test]",
                           "valohai.datum.split[train]"]
    # each.key / each.value / count.index / each.value.rows and an instance reference reached the service
    assert datum(vh, "shards/p1.csv")["metadata"]["shard"] == "p1"
    assert datum(vh, "data/counted/c1.csv")["metadata"]["index"] == 1
    train = datum(vh, "data/train.csv")["metadata"]
    assert train["rows"] == 4 and train["first_shard"] == ids["valohai.datum.shard[p0]"]
    assert infra.state()["outputs"]["first_shard"]["value"] == ids["valohai.datum.shard[p0]"]

    code, out = infra.plan("--detailed-exitcode")
    assert code == 0 and "No changes" in out, out

    # a key leaves the list: that instance only is planned for removal
    code, out = infra.plan("--var", "shards=[p0, p2]", "--detailed-exitcode")
    assert code == 2, out
    assert "valohai.datum.shard[p1] will be released" in out
    assert "Plan: 0 to add, 0 to change, 0 to destroy, 1 to release." in out  # released, not destroyed
    code, out = infra.apply("--var", "shards=[p0, p2]")
    assert code == 0, out
    after = {a: r["id"] for a, r in infra.state()["resources"].items()}
    assert "valohai.datum.shard[p1]" not in after
    assert all(after[a] == ids[a] for a in after)  # the others kept their objects
    assert "shard" not in datum(vh, "shards/p1.csv")["metadata"]  # released: our property removed


def test_target_a_single_instance_or_the_whole_block(infra):
    assert infra.apply()[0] == 0
    code, out = infra.plan("--var", "owner=ops", "--target", "valohai.datum.shard[p1]")
    assert code == 0, out
    assert "valohai.datum.shard[p1] will be updated in place" in out
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in out
    code, out = infra.plan("--var", "owner=ops", "--target", "valohai.datum.shard")
    assert "Plan: 0 to add, 3 to change, 0 to destroy." in out, out
    code, out = infra.plan("--target", "valohai.datum.shard[p7]")
    assert code == 1 and "valohai.datum.shard[p7]: no such resource" in out


def test_import_and_state_commands_take_the_bracket_form(infra):
    assert infra.apply()[0] == 0
    state = str(infra.path / "state.json")
    address = "valohai.datum.shard[p2]"
    remote = infra.state()["resources"][address]["id"]
    code, out = cli("--state", state, "state", "show", address, str(infra.path))
    assert code == 0 and remote in out
    code, out = cli("--state", state, "state", "rm", address, str(infra.path))
    assert code == 0, out
    code, out = cli("--state", state, "import", "valohai.datum.shard", remote, str(infra.path))
    assert code == 1 and "import one instance, e.g. valohai.datum.shard[p0]" in out
    code, out = cli("--state", state, "import", address, remote, str(infra.path))
    assert code == 0, out
    assert infra.state()["resources"][address]["id"] == remote
    code, out = infra.plan("--detailed-exitcode")
    assert code == 0, out  # imported as-is: nothing to change


def test_graph_has_an_edge_from_an_instance_reference(infra):
    code, out = cli("graph", str(infra.path))
    assert code == 0, out
    assert '"valohai.datum.split[train]" -> "valohai.datum.shard[p0]";' in out


# -- load-time expansion, no API -----------------------------------------------------------------
def write(tmp_path, text: str):
    f = tmp_path / "m.yaml"
    f.write_text(textwrap.dedent(text))
    return f


def test_map_values_may_be_objects_and_depends_on_a_block_means_every_instance(tmp_path):
    m = load_manifest([write(tmp_path, """
        resources:
          - kind: t.k
            name: box
            for_each:
              small: {size: 1, tags: [a]}
              large: {size: 8, tags: [b, c]}
            spec: {size: "${each.value.size}", tags: "${each.value.tags}", all: "${each.value}",
                   label: "${each.key}-${each.value.size}"}
          - kind: t.k
            name: after
            depends_on: [t.k.box]
          - kind: t.k
            name: none
            count: 0
        """)], {})
    by = {r.address: r for r in m.resources}
    assert list(by) == ["t.k.box[small]", "t.k.box[large]", "t.k.after"]  # count: 0 makes none
    assert by["t.k.box[large]"].spec == {"size": 8, "tags": ["b", "c"], "all": {"size": 8, "tags": ["b", "c"]},
                                         "label": "large-8"}
    assert by["t.k.after"].depends_on == ["t.k.box[small]", "t.k.box[large]"]


def test_a_problem_in_a_block_is_reported_once_not_once_per_instance(tmp_path):
    from reconciler.errors import ManifestError

    f = write(tmp_path, """
        resources:
          - kind: t.k
            name: a
            count: 500
            spec: {v: "${env.NOT_SET_ANYWHERE}"}
        """)
    with pytest.raises(ManifestError) as info:
        load_manifest([f], {})
    assert len(info.value.problems) == 1
    assert str(info.value).startswith(f"{f}:6:12: t.k.a[0].spec.v: environment variable NOT_SET_ANYWHERE")


def test_an_instance_reference_may_take_its_key_from_each_key(tmp_path):
    m = load_manifest([write(tmp_path, """
        variables: {shards: [p0, p1]}
        resources:
          - {kind: t.k, name: part, for_each: "${var.shards}"}
          - kind: t.k
            name: props
            for_each: ${var.shards}
            spec: {datum: "${t.k.part[each.key].id}", url: "datum://${t.k.part[each.value].id}"}
        """)], {})
    props = {r.address: r.spec for r in m.resources if r.name.startswith("props")}
    assert props["t.k.props[p1]"]["datum"] == Ref("t.k.part[p1]", "id")
    assert props["t.k.props[p0]"]["url"] == Template(("datum://", Ref("t.k.part[p0]", "id")))
