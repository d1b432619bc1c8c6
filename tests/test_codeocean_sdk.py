"""The official Code Ocean SDK (codeocean 0.17.0), unmodified, against the emulator:
every data asset call it makes, parsed by its own strict models."""
from __future__ import annotations

import time
from itertools import islice

import httpx
import pytest
from codeocean import CodeOcean, Error
from codeocean.models.components import (
    EveryoneRole,
    GroupPermissions,
    GroupRole,
    Permissions,
    SearchFilter,
    SearchFilterRange,
    SortOrder,
    UserPermissions,
    UserRole,
)
from codeocean.models.data_asset import (
    AWSS3Source,
    AWSS3Target,
    ComputationSource,
    DataAssetParams,
    DataAssetSearchParams,
    DataAssetSortBy,
    DataAssetState,
    DataAssetType,
    DataAssetUpdateParams,
    Source,
    Target,
    TransferDataParams,
)

from reconciler.emulator import codeocean_model as m
from reconciler.emulator.core import SANDBOX

BUCKET = "sandbox-bucket"
COMPUTATION = "c0a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b"


@pytest.fixture
def client(emulator, admin) -> CodeOcean:
    """The SDK as its users build it. Assets are ready at the first GET: the SDK's
    wait_until_ready sleeps at least 5 s between polls."""
    admin.post("/_emulator/config", json={"asset_ready_delay": 0}).raise_for_status()
    return CodeOcean(domain=emulator.url, token=SANDBOX["codeocean_token"])


def aws_params(name: str, prefix: str = "data", **extra) -> DataAssetParams:
    source = Source(aws=AWSS3Source(bucket=BUCKET, prefix=prefix, keep_on_external_storage=False, public=True))
    return DataAssetParams(name=name, tags=["sdk"], mount=name, source=source, **extra)


def ready(client: CodeOcean, params: DataAssetParams):
    asset = client.data_assets.create_data_asset(params)
    assert asset.state == DataAssetState.Draft
    sent: list[str] = []  # the SDK's HTTP requests, counted where it sends them

    def count(response, *args, **kwargs):
        sent.append(response.request.method)
    hooks = client.data_assets.client.hooks["response"]
    hooks.append(count)
    try:
        asset = client.data_assets.wait_until_ready(asset)
    finally:
        hooks.remove(count)
    assert sent == ["GET"]  # ready at the first poll: one GET, never its 5 s sleep and a second
    return asset


def test_create_wait_get_update_archive_and_delete(client):
    assets = client.data_assets
    asset = ready(client, aws_params("train", description="raw", custom_metadata={"modality": "EEG"}))
    assert asset.state == DataAssetState.Ready and asset.type == DataAssetType.Dataset
    assert (asset.files, asset.size) == (2, 34)
    assert asset.source_bucket.bucket == BUCKET and asset.source_bucket.external is False

    with pytest.raises(Error) as partial:  # seed 003: name, description, tags and mount are required
        assets.update_metadata(asset.id, DataAssetUpdateParams(name="train-v2", tags=["sdk", "v2"]))
    assert partial.value.status_code == 400 and partial.value.message.startswith("description")
    updated = assets.update_metadata(asset.id, DataAssetUpdateParams(name="train-v2", tags=["sdk", "v2"],
                                                                     description="raw", mount="train"))
    assert (updated.name, updated.tags, updated.description, updated.mount) == ("train-v2", ["sdk", "v2"],
                                                                                "raw", "train")
    assert updated.custom_metadata == {"modality": "EEG"}  # not sent (null): kept
    assert assets.get_data_asset(asset.id).name == "train-v2"

    assets.archive_data_asset(asset.id, True)
    archived = assets.search_data_assets(DataAssetSearchParams(archived=True)).results
    assert [a.id for a in archived] == [asset.id]
    assert assets.search_data_assets(DataAssetSearchParams()).results == []
    assets.archive_data_asset(asset.id, False)
    assert [a.id for a in assets.search_data_assets(DataAssetSearchParams()).results] == [asset.id]

    assets.delete_data_asset(asset.id)
    with pytest.raises(Error) as gone:
        assets.get_data_asset(asset.id)
    assert gone.value.status_code == 404 and gone.value.message


