"""No secret reaches the log, an exception or a support bundle (real HTTP on loopback)."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from aep import errors
from aep.client import PlatformClient
from aep.redact import MASK, Redactor
from tests.aep.conftest import CLIENT_SECRET
from tests.aep.server import Fault, TestServer

MakeClient = Callable[..., PlatformClient]

SFTP_PASSWORD = "sftp-Pa55word-never-shown"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----\n"
)
PEM_B64 = base64.b64encode(PEM.encode()).decode()
STRIPE_KEY = "sk_test_51NotARealStripeKeyButLongEnough"


def _connection_body() -> dict[str, object]:
    return {
        "name": "aep-bridge-sftp",
        "connectionSpec": {"id": "b7bf2577-4520-42c9-bae9-cad01560f7bc", "version": "1.0"},
        "auth": {
            "specName": "SSH PublicKey Authentication for sftp",
            "params": {
                "host": "sftp.example.com",
                "port": 22,
                "userName": "aep",
                "privateKeyContent": PEM_B64,
                "passPhrase": "key-phrase-hidden",
                "password": SFTP_PASSWORD,
                "nested": {"accessToken": STRIPE_KEY},
            },
        },
    }


def _assert_clean(text: str, tokens: set[str]) -> None:
    for secret in [CLIENT_SECRET, SFTP_PASSWORD, PEM_B64, "key-phrase-hidden", STRIPE_KEY, *tokens]:
        assert secret not in text, f"secret leaked: {secret[:6]}..."
    assert "MIIEowIBAAKCAQEA" not in text


def test_no_secret_in_log_exception_or_bundle(
    server: TestServer, make_client: MakeClient, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    # the server fails the create and echoes the secret back in its error message
    server.state.faults.append(
        Fault(
            method="POST",
            path=r"/connections$",
            status=400,
            body={
                "error_code": "400001",
                "message": f"bad password {SFTP_PASSWORD} for client {CLIENT_SECRET}",
            },
        )
    )
    aep = make_client()
    with caplog.at_level(logging.DEBUG):
        list(aep.flows.connections.list())
        with pytest.raises(errors.BadRequestError) as info:
            aep.flows.connections.create(_connection_body())
        created = aep.flows.connections.create(_connection_body())  # fault used up: succeeds
        aep.flows.connections.get(created.id)  # the response body echoes auth.params
    tokens = set(server.state.tokens)
    assert tokens  # a token was issued and used

    exc_text = str(info.value) + repr(info.value)
    _assert_clean(exc_text, tokens)
    assert MASK in exc_text  # the echoed secret is masked, not dropped silently

    _assert_clean(caplog.text, tokens)

    bundle = aep.capture.bundle(resource_ids={"connection": created.id}, note="smoke failed")
    path = bundle.write(tmp_path / "bundle.json")
    text = path.read_text()
    _assert_clean(text, tokens)
    assert (path.stat().st_mode & 0o777) == 0o600
    data = json.loads(text)
    assert data["resource_ids"] == {"connection": created.id}
    posts = [
        x for x in data["exchanges"] if x["method"] == "POST" and x["url"].endswith("/connections")
    ]
    assert len(posts) == 2
    params = posts[1]["request_body"]["auth"]["params"]
    assert params["privateKeyContent"] == MASK and params["host"] == MASK
    assert params["nested"] == {"accessToken": MASK}
    assert posts[0]["request_id"] and posts[0]["status"] == 400
    assert posts[0]["timestamp"]
    assert all(x["request_headers"].get("authorization", MASK) == MASK for x in data["exchanges"])
    got = [x for x in data["exchanges"] if x["method"] == "GET" and created.id in x["url"]]
    assert got[0]["response_body"]["items"][0]["auth"]["params"]["password"] == MASK
    # the IMS form is captured without the client secret
    ims = [x for x in data["exchanges"] if x["url"].endswith("/ims/token/v3")]
    assert ims[0]["request_body"]["client_secret"] == MASK


def test_redactor_masks_by_field_and_by_value() -> None:
    r = Redactor(["configured-secret-1"])
    body = {
        "auth": {"specName": "x", "params": {"inletUrl": "https://x", "n": [1, {"a": "b"}]}},
        "clientSecret": "cs",
        "note": "contains configured-secret-1 inside",
        "encoded": base64.b64encode(b"configured-secret-1").decode(),
        "list": [{"password": "p"}],
    }
    out = r.json(body)
    assert out["auth"] == {"specName": "x", "params": {"inletUrl": MASK, "n": [MASK, {"a": MASK}]}}
    assert out["clientSecret"] == MASK
    assert out["note"] == f"contains {MASK} inside"
    assert out["encoded"] == MASK
    assert out["list"] == [{"password": MASK}]
    assert r.headers({"Authorization": "Bearer abc", "x-api-key": "k"}) == {
        "Authorization": MASK,
        "x-api-key": "k",
    }
    assert body["clientSecret"] == "cs"  # the input is not changed


def test_client_repr_shows_no_secret(make_client: MakeClient) -> None:
    aep = make_client()
    assert CLIENT_SECRET not in repr(aep) + repr(aep.auth) + repr(aep.settings)


def test_a_json_patch_of_auth_params_is_masked_by_field() -> None:
    redactor = Redactor()
    ops = [
        {
            "op": "replace",
            "path": "/auth/params",
            "value": {"host": "sftp.example.com", "serviceKey": "svc-Key-not-a-known-name"},
        },
        {"op": "replace", "path": "/auth/params/password", "value": "other-Pass-value"},
        {"op": "replace", "path": "/name", "value": "aep-bridge-sftp"},
    ]
    shown = json.dumps(redactor.json(ops, learn=True))
    assert "svc-Key-not-a-known-name" not in shown and "other-Pass-value" not in shown
    assert "sftp.example.com" not in shown  # every auth.params value, as in a create body
    assert "aep-bridge-sftp" in shown
    # a secret-named one is learnt, as from a create body: an echo in an error is masked too
    assert redactor.text("bad password other-Pass-value") == f"bad password {MASK}"
