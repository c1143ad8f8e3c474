"""Exact failure shapes of the send path, behind httpx.MockTransport."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from aep import errors
from aep.auth import IMSAuth, TokenResponse
from aep.http import Http, HttpConfig, RetryPolicy

Handler = Callable[[httpx.Request], httpx.Response]
FAST = RetryPolicy(
    max_attempts=4, deadline_s=10, backoff_initial_s=0.001, backoff_max_s=0.002, jitter_s=0
)


class Recorder:
    """A handler that answers from a script and records what it was sent."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            return httpx.Response(200, json={"access_token": "T", "expires_in": 86399})
        self.requests.append(request)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def make(handler: Handler, *, retry: RetryPolicy = FAST, sleeps: list[float] | None = None) -> Http:
    config = HttpConfig(
        gateway_url="https://platform.test",
        ims_url="https://ims.test",
        inlet_url="https://dcs.test",
        org_id="ORG@AdobeOrg",
        sandbox="prod",
        client_id="cid",
        retry=retry,
    )
    http = Http(
        config,
        transport=httpx.MockTransport(handler),
        sleep=(sleeps.append if sleeps is not None else (lambda s: None)),
    )
    http.auth = IMSAuth(client_id="cid", client_secret="sec", scopes=["a"], fetch=http.fetch_token)
    return http


def test_an_ambiguous_post_is_not_retried_but_a_get_is() -> None:
    rec = Recorder(httpx.Response(503), httpx.Response(200, json={}))
    http = make(rec)
    with pytest.raises(errors.TransientServerError):
        http.request("POST", "https://platform.test/data/x", json={})
    assert len(rec.requests) == 1
    rec2 = Recorder(httpx.Response(503), httpx.Response(200, json={}))
    assert make(rec2).request("GET", "https://platform.test/data/x").status_code == 200
    assert len(rec2.requests) == 2


def test_a_post_declared_idempotent_is_retried() -> None:
    rec = Recorder(httpx.Response(500), httpx.Response(200, json={}))
    make(rec).request("POST", "https://platform.test/data/v", json={}, idempotent=True)
    assert len(rec.requests) == 2


def test_patch_is_not_retried_after_a_dropped_connection() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            return httpx.Response(200, json={"access_token": "T", "expires_in": 86399})
        calls.append(request)
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")

    with pytest.raises(errors.ConnectionDropped) as info:
        make(handler).request(
            "PATCH", "https://platform.test/data/f/1", json=[], headers={"If-Match": '"e"'}
        )
    assert info.value.ambiguous and len(calls) == 1
    assert calls[0].headers["if-match"] == '"e"'


def test_a_connect_error_is_retried_even_for_a_post() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            return httpx.Response(200, json={"access_token": "T", "expires_in": 86399})
        calls.append(1)
        if len(calls) == 1:
            raise httpx.ConnectError("refused")
        return httpx.Response(201, json={"id": "x"})

    assert make(handler).request("POST", "https://platform.test/data/x", json={}).status_code == 201
    assert len(calls) == 2


def test_501_is_not_retried() -> None:
    rec = Recorder(httpx.Response(501, json={"title": "Not Implemented"}))
    with pytest.raises(errors.ServerError) as info:
        make(rec).request("GET", "https://platform.test/data/x")
    assert not isinstance(info.value, errors.TransientServerError)
    assert len(rec.requests) == 1


def test_retry_after_as_http_date_and_backoff_otherwise() -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=3), usegmt=True)
    rec = Recorder(
        httpx.Response(429, headers={"Retry-After": when}),
        httpx.Response(502),
        httpx.Response(200, json={}),
    )
    sleeps: list[float] = []
    make(rec, sleeps=sleeps).request("GET", "https://platform.test/data/x")
    assert 1.5 < sleeps[0] <= 3.0
    assert 0 < sleeps[1] <= FAST.backoff_max_s + FAST.jitter_s
    assert len(rec.requests) == 3


