"""codeocean.data_asset called directly (KindContext) against a live emulator: lookup of a
journaled create by name, three-way custom metadata, transfer, orphan, the token."""
from __future__ import annotations

import httpx
import pytest

from reconciler.emulator.core import SANDBOX
from reconciler.errors import AuthError
from reconciler.providers.base import KindContext, Wanted
from reconciler.providers.codeocean import PROVIDER
from reconciler.providers.codeocean.data_asset import DataAssetKind

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


def test_custom_metadata_keys_someone_else_set_are_kept(sandbox_env, co):
    live = KIND.create(ctx(), spec(custom_metadata={"lab": "vision", "subjects": 3}))
    co.put(f"/data_assets/{live.id}", json={"custom_metadata": {"lab": "vision", "subjects": 3,
                                                                "modality": "MRI"}})
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
