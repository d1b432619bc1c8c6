"""The valohai kinds called directly (KindContext) against a live emulator: adoption,
take-over, three-way merge, batching (request counts), release and purge."""
from __future__ import annotations

import httpx
import pytest
from conftest import api_calls

from reconciler.emulator.core import SANDBOX
from reconciler.errors import ApiError, NotFound
from reconciler.providers.contract import KindContext, Wanted
from reconciler.providers.valohai import PROVIDER
from reconciler.providers.valohai.datum import DatumKind
from reconciler.providers.valohai.datum_properties import DatumPropertiesKind

BUCKET, STORE = SANDBOX["valohai_bucket"], SANDBOX["valohai_store_name"]
PROJECT = SANDBOX["valohai_project_id"]
DATUM, PROPS = DatumKind(), DatumPropertiesKind()


@pytest.fixture
def ctx(sandbox_env):
    client = PROVIDER.connect({})  # everything from VALOHAI_* env
    yield KindContext(api=client)
    client.close()


@pytest.fixture
def vh(emulator):
    with httpx.Client(base_url=emulator.url, headers={"Authorization": f"Token {SANDBOX['valohai_token']}"}) as c:
        yield c


def spec(key="data/train.csv", **extra):
    return {"store": STORE, "url": f"s3://{BUCKET}/{key}", **extra}


def fresh(ctx):
    """A new client, as the next run would have (no cached listings)."""
    return KindContext(api=PROVIDER.connect({}))


def observe(ctx, kind, address, id_=None, spec_=None, last=None, lookup=False):
    return kind.observe(fresh(ctx), [Wanted(address, id_, spec_, last, lookup)])[address]


def datum_doc(vh, datum_id):
    return vh.get(f"/api/v0/data/{datum_id}/").json()


def test_connect_reads_config_then_env(sandbox_env, monkeypatch):
    client = PROVIDER.connect({"project": "sandbox"})  # a project name is looked up
    assert client.host == sandbox_env["VALOHAI_HOST"] and client.project == PROJECT
    monkeypatch.delenv("VALOHAI_HOST")
    assert PROVIDER.connect({}).host == "https://app.valohai.com"


def test_missing_token_is_a_clear_error(sandbox_env, monkeypatch):
    monkeypatch.delenv("VALOHAI_TOKEN")
    with pytest.raises(ApiError, match="VALOHAI_TOKEN"):
        DATUM.observe(KindContext(api=PROVIDER.connect({})), [Wanted("a", None, spec())])


def test_adopt_with_properties_tags_alias_then_no_changes(ctx, vh, admin):
    s = spec(properties={"team": "ml", "cfg": {"k": [1, 2]}}, tags=["train"], alias="train-set")
    assert observe(ctx, DATUM, "d", spec_=s) is None
    admin.delete("/_emulator/requests")
    live = DATUM.create(ctx, s)
    calls = api_calls(admin)
    assert calls["POST /api/v0/stores/{id}/adopt/"] == 1
    assert calls["POST /api/v0/data/metadata/apply/"] == 1
    body = emulator_blob(admin, "data/train.csv")
    import hashlib
    assert live.outputs["sha256"] == hashlib.sha256(body).hexdigest()
    assert live.outputs["size"] == len(body) and live.outputs["name"] == "train.csv"
    assert live.outputs["uri"] == s["url"] and not live.adopted
    d = datum_doc(vh, live.id)
    assert d["metadata"] == s["properties"] and d["tags"] == ["train"]
    resolved = vh.get("/api/v0/datum-aliases/resolve/", params={"name": "train-set", "project": PROJECT})
    assert resolved.json()["datum"]["id"] == live.id
    again = observe(ctx, DATUM, "d", live.id, s, s)
    assert not DATUM.diff(s, again, s).changed
    assert again.outputs == live.outputs


def emulator_blob(admin, key):
    return admin.get(f"/_emulator/s3/{BUCKET}/{key}").content


