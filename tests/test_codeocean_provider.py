"""codeocean.data_asset called directly (KindContext) against a live emulator: lookup of a
journaled create by name, three-way custom metadata, transfer, orphan, the token."""
from __future__ import annotations

import time

import httpx
import pytest

from reconciler.emulator.core import SANDBOX
from reconciler.errors import ApiError, AuthError
from reconciler.providers.codeocean import PROVIDER, shape
from reconciler.providers.codeocean.data_asset import DataAssetKind
from reconciler.providers.contract import KindContext, Wanted

KIND = DataAssetKind()
SOURCE = {"aws": {"bucket": "sandbox-bucket", "prefix": "data/"}}


def ctx() -> KindContext:
    return KindContext(api=PROVIDER.connect({}))  # a fresh client: no cached listing


def spec(**extra):
    return {"name": "Dataset", "tags": ["a"], "source": SOURCE, **extra}


@pytest.fixture
def co(emulator):
    with httpx.Client(base_url=f"{emulator.url}/api/v1", auth=(SANDBOX["codeocean_token"], "")) as c:
        yield c


def observe(address="codeocean.data_asset.d", id_=None, spec_=None, last=None, lookup=False):
    return KIND.observe(ctx(), [Wanted(address, id_, spec_, last, lookup)])[address]


def test_a_journaled_create_is_found_by_name_not_made_twice(sandbox_env):
    made = KIND.create(ctx(), spec())
    assert observe(spec_=spec()) is None  # not ours until the journal says so
    found = observe(spec_=spec(), lookup=True)
    assert found is not None and found.id == made.id
    assert not KIND.diff(spec(), found, None).changed


def edit_by_hand(co, asset_id: str, **fields) -> None:
    """Someone's PUT outside reconciler: the four fields seed 003 requires, as they are, with `fields` changed."""
    now = co.get(f"/data_assets/{asset_id}").json()
    co.put(f"/data_assets/{asset_id}", json={**{k: now[k] for k in ("name", "description", "tags", "mount")},
                                             **fields}).raise_for_status()


def test_custom_metadata_keys_someone_else_set_are_kept(sandbox_env, co):
    live = KIND.create(ctx(), spec(custom_metadata={"lab": "vision", "subjects": 3}))
    edit_by_hand(co, live.id, custom_metadata={"lab": "vision", "subjects": 3, "modality": "MRI"})
    last = spec(custom_metadata={"lab": "vision", "subjects": 3})
    want = spec(custom_metadata={"lab": "vision"})  # we drop subjects; modality is not ours
    now = observe(id_=live.id, spec_=want, last=last)
    diff = KIND.diff(want, now, last)
    assert [(c.path, c.new) for c in diff.changes] == [("custom_metadata.subjects", None)]
    KIND.update(ctx(), now, want, diff)
    assert co.get(f"/data_assets/{live.id}").json()["custom_metadata"] == {"lab": "vision", "modality": "MRI"}


def test_a_new_target_is_a_transfer_not_a_replacement(sandbox_env, co):
    live = KIND.create(ctx(), spec())
    want = spec(target={"aws": {"bucket": "archive-bucket", "prefix": "kept"}})
    diff = KIND.diff(want, observe(id_=live.id, spec_=want, last=spec()), spec())
    assert not diff.replace and any("transferred to s3://archive-bucket/kept" in n for n in diff.notes)
    KIND.update(ctx(), observe(id_=live.id, spec_=want, last=spec()), want, diff)
    asset = co.get(f"/data_assets/{live.id}").json()
    assert asset["source_bucket"]["bucket"] == "archive-bucket" and asset["last_transferred"]
    again = observe(id_=live.id, spec_=want, last=want)
    assert not KIND.diff(want, again, want).changed  # the transfer does not look like a new source


def test_orphan_keeps_the_asset_and_delete_of_a_gone_one_succeeds(sandbox_env, co):
    live = KIND.create(ctx(), spec())
    KIND.delete(ctx(), live, "orphan", spec())
    assert co.get(f"/data_assets/{live.id}").status_code == 200
    KIND.delete(ctx(), live, "delete", spec())
    KIND.delete(ctx(), live, "delete", spec())  # already gone: fine
    assert co.get(f"/data_assets/{live.id}").status_code == 404
    assert observe(id_=live.id, spec_=spec()) is None


def test_a_bad_token_is_an_auth_error_that_does_not_show_it(sandbox_env, monkeypatch):
    monkeypatch.setenv("CODEOCEAN_TOKEN", "cop_wrong_token_123")
    with pytest.raises(AuthError) as e:
        observe(id_="x", spec_=spec())
    assert "cop_wrong_token_123" not in str(e.value) and "401" in str(e.value)


def test_a_failed_create_names_the_asset_and_reason_and_leaves_nothing(sandbox_env, admin):
    bad = spec(name="Empty", source={"aws": {"bucket": "sandbox-bucket", "prefix": "nothing-here/"}})
    with pytest.raises(ApiError) as e:
        KIND.create(ctx(), bad)
    assert "data asset Empty failed: no objects found in s3://sandbox-bucket/nothing-here" in str(e.value)
    names = [d["name"] for d in admin.get("/_emulator/docs/co_asset").json()["items"]]
    assert "Empty" not in names  # deleted: a second apply makes it anew
    assert observe(spec_=bad, lookup=True) is None


