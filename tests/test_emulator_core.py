"""The emulator's shared machinery: persistence, faults, request log, JSON errors."""
import httpx
import pytest

from reconciler.emulator import EmulatorServer


def test_state_survives_restart(tmp_path):
    with EmulatorServer(data_dir=tmp_path) as first:
        httpx.put(f"{first.url}/_emulator/s3/bkt/a/b.txt", content=b"hello")
    with EmulatorServer(data_dir=tmp_path) as second:
        listing = httpx.get(f"{second.url}/_emulator/s3/bkt").json()
    assert listing == {"objects": [{"key": "a/b.txt", "size": 5}]}


def test_unknown_path_is_json_404(admin):
    r = admin.get("/no/such/path")
    assert r.status_code == 404
    assert r.json()["detail"] == "Not found."


def test_injected_429_carries_retry_after_and_is_logged(admin):
    admin.post("/_emulator/faults", json={"pattern": "GET /x$", "kinds": [429], "times": 1})
    first = admin.get("/x")
    second = admin.get("/x")
    assert first.status_code == 429 and first.headers["retry-after"]
    assert second.status_code == 404
    assert admin.get("/_emulator/requests").json()["counts"]["GET /x"] == 2


def test_injected_drop_breaks_the_connection(admin):
    admin.post("/_emulator/faults", json={"pattern": "GET /y$", "kinds": ["drop"], "times": 1})
    with pytest.raises(httpx.RemoteProtocolError):
        admin.get("/y")


def test_bad_fault_is_400(admin):
    r = admin.post("/_emulator/faults", content=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


@pytest.mark.parametrize("headers, content, status", [
    ({"Origin": "https://evil.example", "Content-Type": "application/json"}, b"{}", 403),
    ({"Origin": "null", "Content-Type": "application/json"}, b"{}", 403),
    ({"Content-Type": "text/plain"}, b'{"latency_ms": 5000}', 415),
    ({"Content-Type": "application/x-www-form-urlencoded"}, b"latency_ms=5000", 415),
], ids=["foreign-origin", "null-origin", "text-plain", "form"])
def test_a_web_page_cannot_reconfigure_the_emulator(admin, headers, content, status):
    before = admin.get("/_emulator/config").json()
    r = admin.post("/_emulator/config", content=content, headers=headers)
    assert r.status_code == status
    assert admin.post("/_emulator/reset", headers={"Origin": "https://evil.example"}).status_code == 403
    assert admin.get("/_emulator/config").json() == before
    # the same origin and JSON still work
    own = str(admin.base_url).rstrip("/")
    assert admin.post("/_emulator/config", json={"latency_ms": 0}, headers={"Origin": own}).status_code == 200
