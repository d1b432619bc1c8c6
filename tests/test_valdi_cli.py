"""The official `valdi` CLI (0.2.5), unchanged, against the emulator's VALDI API.

The CLI's base URL is a class constant (checklist E20), so it is patched in-process; its
credentials file normally lives in site-packages, so Config.VALDI_CREDENTIALS_FILE is
pointed at a temporary absolute path (Path(site-packages) / absolute == absolute)."""
from __future__ import annotations

import getpass
import time
from datetime import datetime

import httpx
import jwt
import pytest
from conftest import api_calls

from reconciler.emulator.core import SANDBOX


@pytest.fixture
def cli(emulator, tmp_path, monkeypatch):
    """valdi's Config pointed at the emulator and a private credentials file."""
    from valdi.config.settings import Config
    credentials = tmp_path / ".valdi" / "credentials"
    monkeypatch.setattr(Config, "VALDI_BASE_URL", emulator.url)
    monkeypatch.setattr(Config, "VALDI_CREDENTIALS_FILE", str(credentials))
    return credentials


def login(url: str) -> dict:
    return httpx.post(f"{url}/account/login", json={"email": SANDBOX["valdi_email"],
                                                    "password": SANDBOX["valdi_password"]}).json()


def exp_of(token: str) -> datetime:
    return datetime.strptime(str(jwt.decode(token, options={"verify_signature": False})["exp"]), "%Y%m%d%H%M%S")


def test_a_stored_refresh_token_is_refreshed_and_the_account_read(emulator, admin, cli):
    from valdi.cli.authenticator import Authenticator
    cli.parent.mkdir()
    cli.write_text(login(emulator.url)["refresh_token"])
    admin.delete("/_emulator/requests")

    auth = Authenticator()

    assert auth.user_info["user_id"] == SANDBOX["valdi_user_id"]
    assert api_calls(admin) == {"POST /account/refresh_token": 1, "GET /account": 1}
    assert not Authenticator._is_token_expired(auth.access_token)  # the CLI reads our exp format


def test_login_with_email_and_password_writes_the_refresh_token(emulator, admin, cli, monkeypatch):
    from valdi.cli.authenticator import Authenticator
    prompts = []
    monkeypatch.setattr("builtins.input", lambda prompt: prompts.append(prompt) or SANDBOX["valdi_email"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: prompts.append(prompt) or SANDBOX["valdi_password"])

    auth = Authenticator()

    assert prompts == ["Account email: ", "Password: "]
    assert auth.user_info["user_id"] == SANDBOX["valdi_user_id"]
    stored = cli.read_text()
    assert jwt.decode(stored, options={"verify_signature": False})["purpose"] == "refresh-token"
    assert api_calls(admin) == {"POST /account/login": 1, "GET /account": 1}


def test_an_expired_refresh_token_makes_the_cli_log_in_again(emulator, admin, cli, monkeypatch, capsys):
    from valdi.cli.authenticator import Authenticator
    admin.post("/_emulator/config", json={"valdi_refresh_ttl": -5}).raise_for_status()
    cli.parent.mkdir()
    cli.write_text(login(emulator.url)["refresh_token"])  # born expired
    admin.post("/_emulator/config", json={"valdi_refresh_ttl": 3600}).raise_for_status()
    monkeypatch.setattr("builtins.input", lambda prompt: SANDBOX["valdi_email"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: SANDBOX["valdi_password"])
    admin.delete("/_emulator/requests")

    auth = Authenticator()

    assert "Your credentials have expired" in capsys.readouterr().out
    assert auth.user_info["user_id"] == SANDBOX["valdi_user_id"]
    assert api_calls(admin) == {"POST /account/login": 1, "GET /account": 1}
    assert not Authenticator._is_token_expired(cli.read_text())


def test_the_cli_refreshes_a_short_lived_access_token_before_the_emulator_refuses_it(emulator, admin, cli):
    from valdi.cli.authenticator import Authenticator
    admin.post("/_emulator/config", json={"valdi_access_ttl": 1}).raise_for_status()
    cli.parent.mkdir()
    cli.write_text(login(emulator.url)["refresh_token"])
    auth = Authenticator()
    first = auth._access_token
    while datetime.utcnow() <= exp_of(first):  # until the CLI itself sees it expired (<= 2 s)
        time.sleep(0.05)
    admin.delete("/_emulator/requests")

    assert auth._get_user_info()["user_id"] == SANDBOX["valdi_user_id"]

    assert auth._access_token != first
    assert api_calls(admin) == {"POST /account/refresh_token": 1, "GET /account": 1}


def test_volume_mount_targets_the_users_gateway_prefix(emulator, cli, tmp_path, monkeypatch):
    """`valdi volume mount` hands goofys valdi:<user_id>/<volume>; goofys itself is not run
    (the emulator's gateway serves presigned links, not the S3 protocol)."""
    from valdi.cli.authenticator import Authenticator
    from valdi.cli.volume_manager import VolumeManager
    from valdi.config.settings import Config
    cli.parent.mkdir()
    cli.write_text(login(emulator.url)["refresh_token"])
    recorded = tmp_path / "goofys-args"
    goofys = tmp_path / "goofys"
    goofys.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {recorded}\n')
    goofys.chmod(0o755)
    aws = tmp_path / "aws-credentials"
    aws.write_text("[datasets]\naws_access_key_id = x\naws_secret_access_key = y\n")
    monkeypatch.setattr(Config, "GOOFYS_EXE_FILE", str(goofys))
    monkeypatch.setattr(Config, "GOOFYS_CREDENTIALS_FILE", str(aws))

    VolumeManager(Authenticator()).mount_volume("datasets", str(tmp_path / "mnt"))

    args = recorded.read_text().split("\n")
    assert f"valdi:{SANDBOX['valdi_user_id']}/datasets" in args