def test_a_failed_asset_comes_back_from_the_wait_with_its_reason(client):
    asset = ready(client, aws_params("empty", prefix="nothing-here"))
    assert asset.state == DataAssetState.Failed
    assert asset.failure_reason == f"no objects found in s3://{BUCKET}/nothing-here"


def test_the_search_iterator_walks_more_than_1000_assets_once_each(emulator, client, admin):
    store = emulator.emulator.store
    user = store.get(m.USER, SANDBOX["codeocean_user_id"])
    source = {"aws": {"bucket": BUCKET, "prefix": "data", "keep_on_external_storage": True, "public": False}}
    now = time.time()
    ids = {m.create_asset(store, user, {"name": f"bulk-{i:04d}", "tags": ["bulk"], "mount": "m", "source": source},
                          now=now)["id"] for i in range(1203)}
    admin.delete("/_emulator/requests")

    pages = client.data_assets.search_data_assets_iterator(
        DataAssetSearchParams(query="tag:bulk", limit=1000, offset=0))
    found = list(islice(pages, 3000))  # bounded: a paging bug would make the SDK loop forever
    assert len(found) == 1203 and {a.id for a in found} == ids
    assert all(a.state == DataAssetState.Ready for a in found)
    assert admin.get("/_emulator/requests").json()["counts"] == {"POST /api/v1/data_assets/search": 2}


def test_search_with_sdk_filters_and_sorting(client):
    assets = client.data_assets
    for name, subjects in (("few", 5), ("many", 500), ("none", None)):
        meta = {"subjects": subjects} if subjects is not None else None
        assets.create_data_asset(aws_params(name, custom_metadata=meta))
    in_range = DataAssetSearchParams(filters=[SearchFilter(key="subjects", range=SearchFilterRange(min=1, max=100))])
    assert [a.name for a in assets.search_data_assets(in_range).results] == ["few"]
    without = DataAssetSearchParams(filters=[SearchFilter(key="subjects", exclude=True)])
    assert [a.name for a in assets.search_data_assets(without).results] == ["none"]
    by_name = DataAssetSearchParams(sort_field=DataAssetSortBy.Name, sort_order=SortOrder.Descending)
    assert [a.name for a in assets.search_data_assets(by_name).results] == ["none", "many", "few"]


def test_permissions_get_and_update(client):
    assets = client.data_assets
    asset = assets.create_data_asset(aws_params("shared"))
    before = assets.get_permissions(asset.id)
    assert before.users == [UserPermissions(email=SANDBOX["codeocean_email"], role=UserRole.Owner)]
    assert before.everyone == EveryoneRole.None_
    assets.update_permissions(asset.id, Permissions(
        users=[UserPermissions(email="ann@lab.example", role=UserRole.Editor)],
        groups=[GroupPermissions(group="lab", role=GroupRole.Viewer)], everyone=EveryoneRole.Viewer))
    after = assets.get_permissions(asset.id)
    assert after.users == [UserPermissions(email="ann@lab.example", role=UserRole.Editor)]
    assert after.groups == [GroupPermissions(group="lab", role=GroupRole.Viewer)]
    assert after.everyone == EveryoneRole.Viewer
    # users only: the SDK sends "groups": null and "everyone": null, read as empty
    assets.update_permissions(asset.id, Permissions(users=[UserPermissions(email=SANDBOX["codeocean_email"],
                                                                           role=UserRole.Owner)]))
    only = assets.get_permissions(asset.id)
    assert only.users == [UserPermissions(email=SANDBOX["codeocean_email"], role=UserRole.Owner)]
    assert (only.groups, only.everyone) == ([], EveryoneRole.None_)