def test_a_create_slower_than_the_timeout_fails_clearly_and_is_found_next_time(sandbox_env, admin):
    admin.post("/_emulator/config", json={"asset_ready_delay": 1.0})
    lines: list[str] = []
    slow = KindContext(api=PROVIDER.connect({}), options={"asset_timeout": 0.3}, progress=lines.append)
    with pytest.raises(ApiError) as e:
        KIND.create(slow, spec())
    assert "data asset Dataset" in str(e.value) and "still being created" in str(e.value)
    time.sleep(1.0)
    found = observe(spec_=spec(), lookup=True)  # the journaled create, found by name
    assert found is not None and found.attrs["state"] == "ready"
    assert not KIND.diff(spec(), found, None).changed


def test_a_failed_asset_found_after_a_crash_is_replaced(sandbox_env, co):
    bad = spec(source={"aws": {"bucket": "sandbox-bucket", "prefix": "nothing-here/"}})
    made = co.post("/data_assets", json={"name": "Dataset", "mount": "Dataset", "tags": ["a"],
                                         "source": shape.create_body(bad)["source"]}).json()
    time.sleep(0.2)  # past the emulator's ready delay: failed
    found = observe(spec_=bad, lookup=True)
    assert found is not None and found.id == made["id"]
    diff = KIND.diff(bad, found, None)
    assert diff.replace == ["state"]
    assert any("failed (no objects found in s3://sandbox-bucket/nothing-here" in n for n in diff.notes)


def test_permission_keys_are_set_compared_and_reset_only_as_the_manifest_says(sandbox_env, co):
    owner = SANDBOX["codeocean_email"]
    first = spec(permissions={"groups": [{"group": "analysts", "role": "viewer"}], "everyone": "viewer",
                              "share_assets": True})
    live = KIND.create(ctx(), first)
    perms = co.get(f"/data_assets/{live.id}/permissions").json()
    assert perms["share_assets"] is True and perms["everyone"] == "viewer"
    assert perms["users"] == [{"email": owner, "role": "owner"}]  # users not set: left alone
    assert not KIND.diff(first, observe(id_=live.id, spec_=first, last=first), first).changed

    # someone adds a user by hand; we drop share_assets and everyone from the manifest
    co.post(f"/data_assets/{live.id}/permissions", json={"users": [{"email": owner, "role": "owner"},
                                                                   {"email": "x@example.com", "role": "viewer"}],
                                                         "groups": perms["groups"], "everyone": perms["everyone"],
                                                         "share_assets": True}).raise_for_status()
    second = spec(permissions={"groups": [{"group": "analysts", "role": "viewer"}]})
    now = observe(id_=live.id, spec_=second, last=first)
    diff = KIND.diff(second, now, first)
    assert sorted((c.path, c.new) for c in diff.changes) == [("permissions.everyone", "none"),
                                                             ("permissions.share_assets", False)]
    KIND.update(ctx(), now, second, diff)
    perms = co.get(f"/data_assets/{live.id}/permissions").json()
    assert perms["everyone"] == "none" and perms["share_assets"] is False
    assert {"email": "x@example.com", "role": "viewer"} in perms["users"]  # not ours: kept
    assert perms["groups"] == [{"group": "analysts", "role": "viewer"}]
    assert not KIND.diff(second, observe(id_=live.id, spec_=second, last=second), second).changed


def test_an_update_keeps_what_the_diff_leaves_out(sandbox_env, co):
    """A PUT carries all five fields: those the diff does not change (e.g. under
    lifecycle.ignore_changes) keep what the asset has now, not the manifest's value."""
    live = KIND.create(ctx(), spec(description="one"))
    edit_by_hand(co, live.id, tags=["set-by-hand"])
    want = spec(description="two")
    now = observe(id_=live.id, spec_=want, last=spec(description="one"))
    diff = KIND.diff(want, now, spec(description="one"))
    assert {c.path for c in diff.changes} == {"description", "tags"}
    diff.changes = [c for c in diff.changes if c.path != "tags"]  # what ignore_changes: [tags] does
    KIND.update(ctx(), now, want, diff)
    asset = co.get(f"/data_assets/{live.id}").json()
    assert asset["description"] == "two" and asset["tags"] == ["set-by-hand"]


@pytest.mark.parametrize("source", [SOURCE, {"computation": {"id": "c0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b"}}])
def test_a_target_at_create_lands_there_and_shows_no_change_after(sandbox_env, co, source):
    want = spec(source=source, target={"aws": {"bucket": "archive-bucket", "prefix": "kept/"}})
    live = KIND.create(ctx(), want)
    asset = co.get(f"/data_assets/{live.id}").json()
    assert asset["source_bucket"]["bucket"] == "archive-bucket" and asset["source_bucket"]["external"] is True
    again = observe(id_=live.id, spec_=want, last=want)
    assert not KIND.diff(want, again, want).changed