def test_an_existing_datum_is_found_by_url_and_taken_over(ctx, vh):
    url = f"s3://{BUCKET}/data/test.csv"
    datum_id = vh.post(f"/api/v0/stores/{SANDBOX['valohai_store_id']}/adopt/",
                       json={"url": url, "project": PROJECT}).json()["created"][url]
    vh.post(f"/api/v0/data/{datum_id}/metadata/", json={"theirs": 1, "valohai.tags": ["t"]})
    s = spec("data/test.csv", properties={"ours": 2}, tags=["o"])
    live = observe(ctx, DATUM, "d", spec_=s)
    assert live.id == datum_id and live.adopted
    diff = DATUM.diff(s, live, None)
    assert [c.path for c in diff.changes] == ["properties.ours", "tags"]
    DATUM.update(ctx, live, s, diff)
    d = datum_doc(vh, datum_id)
    assert d["metadata"] == {"theirs": 1, "ours": 2} and d["tags"] == ["t", "o"]


def test_create_takes_over_when_valohai_says_it_already_exists(ctx, vh):
    url = f"s3://{BUCKET}/models/model.pkl"
    first = DATUM.create(ctx, spec("models/model.pkl"))
    second = DATUM.create(ctx, spec("models/model.pkl", properties={"x": 1}))  # e.g. state lost
    assert second.id == first.id and second.adopted
    assert datum_doc(vh, first.id)["metadata"] == {"x": 1}
    assert vh.get("/api/v0/data/", params={"project": PROJECT}).json()["count"] == 1
    assert url == second.outputs["uri"]


def test_a_file_not_in_the_store_fails_naming_url_and_store(ctx):
    results = DATUM.create_many(ctx, [spec("nope.csv"), spec("data/train.csv")])
    assert isinstance(results[0], ApiError)
    assert f"s3://{BUCKET}/nope.csv" in str(results[0]) and STORE in str(results[0])
    assert results[1].outputs["name"] == "train.csv"  # the others still adopt


def test_unknown_store_and_foreign_bucket_are_caught_at_plan_time(ctx):
    from reconciler.config.model import Position, Resource
    here = Position("m.yaml", 3, 5)
    resources = [Resource("valohai.datum", "a", {"store": "nope", "url": "s3://x/y"}, here),
                 Resource("valohai.datum", "b", {"store": STORE, "url": "s3://other/y"}, here)]
    problems = DATUM.check(ctx, resources)
    assert "no Valohai store 'nope'" in problems[0].message and STORE in problems[0].message
    assert "s3://other/y is not in store sandbox-store" in problems[1].message


def test_create_many_groups_adoption_and_properties(ctx, admin):
    admin.post("/_emulator/config", json={"quirks": ["valohai-adopt-bulk"]}).raise_for_status()
    for i in range(30):
        admin.put(f"/_emulator/s3/{BUCKET}/batch/{i}.txt", content=f"{i}".encode())
    specs = [spec(f"batch/{i}.txt", properties={"i": i}, tags=["batch"]) for i in range(30)]
    admin.delete("/_emulator/requests")
    lives = DATUM.create_many(ctx, specs)
    assert all(lv.outputs["size"] == len(str(i)) for i, lv in enumerate(lives))
    calls = api_calls(admin)
    admin.post("/_emulator/config", json={"quirks": []}).raise_for_status()
    assert calls == {"GET /api/v0/stores/": 1, "POST /api/v0/stores/{id}/adopt/": 1,
                     "GET /api/v0/data/": 1, "POST /api/v0/data/metadata/apply/": 1}