def test_the_sdk_scenario_create_permissions_with_users_only_archive_delete(client):
    """What a Code Ocean user's script does with the official SDK, its defaults untouched."""
    assets = client.data_assets
    asset = ready(client, aws_params("scenario"))
    assets.update_permissions(asset.id, Permissions(users=[
        UserPermissions(email=SANDBOX["codeocean_email"], role=UserRole.Owner),
        UserPermissions(email="ann@lab.example", role=UserRole.Viewer)]))
    assert [u.email for u in assets.get_permissions(asset.id).users] == [SANDBOX["codeocean_email"],
                                                                         "ann@lab.example"]
    assets.archive_data_asset(asset.id, True)
    assert [a.id for a in assets.search_data_assets(DataAssetSearchParams(archived=True)).results] == [asset.id]
    assets.delete_data_asset(asset.id)
    with pytest.raises(Error) as gone:
        assets.get_data_asset(asset.id)
    assert gone.value.status_code == 404


def test_files_list_and_urls_that_download_the_bytes(client):
    assets = client.data_assets
    asset = ready(client, aws_params("files"))
    listing = assets.list_data_asset_files(asset.id)
    assert [(i.name, i.type, i.size) for i in listing.items] == [("test.csv", "file", 14), ("train.csv", "file", 20)]
    urls = assets.get_data_asset_file_urls(asset.id, "train.csv")
    assert httpx.get(urls.download_url).content == b"x,y\n1,2\n2,4\n3,6\n4,8\n"
    assert httpx.get(urls.view_url).status_code == 200
    with pytest.warns(DeprecationWarning):
        old = assets.get_data_asset_file_download_url(asset.id, "test.csv")
    assert httpx.get(old.url).content == b"x,y\n5,10\n6,12\n"


def test_result_combined_and_transfer(client, admin):
    assets = client.data_assets
    result = ready(client, DataAssetParams(name="result", tags=[], mount="result",
                                           source=Source(computation=ComputationSource(id=COMPUTATION))))
    assert result.type == DataAssetType.Result and result.provenance.computation == COMPUTATION
    assert [i.path for i in assets.list_data_asset_files(result.id, "figures").items] == ["figures/loss.csv"]

    dataset = ready(client, aws_params("dataset"))
    combined = ready(client, DataAssetParams(name="both", tags=[], mount="both",
                                             data_asset_ids=[result.id, dataset.id]))
    assert combined.type == DataAssetType.Combined
    assert [c.id for c in combined.contained_data_assets] == [result.id, dataset.id]
    with pytest.raises(Error) as refused:
        assets.delete_data_asset(dataset.id)
    assert refused.value.status_code == 400 and "both" in refused.value.message

    assets.transfer_data_asset(result.id, TransferDataParams(target=Target(aws=AWSS3Target(bucket="moved",
                                                                                           prefix="r"))))
    moved = assets.get_data_asset(result.id)
    assert moved.source_bucket.external is True and moved.source_bucket.bucket == "moved"
    assert moved.last_transferred and moved.provenance.computation == COMPUTATION
    assert len(admin.get("/_emulator/s3/moved").json()["objects"]) == 2


def test_custom_metadata_schema_and_its_validation(client):
    schema = client.custom_metadata.get_custom_metadata()
    assert {f.name: f.type.value for f in schema.fields} == {"modality": "string", "subjects": "number",
                                                             "collected": "date", "lab": "string"}
    assert schema.fields[1].range.max == 100000 and schema.categories == ["Research"]
    with pytest.raises(Error) as bad:
        client.data_assets.create_data_asset(aws_params("bad", custom_metadata={"modality": "X-ray"}))
    assert bad.value.status_code == 400 and bad.value.message.startswith("custom_metadata.modality")


def test_a_wrong_token_is_an_sdk_error_401(emulator):
    with pytest.raises(Error) as denied:
        CodeOcean(domain=emulator.url, token="cop_wrong").custom_metadata.get_custom_metadata()
    assert denied.value.status_code == 401 and denied.value.message
