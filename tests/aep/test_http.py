"""The send path over real HTTP on loopback: headers, 429 + Retry-After, 401 renewal, errors."""

from __future__ import annotations

import logging
import time

import pytest

from aep import errors
from aep.http import LOGGER_NAME, RetryPolicy
from tests.aep.conftest import CLIENT_ID, CLIENT_SECRET, ORG, SANDBOX, MakeHttp
from tests.aep.server import Fault, TestServer

ECHO = "/data/echo"


def test_every_platform_call_carries_the_four_headers(
    server: TestServer, make_http: MakeHttp
) -> None:
    http = make_http()
    http.request("GET", server.base_url + ECHO)
    http.request("POST", server.base_url + ECHO, json={"a": 1})
    calls = server.state.requests_to("GET", ECHO) + server.state.requests_to("POST", ECHO)
    assert len(calls) == 2
    for seen in calls:
        assert seen.headers["authorization"].startswith("Bearer tok-")
        assert seen.headers["x-api-key"] == CLIENT_ID
        assert seen.headers["x-gw-ims-org-id"] == ORG
        assert seen.headers["x-sandbox-name"] == SANDBOX
    assert "content-type" not in calls[0].headers
    assert calls[1].headers["content-type"] == "application/json"
    # the token came from the IMS form fields, once
    assert server.state.token_requests == 1
    form = server.state.token_forms[0]
    assert form == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "openid,AdobeID",
    }


def test_the_server_refuses_a_call_without_the_headers(
    server: TestServer, make_http: MakeHttp
) -> None:
    http = make_http()
    with pytest.raises(errors.ForbiddenError) as info:
        http.request("GET", server.base_url + ECHO, platform=False)
    assert info.value.status == 403
    assert info.value.code == "403010"


def test_429_with_retry_after_is_waited_out_and_retried(
    server: TestServer, make_http: MakeHttp
) -> None:
    server.state.faults.append(Fault(method="GET", path=ECHO, status=429, retry_after="1"))
    http = make_http()
    started = time.monotonic()
    response = http.request("GET", server.base_url + ECHO)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    calls = server.state.requests_to("GET", ECHO)
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 0.95
    assert elapsed >= 0.95


def test_429_is_retried_even_for_a_create_because_nothing_was_done(
    server: TestServer, make_http: MakeHttp
) -> None:
    server.state.faults.append(Fault(method="POST", path="/flows$", status=429, retry_after="0"))
    http = make_http()
    url = server.base_url + "/data/foundation/flowservice/flows"
    response = http.request("POST", url, json={"name": "x"})
    assert response.status_code == 201
    assert len(server.state.resources["flows"]) == 1


def test_retries_are_bounded_by_attempts(server: TestServer, make_http: MakeHttp) -> None:
    server.state.faults.append(Fault(method="GET", path=ECHO, status=503, times=10))
    http = make_http(
        retry=RetryPolicy(
            max_attempts=3, deadline_s=30, backoff_initial_s=0.01, backoff_max_s=0.02, jitter_s=0.0
        )
    )
    with pytest.raises(errors.TransientServerError) as info:
        http.request("GET", server.base_url + ECHO)
    assert info.value.status == 503
    assert len(server.state.requests_to("GET", ECHO)) == 3


def test_retries_stop_at_the_deadline(server: TestServer, make_http: MakeHttp) -> None:
    server.state.faults.append(
        Fault(method="GET", path=ECHO, status=429, retry_after="1", times=10)
    )
    http = make_http(retry=RetryPolicy(max_attempts=10, deadline_s=1.5))
    started = time.monotonic()
    with pytest.raises(errors.RateLimited):
        http.request("GET", server.base_url + ECHO)
    assert time.monotonic() - started < 2.5
    assert len(server.state.requests_to("GET", ECHO)) == 2


def test_a_401_causes_exactly_one_token_renewal(server: TestServer, make_http: MakeHttp) -> None:
    http = make_http()
    http.request("GET", server.base_url + ECHO)
    assert server.state.token_requests == 1
    server.state.revoke_tokens()
    http.request("GET", server.base_url + ECHO)
    assert server.state.token_requests == 2
    calls = server.state.requests_to("GET", ECHO)
    assert len(calls) == 3  # ok, 401, re-sent
    assert calls[1].headers["authorization"] != calls[2].headers["authorization"]
    # the renewed token is cached again
    http.request("GET", server.base_url + ECHO)
    assert server.state.token_requests == 2


def test_a_second_401_is_an_error_not_a_loop(server: TestServer, make_http: MakeHttp) -> None:
    server.state.faults.append(
        Fault(
            method="GET",
            path=ECHO,
            status=401,
            times=5,
            body={"error_code": "401013", "message": "Oauth token is not valid"},
        )
    )
    http = make_http()
    with pytest.raises(errors.AuthenticationError) as info:
        http.request("GET", server.base_url + ECHO)
    assert info.value.code == "401013"
    assert server.state.token_requests == 2  # the first token, then exactly one renewal
    assert len(server.state.requests_to("GET", ECHO)) == 2


def test_a_wrong_client_secret_is_a_token_error(server: TestServer, make_http: MakeHttp) -> None:
    http = make_http(secret="not-the-right-secret")
    with pytest.raises(errors.TokenError) as info:
        http.request("GET", server.base_url + ECHO)
    assert info.value.status == 401
    assert info.value.code == "invalid_client"
    assert "not-the-right-secret" not in str(info.value)


def test_errors_carry_status_code_title_and_request_id(
    server: TestServer, make_http: MakeHttp
) -> None:
    http = make_http()
    url = server.base_url + "/data/foundation/flowservice/flows/does-not-exist"
    with pytest.raises(errors.NotFoundError) as info:
        http.request("GET", url)
    exc = info.value
    assert exc.status == 404
    assert exc.code == "https://ns.adobe.com/aep/errors/FLOW-1439-404"
    assert exc.title == "Resource not found"
    assert exc.request_id and exc.request_id.startswith("req-")
    assert exc.method == "GET"
    assert exc.url == url
    assert exc.request_id in str(exc)
    assert not exc.retryable


def test_a_connect_error_is_retried_then_raised_typed(
    make_http: MakeHttp, server: TestServer
) -> None:
    http = make_http(
        retry=RetryPolicy(
            max_attempts=2, deadline_s=5, backoff_initial_s=0.01, backoff_max_s=0.01, jitter_s=0
        )
    )
    http.request("GET", server.base_url + ECHO)  # token first
    from tests.aep.server import free_port

    with pytest.raises(errors.ConnectError) as info:
        http.request("GET", f"http://127.0.0.1:{free_port()}/data/x")
    assert info.value.retryable and not info.value.ambiguous


def test_one_log_line_per_request(
    server: TestServer, make_http: MakeHttp, caplog: pytest.LogCaptureFixture
) -> None:
    server.state.faults.append(Fault(method="GET", path=ECHO, status=429, retry_after="0"))
    http = make_http()
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        http.request("GET", server.base_url + ECHO)
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]
    request_lines = [line for line in lines if "request-id=" in line]
    # token, 429, retried 200
    assert len(request_lines) == 3
    assert request_lines[1].startswith(f"GET {server.base_url}{ECHO} 429 ")
    assert request_lines[2].startswith(f"GET {server.base_url}{ECHO} 200 ")
    assert "request-id=req-" in request_lines[2]