def test_a_server_with_only_the_documented_url_form_gets_single_adopts_after_one_refusal(ctx, admin):
    """Seed 000 shows one `url`: a `urls` body is refused once, then every URL goes alone,
    and the rest of the run does not try the bulk form again."""
    for i in range(4):
        admin.put(f"/_emulator/s3/{BUCKET}/one/{i}.txt", content=b"x")
    admin.delete("/_emulator/requests")
    lives = DATUM.create_many(ctx, [spec(f"one/{i}.txt") for i in range(2)])
    assert len({lv.id for lv in lives}) == 2
    assert api_calls(admin)["POST /api/v0/stores/{id}/adopt/"] == 1 + 2
    admin.delete("/_emulator/requests")
    DATUM.create_many(ctx, [spec(f"one/{i}.txt") for i in range(2, 4)])
    assert api_calls(admin)["POST /api/v0/stores/{id}/adopt/"] == 2


def test_update_many_is_one_request_and_apply_all_when_identical(ctx, admin):
    for i in range(5):
        admin.put(f"/_emulator/s3/{BUCKET}/u/{i}.txt", content=b"x")
    specs = [spec(f"u/{i}.txt", properties={"v": 1}) for i in range(5)]
    lives = DATUM.create_many(ctx, specs)
    same = [{**s, "properties": {"v": 2}} for s in specs]
    admin.delete("/_emulator/requests")
    DATUM.update_many(ctx, [(lv, s, DATUM.diff(s, lv, old)) for lv, s, old in zip(lives, same, specs)])
    assert api_calls(admin) == {"POST /api/v0/data/metadata/apply-all/": 1}
    varied = [{**s, "properties": {"v": i}} for i, s in enumerate(specs)]
    current = DATUM.observe(fresh(ctx), [Wanted(str(i), lv.id, s, same[i]) for i, (lv, s) in
                                          enumerate(zip(lives, varied))])
    admin.delete("/_emulator/requests")
    DATUM.update_many(ctx, [(current[str(i)], s, DATUM.diff(s, current[str(i)], same[i]))
                            for i, s in enumerate(varied)])
    assert api_calls(admin) == {"POST /api/v0/data/metadata/apply/": 1}


def test_a_property_set_outside_survives_and_a_dropped_one_is_removed(ctx, vh):
    s1 = spec(properties={"a": 1, "b": 2}, tags=["x", "y"], alias="al")
    live = DATUM.create(ctx, s1)
    vh.post(f"/api/v0/data/{live.id}/metadata/", json={"outside": True, "valohai.tags": ["x", "y", "z"]})
    s2 = spec(properties={"a": 1}, tags=["x"])
    current = observe(ctx, DATUM, "d", live.id, s2, s1)
    diff = DATUM.diff(s2, current, s1)
    assert sorted(c.path for c in diff.changes) == ["alias", "properties.b", "tags"]
    DATUM.update(ctx, current, s2, diff)
    d = datum_doc(vh, live.id)
    assert d["metadata"] == {"a": 1, "outside": True} and d["tags"] == ["x", "z"]
    assert vh.get("/api/v0/datum-aliases/").json()["results"][0]["datum"] is None
    assert not DATUM.diff(s2, observe(ctx, DATUM, "d", live.id, s2, s2), s2).changed


def test_release_keeps_the_datum_and_others_properties(ctx, vh):
    s = spec(properties={"a": 1}, tags=["ours"], alias="rel")
    live = DATUM.create(ctx, s)
    vh.post(f"/api/v0/data/{live.id}/metadata/", json={"theirs": 1, "valohai.tags": ["ours", "theirs"]})
    current = observe(ctx, DATUM, "d", live.id, None, s)
    DATUM.delete(ctx, current, "release", s)
    d = datum_doc(vh, live.id)
    assert d["metadata"] == {"theirs": 1} and d["tags"] == ["theirs"] and not d["purged"]
    assert vh.get("/api/v0/datum-aliases/").json()["results"][0]["datum"] is None


def test_delete_policy_purges_and_is_idempotent(ctx, vh, admin):
    live = DATUM.create(ctx, spec("data/test.csv"))
    DATUM.delete(ctx, live, "delete", spec("data/test.csv"))
    DATUM.delete(ctx, live, "delete", spec("data/test.csv"))
    assert datum_doc(vh, live.id)["purged"] is True
    assert observe(ctx, DATUM, "d", live.id, spec("data/test.csv")) is None