def test_a_retry_after_beyond_the_cap_fails_at_once() -> None:
    rec = Recorder(httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(errors.RateLimited) as info:
        make(rec).request("GET", "https://platform.test/data/x")
    assert info.value.retry_after == 3600
    assert len(rec.requests) == 1


def test_backoff_is_capped_and_exponential() -> None:
    rec = Recorder(httpx.Response(504))
    sleeps: list[float] = []
    policy = RetryPolicy(
        max_attempts=6, deadline_s=1000, backoff_initial_s=1, backoff_max_s=4, jitter_s=0
    )
    with pytest.raises(errors.TransientServerError):
        make(rec, retry=policy, sleeps=sleeps).request("GET", "https://platform.test/data/x")
    assert sleeps == [1, 2, 4, 4, 4]


@pytest.mark.parametrize(
    ("status", "body", "headers", "cls", "code", "title", "rid"),
    [
        (
            403,
            {"error_code": "403010", "message": "Oauth token is missing."},
            {"x-request-id": "r1"},
            errors.ForbiddenError,
            "403010",
            "Oauth token is missing.",
            "r1",
        ),
        (
            404,
            {
                "type": "https://ns.adobe.com/aep/errors/FLOW-1439-404",
                "title": "Resource not found",
                "status": 404,
                "report": {"detailed-message": "flow x not found", "request-id": "r2"},
            },
            {},
            errors.NotFoundError,
            "https://ns.adobe.com/aep/errors/FLOW-1439-404",
            "Resource not found",
            "r2",
        ),
        (
            412,
            {
                "type": "https://ns.adobe.com/aep/errors/FLOW-1404-412",
                "title": "Version not matching",
            },
            {"x-request-id": "r3"},
            errors.PreconditionFailed,
            "https://ns.adobe.com/aep/errors/FLOW-1404-412",
            "Version not matching",
            "r3",
        ),
        (
            401,
            {
                "type": "https://ns.adobe.com/adobecloud/problem/data-collection-service-authorization",
                "status": "401",
                "title": "Authorization",
                "report": {"message": "Ims service token is empty"},
            },
            {},
            errors.AuthenticationError,
            "https://ns.adobe.com/adobecloud/problem/data-collection-service-authorization",
            "Authorization",
            None,
        ),
        (
            500,
            "<html>oops</html>",
            {},
            errors.TransientServerError,
            None,
            "Internal Server Error",
            None,
        ),
    ],
)
def test_error_bodies_are_parsed(
    status: int,
    body: object,
    headers: dict[str, str],
    cls: type[errors.HTTPStatusError],
    code: str | None,
    title: str,
    rid: str | None,
) -> None:
    response = (
        httpx.Response(status, json=body, headers=headers)
        if isinstance(body, dict)
        else httpx.Response(status, text=str(body), headers=headers)
    )
    rec = Recorder(response)
    with pytest.raises(cls) as info:
        make(rec, retry=RetryPolicy(max_attempts=1)).request(
            "GET", "https://platform.test/data/x", platform=status != 401
        )
    exc = info.value
    assert (exc.status, exc.code, exc.title, exc.request_id) == (status, code, title, rid)
    assert exc.method == "GET" and exc.url == "https://platform.test/data/x"


def test_a_non_json_success_is_a_format_error() -> None:
    http = make(Recorder(httpx.Response(200, text="not json", headers={"x-request-id": "r9"})))
    response = http.request("GET", "https://platform.test/data/x")
    with pytest.raises(errors.ResponseFormatError) as info:
        http.json(response)
    assert info.value.request_id == "r9"


def test_token_is_renewed_ahead_of_expiry_and_ms_lifetimes_are_read() -> None:
    now = [0.0]
    fetched: list[dict[str, str]] = []

    def fetch(form: object) -> TokenResponse:
        fetched.append(dict(form))  # type: ignore[call-overload]
        return TokenResponse(access_token=f"t{len(fetched)}", expires_in=86399994)  # ms!

    auth = IMSAuth(
        client_id="c", client_secret="s", scopes=["a", "b"], fetch=fetch, clock=lambda: now[0]
    )
    assert auth.token() == "t1"
    now[0] = 86000.0  # < lifetime (86400 s) - 300 s margin
    assert auth.token() == "t1"
    now[0] = 86200.0  # inside the margin: renewed ahead of expiry
    assert auth.token() == "t2"
    assert fetched[0]["scope"] == "a,b" and fetched[0]["grant_type"] == "client_credentials"


def test_many_threads_hitting_one_401_renew_once() -> None:
    fetched: list[int] = []
    lock = threading.Lock()

    def fetch(form: object) -> TokenResponse:
        with lock:
            fetched.append(1)
        return TokenResponse(access_token=f"t{len(fetched)}", expires_in=3600)

    auth = IMSAuth(client_id="c", client_secret="s", scopes=[], fetch=fetch)
    stale = auth.token()
    barrier = threading.Barrier(8)
    results: list[str] = []

    def worker() -> None:
        barrier.wait()
        results.append(auth.renew(stale))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(fetched) == 2  # the first token and one renewal
    assert set(results) == {"t2"}
    assert repr(auth) == "IMSAuth(client_id='c', client_secret='***')"


def test_a_delete_resent_after_a_drop_that_finds_nothing_counts_as_done() -> None:
    from pydantic import SecretStr

    from aep.client import PlatformClient
    from config.settings import PlatformSettings, Settings

    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            return httpx.Response(200, json={"access_token": "T", "expires_in": 86399})
        calls.append(request.method)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(404, json={"title": "Resource not found"})

    settings = Settings(
        platform=PlatformSettings(client_id="c", client_secret=SecretStr("s"), org_id="O@AdobeOrg")
    )
    client = PlatformClient(settings, transport=httpx.MockTransport(handler))
    assert client.flows.flows.delete("f1") is False
    assert calls == ["DELETE", "DELETE"]  # DELETE is idempotent: re-sent after the drop
    with pytest.raises(errors.NotFoundError):
        client.flows.flows.delete("f1", missing_ok=False)


def test_an_access_token_echoed_in_an_error_is_masked_in_the_error_and_the_bundle() -> None:
    import json

    token = "eyJhbGciOiJSUzI1NiJ9.an-ims-access-token"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            return httpx.Response(200, json={"access_token": token, "expires_in": 86399})
        echoed = request.headers["authorization"]
        return httpx.Response(400, json={"error_code": "400", "message": f"bad header {echoed}"})

    http = make(handler)
    with pytest.raises(errors.BadRequestError) as info:
        http.request("GET", "https://platform.test/data/x")
    assert token not in str(info.value) and "bad header Bearer ***" in str(info.value)
    assert token not in json.dumps(http.capture.bundle().asdict())


def test_a_next_link_to_another_host_is_followed_on_the_gateway_only() -> None:
    from aep.flows import FlowService

    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            return httpx.Response(200, json={"access_token": "T", "expires_in": 86399})
        hosts.append(request.url.host)
        if "continuationToken" not in request.url.query.decode():
            nxt = "https://elsewhere.test/data/foundation/flowservice/flows?continuationToken=2"
            return httpx.Response(
                200, json={"items": [{"id": "a"}], "_links": {"next": {"href": nxt}}}
            )
        return httpx.Response(200, json={"items": [{"id": "b"}]})

    flows = FlowService(make(handler))
    assert [f.id for f in flows.flows.list()] == ["a", "b"]
    assert hosts == ["platform.test", "platform.test"]  # the token never left for elsewhere


def test_data_access_downloads_a_batch_on_the_gateway_only() -> None:
    from aep.dataaccess import DataAccess

    hosts: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/ims/token/v3":
            return httpx.Response(200, json={"access_token": "T", "expires_in": 86399})
        hosts.append(request.url.host)
        path = request.url.path
        if path.endswith("/batches/b1/files"):
            link = "https://elsewhere.test/data/foundation/export/files/f1"
            return httpx.Response(200, json={"data": [{"_links": {"self": {"href": link}}}]})
        if path.endswith("/files/f1") and "path" not in request.url.query.decode():
            link = "/files/f1?path=part-00000.json"
            return httpx.Response(200, json={"data": [{"_links": {"self": {"href": link}}}]})
        if path.endswith("/files/f1"):
            return httpx.Response(200, text='{"id": 1}\n')
        return httpx.Response(404, json={"title": "not found"})

    access = DataAccess(make(handler))
    assert access.batch_texts("b1") == ['{"id": 1}\n']
    assert hosts == ["platform.test"] * 3  # a link naming another host never gets the token
