"""The one HTTP layer: retries with backoff on 429/5xx/drops, Retry-After honoured, a cap
on attempts, POSTs in doubt not retried blindly, errors that name API and endpoint but
never a credential, and debug logs with secrets redacted."""
from __future__ import annotations

import logging

import pytest

from reconciler.emulator.core import SANDBOX
from reconciler.errors import ApiError, AuthError, TransportError
from reconciler.providers.http import HttpApi, redact

TOKEN = SANDBOX["valohai_token"]


@pytest.fixture
def api(emulator):
    sleeps = []
    client = HttpApi("Valohai", emulator.url, headers={"Authorization": f"Token {TOKEN}"},
                     max_attempts=4, sleep=sleeps.append)
    client.sleeps = sleeps
    yield client
    client.close()


def fault(admin, **rule):
    admin.post("/_emulator/faults", json=rule)


def test_429_then_success_honours_retry_after(api, admin):
    fault(admin, pattern="GET /api/v0/users/me/", kinds=[429], times=2, retry_after=0.7)
    assert api.request("GET", "/api/v0/users/me/")["username"] == SANDBOX["valohai_username"]
    assert api.stats["retries"] == 2 and api.sleeps == [0.7, 0.7]


def test_500_and_drops_are_retried_for_reads_up_to_the_cap(api, admin):
    fault(admin, pattern="GET /api/v0/users/me/", kinds=[500, "drop"], times=10)
    with pytest.raises((ApiError, TransportError)) as err:
        api.request("GET", "/api/v0/users/me/")
    assert api.stats["requests"] == 4
    assert "Valohai GET /api/v0/users/me/" in str(err.value)


def test_a_post_in_doubt_is_not_retried(api, admin):
    fault(admin, pattern="POST /api/v0/data/metadata/apply/", kinds=["drop_after"], times=1)
    with pytest.raises(TransportError) as err:
        api.request("POST", "/api/v0/data/metadata/apply/", json={"datum_metadata": {}})
    assert err.value.in_doubt and api.stats["requests"] == 1


def test_errors_never_carry_the_credential(emulator, caplog):
    bad = HttpApi("Valohai", emulator.url, headers={"Authorization": "Token wrong-token-123"}, max_attempts=1)
    with caplog.at_level(logging.DEBUG, logger="reconciler.providers.http"):
        with pytest.raises(ApiError) as login:  # a wrong password: 400 from get-token
            bad.request("POST", "/api/v0/get-token/", data={"username": "sandbox", "password": "hunter2-pass"})
        with pytest.raises(AuthError) as err:
            bad.request("GET", "/api/v0/users/me/")
    text = str(login.value) + str(err.value) + caplog.text
    assert "wrong-token-123" not in text and "hunter2-pass" not in text
    assert "(redacted)" in caplog.text  # the password field in the debug log


def test_redact_masks_secret_fields_and_presigned_queries():
    masked = redact({"password": "p", "nested": {"secret_access_key": "k", "name": "ok"},
                     "url": "https://x/y?AWSAccessKeyId=AK&Signature=SIG&Expires=1"})
    assert masked["password"] == "(redacted)" and masked["nested"]["secret_access_key"] == "(redacted)"
    assert masked["nested"]["name"] == "ok" and "SIG" not in masked["url"] and "AK&" not in masked["url"]


def test_a_value_sent_under_a_secret_key_never_shows_in_a_later_error(api):
    """An answer that echoes its input (a validation message) quotes what was sent: a
    value sent under a secret's key is hidden from every message from then on."""
    from reconciler.config.sensitivity import scrub

    with pytest.raises(ApiError):
        api.request("POST", "/api/v0/data/metadata/apply/", json={"datum_metadata": "not a map",
                                                                  "details": {"password": "sent-pw-4c9e1a"}})
    assert "sent-pw-4c9e1a" not in scrub("the API said: password sent-pw-4c9e1a is too weak")


def test_a_retry_line_never_shows_a_secret_its_cause_quotes(caplog):
    """The cause of a retry may be any exception's text (the terminal line and --debug)."""
    from reconciler.config.sensitivity import register
    from reconciler.providers import http

    register("retry-canary-0b7d2e")
    told: list[str] = []
    remove = http.add_retry_hook(lambda api, endpoint, cause, attempt, delay: told.append(cause))
    try:
        with caplog.at_level(logging.DEBUG, logger="reconciler.providers.http"):
            http.report_retry("VALDI", "POST /v1/vm", "ValueError: bad name k-retry-canary-0b7d2e", 1, 0.5)
    finally:
        remove()
    assert told and "ValueError" in told[0] and "retry-canary-0b7d2e" not in told[0] + caplog.text