def test_observe_reads_listings_not_one_get_per_datum(ctx, admin):
    for i in range(25):
        admin.put(f"/_emulator/s3/{BUCKET}/p/{i}.txt", content=b"x")
    specs = [spec(f"p/{i}.txt") for i in range(25)]
    lives = DATUM.create_many(ctx, specs)
    client = PROVIDER.connect({})
    client.page_size = 10
    admin.delete("/_emulator/requests")
    found = DATUM.observe(KindContext(api=client),
                          [Wanted(str(i), lv.id, s, s) for i, (lv, s) in enumerate(zip(lives, specs))])
    assert all(found[str(i)].id == lv.id for i, lv in enumerate(lives))
    assert api_calls(admin) == {"GET /api/v0/data/": 3, "GET /api/v0/datum-aliases/": 1}


def test_an_adopt_whose_answer_was_lost_is_not_doubled(ctx, vh, admin):
    admin.post("/_emulator/faults", json={"pattern": "adopt/$", "kinds": ["drop_after"], "times": 1})
    live = DATUM.create(ctx, spec("data/train.csv", tags=["t"]))
    assert vh.get("/api/v0/data/", params={"project": PROJECT}).json()["count"] == 1
    assert datum_doc(vh, live.id)["tags"] == ["t"]


# -- datum_properties ----------------------------------------------------------------------
@pytest.fixture
def outputs(admin):
    r = admin.post("/_emulator/valohai/executions", json={"outputs": [
        {"name": "model.h5", "content": "m1", "properties": {"acc": 0.9}, "tags": ["auto"], "alias": "latest"},
        {"name": "model2.h5", "content": "m2"}]})
    return r.json()["datums"]


def test_properties_on_execution_outputs_by_id_and_alias(ctx, vh, admin, outputs):
    by_id = {"datum": outputs[1]["id"], "properties": {"reviewed": True}}
    by_alias = {"datum": "datum://latest", "properties": {"stage": "prod"}, "tags": ["prod"], "alias": "prod-model"}
    assert observe(ctx, PROPS, "p", spec_=by_alias) is None  # not ours yet
    admin.delete("/_emulator/requests")
    lives = PROPS.create_many(ctx, [by_id, by_alias])
    calls = api_calls(admin)
    assert calls["POST /api/v0/data/metadata/apply/"] == 1 and "GET /api/v0/data/{id}/" not in calls
    first = datum_doc(vh, outputs[0]["id"])
    assert first["metadata"] == {"acc": 0.9, "stage": "prod"} and first["tags"] == ["auto", "prod"]
    assert lives[0].id == outputs[1]["id"] and lives[1].id == outputs[0]["id"]
    live = observe(ctx, PROPS, "p", lives[1].id, by_alias, by_alias)
    assert not PROPS.diff(by_alias, live, by_alias).changed
    PROPS.delete(ctx, live, "release", by_alias)
    first = datum_doc(vh, outputs[0]["id"])
    assert first["metadata"] == {"acc": 0.9} and first["tags"] == ["auto"]


def test_properties_follow_a_moved_alias(ctx, vh, outputs):
    s = {"datum": "datum://latest", "properties": {"k": 1}}
    live = PROPS.create(ctx, s)
    vh.post(f"/api/v0/data/{outputs[1]['id']}/metadata/", json={"valohai.alias": "latest"})
    current = observe(ctx, PROPS, "p", live.id, s, s)
    diff = PROPS.diff(s, current, s)
    assert diff.replace == ["datum"]


