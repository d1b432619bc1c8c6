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
    before = datetime.utcnow()
    tokens = login(emulator.url)
    after = datetime.utcnow()
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
    before = datetime.utcnow()
    tokens = login(emulator.url)
    after = datetime.utcnow()
    assert tokens["token_type"] == "Bearer" and set(tokens) == {"access_token", "token_type", "refresh_token"}
    header, access = jwt_parts(tokens["access_token"])
    assert header == {"alg": "HS256", "typ": "JWT"}
    assert set(access) == {"data", "purpose", "exp"} and access["purpose"] == "access_token"
    assert access["data"]["user_id"] == SANDBOX["valdi_user_id"]
    created = datetime.strptime(access["data"]["creation_time"], "%Y-%m-%d %H:%M:%S.%f")
    assert isinstance(access["exp"], int)
    exp = datetime.strptime(str(access["exp"]), "%Y%m%d%H%M%S")  # not Unix seconds
    assert timedelta(seconds=298) <= exp - created <= timedelta(seconds=300)
    assert before <= created <= after  # stamped while the login ran
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
    token = valdi.tokens["access_token"]
    tampered = token[:-3] + ("BBB" if token.endswith("AAA") else "AAA")
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


def test_a_reset_keeps_the_sandbox_account_and_its_tokens_valid(emulator, admin, valdi):
    valdi.post("/volume", json={"bucket_name": "scratch"}).raise_for_status()
    admin.post("/_emulator/reset").raise_for_status()
    assert valdi.get("/account").json()["user_id"] == SANDBOX["valdi_user_id"]
    assert valdi.get("/volume").json() == {"volumes": []}


