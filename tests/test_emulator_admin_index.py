"""The emulator explains itself: the banner's /_emulator/ is an index of the admin
endpoints (JSON, or a small HTML page for a browser), and an unknown kind under
/_emulator/docs/ is a 404 that names the kinds."""
from __future__ import annotations

from reconciler.emulator.admin_index import DESCRIPTIONS


def test_the_admin_index_lists_every_admin_endpoint_with_a_line_and_an_example(admin, emulator):
    r = admin.get("/_emulator/")  # the address the banner prints
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    listed = {e["path"]: e for e in admin.get("/_emulator/").json()["admin"]}
    every = {route.path.replace("{key:path}", "{key}") for route in emulator.app.app.routes
             if getattr(route, "path", "").startswith("/_emulator/")}
    assert set(listed) == every
    assert all(e["description"] and e["example"] for e in listed.values()), \
        [p for p, e in listed.items() if not e["description"]]
    assert "PUT" in listed["/_emulator/s3/{bucket}/{key}"]["methods"]
    assert set(DESCRIPTIONS) >= {p.replace("{key}", "{key:path}") for p in every}
    page = admin.get("/_emulator/", headers={"accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "/_emulator/s3/{bucket}/{key}" in page.text and emulator.url in page.text


def test_an_unknown_kind_is_a_404_naming_the_kinds(admin):
    assert admin.get("/_emulator/docs/valdi_vm").json() == {"items": []}  # known, none yet
    r = admin.get("/_emulator/docs/vm")
    assert r.status_code == 404
    assert "valdi_vm" in r.json()["detail"] and "co_asset" in r.json()["detail"]


def test_an_object_put_through_the_admin_api_can_be_adopted(admin):
    r = admin.put("/_emulator/s3/sandbox-bucket/new/x.csv", content=b"a,b\n1,2\n")
    assert r.status_code == 200 and r.json()["size"] == 8
    keys = [o["key"] for o in admin.get("/_emulator/s3/sandbox-bucket", params={"prefix": "new/"}).json()["objects"]]
    assert keys == ["new/x.csv"]