def test_a_missing_datum_is_reported(ctx):
    from reconciler.config.model import Position, Resource
    r = Resource("valohai.datum_properties", "x", {"datum": "datum://no-such-alias"}, Position("m.yaml", 1, 1))
    assert "no datum 'datum://no-such-alias'" in PROPS.check(ctx, [r])[0].message
    with pytest.raises(ApiError, match="no-such-alias"):
        PROPS.create(ctx, {"datum": "datum://no-such-alias"})


def test_duplicate_aliases_in_a_manifest_are_rejected_offline():
    from reconciler.config.model import Position, Resource
    rs = [Resource("valohai.datum", n, {"store": STORE, "url": f"s3://{BUCKET}/{n}", "alias": "same"},
                   Position("m.yaml", i, 1)) for i, n in enumerate(["a", "b"])]
    assert "also set by valohai.datum.a" in DATUM.check_offline(rs)[0].message


def test_a_changed_url_forces_replacement_and_the_plan_says_what_happens(ctx):
    s = spec("data/train.csv")
    live = DATUM.create(ctx, s)
    moved = spec("data/test.csv")
    assert DATUM.diff(moved, live, s).replace == ["url"]
    assert "purge" in DATUM.plan_notes(moved, live, s)[0]
    assert DATUM.plan_notes(s, live, s) == []


def test_a_journaled_create_is_found_by_url_and_not_marked_adopted(ctx):
    s = spec("data/train.csv", tags=["t"])
    live = DATUM.create(ctx, s)
    found = observe(ctx, DATUM, "d", None, s, s, lookup=True)
    assert found.id == live.id and not found.adopted


def test_single_adopts_when_the_server_has_no_bulk_form(ctx, vh):
    from reconciler.providers.valohai.client import AdoptOutcome
    store = ctx.api.find_store(STORE)
    DATUM.create(ctx, spec("data/test.csv"))
    out = AdoptOutcome()
    urls = [f"s3://{BUCKET}/{k}" for k in ("data/train.csv", "data/test.csv", "missing.bin")]
    ctx.api._adopt_singly(store, urls, out)
    assert list(out.created) == [urls[0]] and out.existing == {urls[1]}
    assert "adoptable" not in out.failed[urls[2]] and STORE in out.failed[urls[2]]



def test_releasing_a_datum_gone_from_the_project_succeeds(ctx, vh):
    """Valohai answers a metadata write to a datum it does not know with a 400; the client
    types it NotFound, and a release, like any delete of a missing object, succeeds."""
    import dataclasses
    import uuid

    s = spec(properties={"a": 1}, tags=["ours"])
    current = observe(ctx, DATUM, "d", DATUM.create(ctx, s).id, None, s)
    gone = dataclasses.replace(current, id=str(uuid.uuid4()))  # removed outside: unknown id
    DATUM.delete(ctx, gone, "release", s)  # no error
    failure = ctx.api.apply_metadata({gone.id: {"a": 1}})[gone.id]
    assert isinstance(failure, NotFound) and failure.status == 400  # typed, the answer kept


def test_a_live_datum_keeps_the_states_equal_strings_and_reads_the_same():
    """make_live keeps an output string equal to the one the state recorded as that object
    (the listing's copy goes with the listing); the values are the listing's."""
    from reconciler.providers.valohai.common import make_live

    datum = {"id": "d-1", "uri": "s3://b/1", "name": "1", "sha256": "ab", "size": 3, "metadata": {}}
    recorded = {"id": "".join(["d-", "1"]), "uri": "s3://b/1x"[:-1], "name": "other", "size": 9}
    plain = make_live(dict(datum), [], {}, {"store": "s", "url": datum["uri"]})
    shared = make_live(dict(datum), [], {}, {"store": "s", "url": datum["uri"]}, recorded=recorded)
    assert (shared.id, shared.attrs, shared.outputs) == (plain.id, plain.attrs, plain.outputs)
    assert shared.id is recorded["id"] and shared.outputs["uri"] is recorded["uri"]
    assert shared.attrs["url"] is recorded["uri"] and shared.outputs["name"] == "1"