def test_admin_seeds_another_account_that_sees_only_its_own_objects(emulator, admin):
    created = admin.post("/_emulator/valdi/users", json={"email": "other@valdi.example", "password": "pw-2"})
    assert created.status_code == 201 and created.json()["user_id"] != SANDBOX["valdi_user_id"]
    assert admin.post("/_emulator/valdi/users",
                      json={"email": "OTHER@valdi.example", "password": "x"}).status_code == 409
    tokens = login(emulator.url, "other@valdi.example", "pw-2")
    other = httpx.Client(base_url=emulator.url, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert other.get("/account").json()["user_id"] == created.json()["user_id"]
    sandbox = httpx.Client(base_url=emulator.url,
                           headers={"Authorization": f"Bearer {login(emulator.url)['access_token']}"})
    volume = sandbox.post("/volume", json={"bucket_name": "mine"}).json()["volume_id"]
    sandbox.post("/sshkeys/sshkey", json={"name": "mine", "public_key": PUBLIC_KEY}).raise_for_status()
    assert other.get(f"/volume/{volume}").status_code == 404 and other.get("/volume").json() == {"volumes": []}
    assert other.get("/sshkeys").json() == {"ssh_keys": []}
    assert other.post("/volume", json={"bucket_name": "mine"}).status_code == 200  # names are per user


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
    response = valdi.post("/sshkeys/sshkey", json={"name": "generated"})
    assert response.status_code == 201
    body = response.json()
    assert body["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    assert body["private_key"].rstrip().endswith("-----END RSA PRIVATE KEY-----")
    listed = valdi.get("/sshkeys").json()["ssh_keys"]
    assert [set(k) for k in listed] == [{"name", "public_key", "ssh_key_id", "created_at"}]
    assert listed[0]["ssh_key_id"] == body["ssh_key_id"] and listed[0]["public_key"].startswith("ssh-rsa AAAA")
    assert "PRIVATE" not in json.dumps(listed)
    from cryptography.hazmat.primitives import (
        serialization,  # the pair really belongs together
    )
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


# -- VMs ------------------------------------------------------------------------------------------
def provision(valdi, provider_id: str, details: dict, name: str = "trainer") -> httpx.Response:
    return valdi.post("/v1/vm/provision", json={"provider_id": provider_id, "user_provided_name": name,
                                                "details": details})


def provisioned(valdi, provider_id: str, details: dict, name: str = "trainer") -> dict:
    response = provision(valdi, provider_id, details, name)
    assert response.status_code == 200, response.text
    assert response.json()["message"] == "success"
    return valdi.get(f"/v1/vm/{response.json()['server']}").json()


def assert_refused(response: httpx.Response, field: str, *allowed: str) -> None:
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith(f"details.{field}:"), detail
    assert "allowed" in detail and all(a in detail for a in allowed), detail


def test_flavor_provider_rules_and_an_all_inclusive_vm(valdi):
    key = add_key(valdi)
    vm = provisioned(valdi, A, {"flavor_id": FLAVOR, "ssh_key_id": key, "ipv4": True})
    assert vm["status"] == "provisioning" and vm["provider_id"] == A and vm["user_provided_name"] == "trainer"
    assert vm["all_inclusive"] is True and vm["all_inclusive_running_cost"] == "0.660000000000"
    assert vm["all_inclusive_stopped_cost"] == "0.100000000000" and vm["cpu_cost"] is None
    assert vm["flavor_id"] == FLAVOR and vm["ipv4"] is True and vm["ip"].count(".") == 3
    assert (vm["vcpus"], vm["ram"], vm["storage"], vm["gpu_count"]) == (6, 55, 500, 1)
    assert json.loads(vm["port_forwards"]) == {"22": "22", "443": "443", "80": "80"}
    assert vm["ssh_key_id"] == key and vm["name"].startswith("valdi-customer-")
    assert ":" in provisioned(valdi, A, {"flavor_id": FLAVOR, "ssh_key_id": key})["ip"]  # IPv6 only

    assert_refused(provision(valdi, A, {"flavor_id": "nope", "ssh_key_id": key}), "flavor_id", FLAVOR)
    assert_refused(provision(valdi, A, {"ssh_key_id": key}), "flavor_id", FLAVOR)
    assert provision(valdi, A, {"flavor_id": FLAVOR}).json()["detail"].startswith("details.ssh_key_id:")
    assert_refused(provision(valdi, A, {"flavor_id": FLAVOR, "ssh_key_id": "other"}), "ssh_key_id", key)
    assert_refused(provision(valdi, A, {"flavor_id": FLAVOR, "ssh_key_id": key, "ipv4": "yes"}), "ipv4")
    response = provision(valdi, "nope", {"flavor_id": FLAVOR})
    assert response.status_code == 400 and response.json()["detail"].startswith("provider_id:") and A in response.text


def b_details(**changes) -> dict:
    details = {"gpu_model": "a100-pcie-80gb", "operating_system": "Ubuntu 20.04 LTS",
               "external_ports": "{21297, 21298, 21299}", "internal_ports": "{22, 80, 443}", "gpu_count": 1,
               "password": "vm-pw-1", "hostnode": HOSTNODE, "storage": 256, "vcpus": 64, "ram": 128}
    details.update(changes)
    return {k: v for k, v in details.items() if v is not None}


def test_hostnode_provider_rules_component_costs_and_port_forwards(valdi):
    vm = provisioned(valdi, B, b_details())
    assert vm["all_inclusive"] is False and vm["all_inclusive_running_cost"] is None
    assert (vm["cpu_cost"], vm["ram_cost"], vm["storage_cost"], vm["gpu_cost"]) == (
        "0.224000000000", "0.320000000000", "0.051200000000", "2.044000000000")  # unit cost x amount
    assert json.loads(vm["port_forwards"]) == {"21297": "22", "21298": "80", "21299": "443"}
    assert vm["hostnode"] == HOSTNODE and vm["gpu_model"] == "a100-pcie-80gb" and "password" not in vm
    assert vm["ssh_key_id"] is None and vm["operating_system"] == "Ubuntu 20.04 LTS"

    assert_refused(provision(valdi, B, b_details(vcpus=63)), "vcpus", "2, 4, ... 128")
    assert_refused(provision(valdi, B, b_details(vcpus=130)), "vcpus")
    assert_refused(provision(valdi, B, b_details(ram=0)), "ram", "185")
    assert_refused(provision(valdi, B, b_details(operating_system="TensorML 20 Everything", storage=40)),
                   "storage", "60")
    assert_refused(provision(valdi, B, b_details(operating_system="Windows")), "operating_system",
                   "Ubuntu 22.04 LTS")
    assert_refused(provision(valdi, B, b_details(gpu_model="v100-pcie-16gb")), "gpu_model", "a100-pcie-80gb")
    assert_refused(provision(valdi, B, b_details(hostnode="nope")), "hostnode", HOSTNODE)
    assert_refused(provision(valdi, B, b_details(gpu_count=0)), "gpu_count")
    assert_refused(provision(valdi, B, b_details(external_ports="{1234}", internal_ports="{22}")),
                   "external_ports", "21299")
    assert provision(valdi, B, b_details(password=None)).json()["detail"] == \
        "details.password: password or ssh_key_id is required"
    assert provision(valdi, B, b_details(internal_ports="{22}")).json()["detail"].startswith(
        "details.internal_ports:")
    key = add_key(valdi)
    assert provisioned(valdi, B, b_details(password=None, ssh_key_id=key))["ssh_key_id"] == key


def test_shape_provider_needs_a_shape_code_and_an_image_of_that_shape(valdi):
    key = add_key(valdi)
    good = {"image_id": "2cd0e25f-a39e-4bc6-aa78-b4c40b87072a", "ssh_key_id": key,
            "config": "vcpu-32_memory-192g_nvidia-rtx-3090-8",
            "sec_group_rules": [{"protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                                 "direction": "ingress"}], "additional_storage": 128}
    vm = provisioned(valdi, C, good)
    assert vm["config"] == good["config"] and vm["image_id"] == good["image_id"]
    assert vm["all_inclusive_running_cost"] == "3.200000000000" and vm["gpu_count"] == 8 and vm["vcpus"] == 32
    assert vm["storage"] == 1000 + 128 and json.loads(vm["port_forwards"]) == {"22": "22"}

    assert_refused(provision(valdi, C, {**good, "config": "vcpu-1"}), "config",
                   "vcpu-8_memory-48g_nvidia-rtx-3090-2")
    assert_refused(provision(valdi, C, {**good, "image_id": "7f3c1e8a-5b2d-4f6e-8a9c-0d1e2f3a4b5c"}),
                   "image_id", good["image_id"])  # an image of the other shape only
    bad_rule = {**good["sec_group_rules"][0], "protocol": "sctp"}
    assert_refused(provision(valdi, C, {**good, "sec_group_rules": [bad_rule]}), "sec_group_rules[0].protocol",
                   "tcp")
    assert_refused(provision(valdi, C, {**good, "additional_storage": -1}), "additional_storage")


def test_machine_type_provider_enforces_its_ratio_limits(valdi):
    d = next(p for p in devices(valdi) if p.startswith("0a53cf4e-"))
    key = add_key(valdi)
    good = {"data_center_id": "ca-montreal-3", "machine_type": "sapphire-rapids-h100", "ssh_key_id": key,
            "boot_disk_size": 128, "vcpus": 4, "ram": 8, "gpu_count": 2}
    vm = provisioned(valdi, d, good)
    assert (vm["machine_type"], vm["data_center_id"], vm["storage"]) == ("sapphire-rapids-h100", "ca-montreal-3", 128)
    assert (vm["cpu_cost"], vm["ram_cost"], vm["gpu_cost"], vm["storage_cost"]) == (
        "0.032000000000", "0.016000000000", "4.780000000000", "0.019200000000")

    assert_refused(provision(valdi, d, {**good, "vcpus": 16}), "vcpus", "4 ... 8")  # > 1 vCPU per GiB
    assert_refused(provision(valdi, d, {**good, "vcpus": 2, "ram": 8}), "vcpus")  # < 2 per GPU
    assert_refused(provision(valdi, d, {**good, "gpu_count": 9}), "gpu_count", "8")
    assert_refused(provision(valdi, d, {**good, "boot_disk_size": 10}), "boot_disk_size", "32")
    assert_refused(provision(valdi, d, {**good, "machine_type": "cascade-lake-a100"}), "machine_type",
                   "sapphire-rapids-h100")
    assert_refused(provision(valdi, d, {**good, "data_center_id": "mars-1"}), "data_center_id", "ca-toronto-1")


def test_no_capacity_is_a_409_and_destroy_gives_the_capacity_back(valdi):
    key = add_key(valdi)
    scarce = next(f for f in devices(valdi)[A] if f["available"] == 1)
    details = {"flavor_id": scarce["flavor_id"], "ssh_key_id": key}
    first = provisioned(valdi, A, details)
    assert next(f for f in devices(valdi)[A] if f["flavor_id"] == scarce["flavor_id"])["available"] == 0
    response = provision(valdi, A, details, name="second")
    assert response.status_code == 409 and response.json()["detail"].startswith("no capacity")
    assert valdi.post(f"/v1/vm/destroy/{first['server']}").json() == {"message": "success"}
    provisioned(valdi, A, details, name="second")

    node = next(n for n in devices(valdi)[B] if n["hostnode"] == HOSTNODE)
    provisioned(valdi, B, b_details(gpu_count=node["gpu_count"]))
    assert next(n for n in devices(valdi)[B] if n["hostnode"] == HOSTNODE)["gpu_count"] == 0
    assert provision(valdi, B, b_details(gpu_count=1)).status_code == 409


def wait_for(valdi, server: str, status: str) -> bool:
    """Whether the VM comes to show the status (polled; gives up after 30 s, a hang, not a speed)."""
    deadline = time.monotonic() + 30
    while valdi.get(f"/v1/vm/{server}").json()["status"] != status:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_lifecycle_provisioning_running_stopped_running_destroyed(emulator, admin, valdi):
    admin.post("/_emulator/config", json={"vm_provision_delay": 0.5, "vm_start_delay": 0.4}).raise_for_status()
    vm = provisioned(valdi, B, b_details(gpu_count=8))
    server = vm["server"]
    assert vm["status"] == "provisioning"
    assert valdi.post(f"/v1/vm/stop/{server}").status_code == 409
    assert [v["server"] for v in valdi.get("/v1/vm").json()["virtual_machines"]] == [server]
    assert wait_for(valdi, server, "running")
    assert valdi.post(f"/v1/vm/start/{server}").json() == {"message": "success"}  # a no-op

    assert valdi.post(f"/v1/vm/stop/{server}").json() == {"message": "success"}
    stopped = valdi.get(f"/v1/vm/{server}").json()
    assert stopped["status"] == "stopped" and stopped["last_stopped_time"]
    # a stopped 66730e5d VM gives its GPUs back; someone takes them; it cannot start
    other = provisioned(valdi, B, b_details(gpu_count=8), name="other")
    response = valdi.post(f"/v1/vm/start/{server}")
    assert response.status_code == 409 and "no capacity" in response.json()["detail"]
    valdi.post(f"/v1/vm/destroy/{other['server']}").raise_for_status()

    assert valdi.post(f"/v1/vm/start/{server}").json() == {"message": "success"}
    started = valdi.get(f"/v1/vm/{server}").json()
    assert started["status"] == "starting" and started["last_restarted_time"]
    assert wait_for(valdi, server, "running")

    assert valdi.post(f"/v1/vm/destroy/{server}").json() == {"message": "success"}
    assert valdi.get(f"/v1/vm/{server}").status_code == 404
    assert valdi.get("/v1/vm").json() == {"virtual_machines": []}
    assert valdi.post(f"/v1/vm/destroy/{server}").status_code == 404
    assert admin.get("/_emulator/docs/valdi_vm").json()["items"] == []


def test_vm_fields_are_exactly_the_documented_ones_plus_the_provider_extras(valdi):
    vm = provisioned(valdi, B, b_details())
    documented = {"server", "ip", "provider_id", "ssh_key_id", "name", "user_provided_name", "gpu_count",
                  "gpu_model", "pretty_gpu_name", "vcpus", "ram", "storage", "operating_system", "port_forwards",
                  "all_inclusive", "cpu_cost", "ram_cost", "storage_cost", "gpu_cost",
                  "all_inclusive_running_cost", "all_inclusive_stopped_cost", "last_stopped_time",
                  "last_restarted_time", "created_at", "status"}
    assert set(vm) == documented | {"hostnode"}
    assert datetime.fromisoformat(vm["created_at"]).tzinfo is None and "." in vm["created_at"]
    assert isinstance(vm["port_forwards"], str)


# -- volumes --------------------------------------------------------------------------------------
def b64(path: str, *, pad: bool = False) -> str:
    text = base64.urlsafe_b64encode(path.encode()).decode()
    return text if pad else text.rstrip("=")


def make_volume(valdi, name: str = "datasets") -> dict:
    response = valdi.post("/volume", json={"bucket_name": name})
    assert response.status_code == 200, response.text
    return response.json()


def upload(valdi, volume_id: str, path: str, body: bytes) -> None:
    link = valdi.get(f"/volume/{volume_id}/upload/{b64(path)}").json()["upload_link"]
    response = httpx.put(link, content=body, headers={"Accept": "*/*", "Content-Type": ""})  # as documented
    assert response.status_code == 200, response.text


def listing(valdi, volume_id: str, **params) -> list[dict]:
    return valdi.get(f"/volume/{volume_id}", params={"include_contents": "True", **params}).json()["contents"]


def test_volume_keys_come_only_with_create_and_names_are_unique_per_user(valdi):
    created = make_volume(valdi)
    assert set(created) == {"volume_id", "bucket_name", "access_key_id", "secret_access_key", "created_at",
                            "deleted_at", "contents"}
    assert created["access_key_id"] and created["secret_access_key"] and created["contents"] is None
    listed = valdi.get("/volume").json()["volumes"]
    assert listed == [{**created, "access_key_id": None, "secret_access_key": None}]
    assert valdi.get(f"/volume/{created['volume_id']}").json() == listed[0]
    again = valdi.post("/volume", json={"bucket_name": "datasets"})
    assert again.status_code == 409 and "datasets" in again.json()["detail"]
    assert valdi.get("/volume/nope").status_code == 404
    assert valdi.post("/volume", json={}).status_code == 400


def test_upload_link_with_empty_content_type_then_contents_list_it_with_an_md5_etag(emulator, valdi, admin):
    volume = make_volume(valdi)["volume_id"]
    link = valdi.get(f"/volume/{volume}/upload/{b64('newsub1/data.csv')}").json()["upload_link"]
    assert link.startswith(f"{emulator.url}/gateway/valdi/{SANDBOX['valdi_user_id']}/datasets/newsub1/data.csv?")
    assert "AWSAccessKeyId=" in link and "Signature=" in link and "Expires=" in link
    body = b"a,b\n1,2\n"
    assert httpx.put(link, content=body, headers={"Content-Type": ""}).status_code == 200
    assert httpx.put(link.replace("Signature=", "Signature=x"), content=b"evil").status_code == 403
    # seed 002: "the Content-Type header should be empty"; it is signed as empty
    for ctype in ("application/octet-stream", "text/csv"):
        refused = httpx.put(link, content=b"other", headers={"Content-Type": ctype})
        assert refused.status_code == 403 and "Content-Type" in refused.json()["detail"]
    assert valdi.put(f"/volume/{volume}/folder/{b64('newsub1/newsub2')}").json() == {"message": "Folder created"}

    contents = listing(valdi, volume)
    assert [(c["path"], c["type"]) for c in contents] == [
        ("newsub1/", "folder"), ("newsub1/data.csv", "file"), ("newsub1/newsub2/", "folder")]
    import hashlib
    assert contents[1]["etag"] == hashlib.md5(body).hexdigest() and contents[1]["size"] == len(body)
    assert datetime.fromisoformat(contents[1]["last_modified"])
    assert [c["path"] for c in listing(valdi, volume, subdirs="newsub1/newsub2")] == []
    assert [c["path"] for c in listing(valdi, volume, subdirs="newsub1")] == ["newsub1/data.csv", "newsub1/newsub2/"]
    assert valdi.get(f"/volume/{volume}").json()["contents"] is None
    # the S3 admin surface sees the same objects
    keys = [o["key"] for o in admin.get("/_emulator/s3/valdi", params={"prefix": "8/datasets/"}).json()["objects"]]
    assert "8/datasets/newsub1/data.csv" in keys


def test_download_link_returns_the_bytes_and_missing_objects_are_404(valdi):
    volume = make_volume(valdi)["volume_id"]
    upload(valdi, volume, "model.bin", b"\x00\x01weights")
    link = valdi.get(f"/volume/{volume}/object/{b64('model.bin', pad=True)}").json()["download_link"]
    assert "X-Amz-Expires=3600" in link and "X-Amz-Signature=" in link
    assert "response-content-disposition=attachment" in link
    response = httpx.get(link)
    assert response.status_code == 200 and response.content == b"\x00\x01weights"
    assert "attachment" in response.headers["content-disposition"]
    assert httpx.get(link.replace("X-Amz-Signature=", "X-Amz-Signature=0")).status_code == 403
    assert valdi.get(f"/volume/{volume}/object/{b64('nope.bin')}").status_code == 404
    standard = base64.b64encode(b"model.bin").decode()  # the standard alphabet is accepted too
    assert valdi.get(f"/volume/{volume}/object/{standard}").status_code == 200
    assert valdi.get(f"/volume/{volume}/object/!!!").status_code == 400


def test_delete_obj_and_pre_and_the_whole_volume(valdi, admin):
    volume = make_volume(valdi)["volume_id"]
    for path in ("keep.txt", "runs/1/log.txt", "runs/2/log.txt"):
        upload(valdi, volume, path, path.encode())
    assert valdi.delete(f"/volume/{volume}/object/{b64('keep.txt')}").status_code == 400  # no path_type
    gone = valdi.delete(f"/volume/{volume}/object/{b64('runs/1/log.txt')}", params={"path_type": "OBJ"})
    assert gone.json() == {"message": "Successfully deleted"}
    assert valdi.delete(f"/volume/{volume}/object/{b64('runs/1/log.txt')}",
                        params={"path_type": "OBJ"}).status_code == 404
    assert valdi.delete(f"/volume/{volume}/object/{b64('runs')}", params={"path_type": "PRE"}).status_code == 200
    assert [c["path"] for c in listing(valdi, volume)] == ["keep.txt"]
    late_link = valdi.get(f"/volume/{volume}/upload/{b64('late.txt')}").json()["upload_link"]
    assert valdi.delete(f"/volume/{volume}").json() == {"message": "Successfully deleted"}
    assert httpx.put(late_link, content=b"too late").status_code == 404
    assert valdi.get(f"/volume/{volume}").status_code == 404 and valdi.get("/volume").json() == {"volumes": []}
    assert admin.get("/_emulator/s3/valdi", params={"prefix": "8/"}).json()["objects"] == []
    assert valdi.post("/volume", json={"bucket_name": "datasets"}).status_code == 200  # the name is free again


def test_state_survives_a_restart_of_the_emulator(tmp_path):
    from reconciler.emulator import EmulatorConfig, EmulatorServer
    data = tmp_path / "emulator"
    with EmulatorServer(data_dir=data, config=EmulatorConfig(vm_provision_delay=0.1)) as first:
        tokens = login(first.url)
        client = httpx.Client(base_url=first.url, headers={"Authorization": f"Bearer {tokens['access_token']}"})
        key = add_key(client)
        server = provisioned(client, A, {"flavor_id": FLAVOR, "ssh_key_id": key})["server"]
        volume = make_volume(client)["volume_id"]
        upload(client, volume, "a/b.txt", b"kept")
        link = client.get(f"/volume/{volume}/object/{b64('a/b.txt')}").json()["download_link"]
    with EmulatorServer(data_dir=data, config=EmulatorConfig(vm_provision_delay=0.1)) as second:
        client = httpx.Client(base_url=second.url,  # the old token is still good: the signing key is kept
                              headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert [k["ssh_key_id"] for k in client.get("/sshkeys").json()["ssh_keys"]] == [key]
        assert client.get(f"/v1/vm/{server}").json()["status"] == "running"
        assert [c["path"] for c in listing(client, volume)] == ["a/", "a/b.txt"]
        assert httpx.get(link.replace(first.url, second.url)).content == b"kept"
        assert len(client.get("/v1/devices/available").json()["devices_by_provider"]) == 4
