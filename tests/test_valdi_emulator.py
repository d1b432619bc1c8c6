"""The emulator's VALDI API over real HTTP, against the documented shapes (api-reference.md
part B, checklist E13-E20) and the choices in contracts/valdi.md."""
from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta

import httpx
import pytest

from reconciler.emulator.core import SANDBOX


def login(url: str, email: str = SANDBOX["valdi_email"], password: str = SANDBOX["valdi_password"]) -> dict:
    response = httpx.post(f"{url}/account/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def valdi(emulator):
    """An httpx client logged in as the sandbox account."""
    tokens = login(emulator.url)
    with httpx.Client(base_url=emulator.url, timeout=30,
                      headers={"Authorization": f"Bearer {tokens['access_token']}"}) as client:
        client.tokens = tokens
        yield client


def jwt_parts(token: str) -> tuple[dict, dict]:
    def part(text: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    header, payload, signature = token.split(".")
    assert signature
    return part(header), part(payload)


# -- auth ----------------------------------------------------------------------------------
def test_login_issues_jwts_with_the_valdi_layout_and_a_yyyymmddhhmmss_exp(emulator):
    tokens = login(emulator.url)
    assert tokens["token_type"] == "Bearer" and set(tokens) == {"access_token", "token_type", "refresh_token"}
    header, access = jwt_parts(tokens["access_token"])
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert set(access) == {"data", "purpose", "exp"} and access["purpose"] == "access_token"
    assert access["data"]["user_id"] == SANDBOX["valdi_user_id"]
    created = datetime.strptime(access["data"]["creation_time"], "%Y-%m-%d %H:%M:%S.%f")
    assert isinstance(access["exp"], int)
    exp = datetime.strptime(str(access["exp"]), "%Y%m%d%H%M%S")  # not Unix seconds
    assert timedelta(seconds=298) <= exp - created <= timedelta(seconds=300)
    assert abs(created - datetime.utcnow()) < timedelta(seconds=5)
    _, refresh = jwt_parts(tokens["refresh_token"])
    assert refresh["purpose"] == "refresh-token"
    assert datetime.strptime(str(refresh["exp"]), "%Y%m%d%H%M%S") - created > timedelta(days=29)


def test_account_needs_a_bearer_token_and_names_the_user(emulator, valdi):
    assert valdi.get("/account").json()["user_id"] == SANDBOX["valdi_user_id"]
    assert valdi.get("/account").json()["email"] == SANDBOX["valdi_email"]
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Token {valdi.tokens['access_token']}"},
                    {"Authorization": f"Bearer {valdi.tokens['refresh_token']}"}):
        response = httpx.get(f"{emulator.url}/account", headers=headers)
        assert response.status_code == 401 and isinstance(response.json()["detail"], str)
    tampered = valdi.tokens["access_token"][:-3] + ("AAA" if not valdi.tokens["access_token"].endswith("AAA") else "BBB")
    assert httpx.get(f"{emulator.url}/account", headers={"Authorization": f"Bearer {tampered}"}).status_code == 401


def test_a_wrong_password_is_a_401_with_detail(emulator):
    response = httpx.post(f"{emulator.url}/account/login",
                          json={"email": SANDBOX["valdi_email"], "password": "wrong"})
    assert response.status_code == 401 and response.json() == {"detail": "Incorrect email or password"}
    assert httpx.post(f"{emulator.url}/account/login", json={"email": "x@y"}).status_code == 400


def test_an_expired_access_token_is_refused_and_refresh_gives_a_working_one(emulator, admin, valdi):
    admin.post("/_emulator/config", json={"valdi_access_ttl": 1}).raise_for_status()
    fresh = login(emulator.url)
    headers = {"Authorization": f"Bearer {fresh['access_token']}"}
    assert httpx.get(f"{emulator.url}/account", headers=headers).status_code == 200
    time.sleep(1.05)
    response = httpx.get(f"{emulator.url}/account", headers=headers)
    assert response.status_code == 401 and response.json() == {"detail": "Token expired"}

    renewed = httpx.post(f"{emulator.url}/account/refresh_token", json={"token": fresh["refresh_token"]})
    assert renewed.status_code == 200 and set(renewed.json()) == {"access_token", "token_type"}
    headers = {"Authorization": f"Bearer {renewed.json()['access_token']}"}
    assert httpx.get(f"{emulator.url}/account", headers=headers).json()["user_id"] == SANDBOX["valdi_user_id"]

    for token in ("garbage", fresh["access_token"]):  # not a refresh token
        assert httpx.post(f"{emulator.url}/account/refresh_token", json={"token": token}).status_code == 401
    admin.post("/_emulator/config", json={"valdi_refresh_ttl": 0.5}).raise_for_status()
    assert httpx.post(f"{emulator.url}/account/refresh_token",
                      json={"token": fresh["refresh_token"]}).status_code == 401


def test_admin_seeds_another_account_that_sees_only_its_own_objects(emulator, admin):
    created = admin.post("/_emulator/valdi/users", json={"email": "other@valdi.example", "password": "pw-2"})
    assert created.status_code == 201 and created.json()["user_id"] != SANDBOX["valdi_user_id"]
    assert admin.post("/_emulator/valdi/users",
                      json={"email": "OTHER@valdi.example", "password": "x"}).status_code == 409
    tokens = login(emulator.url, "other@valdi.example", "pw-2")
    me = httpx.get(f"{emulator.url}/account", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.json()["user_id"] == created.json()["user_id"]


# -- devices --------------------------------------------------------------------------------
A, B, C = ("a45088e0-1681-446e-9a3e-3ed9dfc3d57e", "66730e5d-98d2-45f6-8aaa-6ad8cdcbc285",
           "bd3731eb-37c7-4577-817e-b8fe9dd02dfd")
FLAVOR, HOSTNODE = "94d76997-44ec-4f1e-8291-231de42b6030", "b2ce5479-fa59-483f-86ba-0aa128051821"


def devices(valdi) -> dict[str, list[dict]]:
    body = valdi.get("/v1/devices/available").json()
    return {p["provider_id"]: p["provider_devices"] for p in body["devices_by_provider"]}


def test_devices_list_four_providers_with_the_documented_field_types(valdi):
    found = devices(valdi)
    d = next(p for p in found if p.startswith("0a53cf4e-"))
    assert set(found) == {A, B, C, d}
    flavor = next(f for f in found[A] if f["flavor_id"] == FLAVOR)
    assert flavor["running_cost"] == "0.660000000000" and flavor["gpu_count"] == 1 and flavor["available"] > 0
    assert len(found[A]) == 3 and not any(k.startswith("_") for f in found[A] for k in f)
    node = next(n for n in found[B] if n["hostnode"] == HOSTNODE)
    assert node["gpu_code"] == "a100-pcie-80gb" and 21299 in node["available_port"]
    assert isinstance(node["cpu_cost"], float) and isinstance(node["gpu_cost"], str)  # mixed, as documented
    assert {"max_vcpus", "max_ram", "max_storage"} <= set(node) and len(found[B]) == 2
    shapes = found[C]
    assert len(shapes) == 2 and "vcpu-32_memory-192g_nvidia-rtx-3090-8" in {s["shape_code"] for s in shapes}
    assert all(isinstance(s["running_cost"], str) and s["shape_id"] for s in shapes)
    machines = found[d]
    assert len(machines) == 2 and {"ca-montreal-3"} <= {m["data_center_id"] for m in machines}
    assert all({"min_vcpu_per_memory_gib", "max_vcpus_per_memory_gib", "min_vcpu_per_gpu", "max_vcpu_per_gpu",
                "min_boot_disk_size", "max_gpu_count", "vcpu_cost", "ram_cost", "gpu_cost", "storage_cost"}
               <= set(m) for m in machines)


def test_shape_images_come_from_the_shape_endpoint(emulator, valdi):
    shape = next(s for s in devices(valdi)[C] if s["shape_code"].startswith("vcpu-32"))
    body = valdi.get(f"/v1/devices/available/{C}/{shape['shape_id']}").json()
    assert body["shape_code"] == shape["shape_code"]
    assert "2cd0e25f-a39e-4bc6-aa78-b4c40b87072a" in {i["id"] for i in body["available_images"]}
    assert all(set(i) == {"id", "name"} for i in body["available_images"])
    assert valdi.get(f"/v1/devices/available/{C}/nope").status_code == 404
    assert httpx.get(f"{emulator.url}/v1/devices/available").status_code == 401


# -- SSH keys ---------------------------------------------------------------------------------
PUBLIC_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGb0tLrM2sJ1m0d8mU5y8G4E6bX0fK2nq7N2s1Rk9p3Q "
              "me@laptop")


def add_key(valdi, name: str = "deploy", public_key: str | None = PUBLIC_KEY) -> str:
    body = {"name": name} if public_key is None else {"name": name, "public_key": public_key}
    response = valdi.post("/sshkeys/sshkey", json=body)
    assert response.status_code == 201, response.text
    return response.json()["ssh_key_id"]


def test_a_generated_key_returns_its_pem_once_and_is_listed_without_it(valdi):
    started = time.monotonic()
    response = valdi.post("/sshkeys/sshkey", json={"name": "generated"})
    assert time.monotonic() - started < 2
    assert response.status_code == 201
    body = response.json()
    assert body["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert body["private_key"].rstrip().endswith("-----END RSA PRIVATE KEY-----")
    listed = valdi.get("/sshkeys").json()["ssh_keys"]
    assert [set(k) for k in listed] == [{"name", "public_key", "ssh_key_id", "created_at"}]
    assert listed[0]["ssh_key_id"] == body["ssh_key_id"] and listed[0]["public_key"].startswith("ssh-rsa AAAA")
    assert "PRIVATE" not in json.dumps(listed)
    from cryptography.hazmat.primitives import serialization  # the pair really belongs together
    private = serialization.load_pem_private_key(body["private_key"].encode(), password=None)
    public = private.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert listed[0]["public_key"] == public.decode()


def test_an_uploaded_key_is_listed_as_given_duplicates_allowed_bad_keys_refused(valdi):
    first = valdi.post("/sshkeys/sshkey", json={"name": "deploy", "public_key": PUBLIC_KEY})
    assert first.status_code == 201 and first.json()["private_key"] is None
    second = add_key(valdi, "deploy")  # no unique constraint on names
    listed = valdi.get("/sshkeys").json()["ssh_keys"]
    assert [k["name"] for k in listed] == ["deploy", "deploy"] and listed[1]["ssh_key_id"] == second
    assert listed[0]["public_key"] == PUBLIC_KEY
    for bad in ("not a key", "ssh-rsa", "ssh-dss AAAAB3NzaC1kc3M=", "ssh-rsa !!!notbase64"):
        response = valdi.post("/sshkeys/sshkey", json={"name": "x", "public_key": bad})
        assert response.status_code == 400 and "public_key" in response.json()["detail"]
    assert valdi.post("/sshkeys/sshkey", json={"public_key": PUBLIC_KEY}).status_code == 400
    assert len(valdi.get("/sshkeys").json()["ssh_keys"]) == 2
