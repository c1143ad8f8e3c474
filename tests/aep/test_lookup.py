"""Names, lookups and the safe create, over real HTTP against the loopback test server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from aep import errors
from aep.client import PlatformClient
from aep.names import description_tag, resource_name
from tests.aep.server import Fault, TestServer

MakeClient = Callable[..., PlatformClient]
FLOW_BODY = {
    "flowSpec": {"id": "9753525b-82c7-4dce-8a9b-5ccfce2b9876", "version": "1.0"},
    "sourceConnectionIds": ["s"],
    "targetConnectionIds": ["t"],
}


def _flows_named(server: TestServer, name: str) -> list[str]:
    return [k for k, v in server.state.resources.get("flows", {}).items() if v.get("name") == name]


def test_names_are_prefix_plus_key() -> None:
    assert resource_name("aep-bridge", "stripe.charges") == "aep-bridge-stripe.charges"
    assert description_tag("aep-bridge", "capillary.profile") == "aep-bridge:capillary.profile"
    with pytest.raises(ValueError, match="configuration key"):
        resource_name("aep-bridge", "has space")
    with pytest.raises(ValueError, match="prefix"):
        resource_name("a,b", "x")


@pytest.mark.parametrize("drop", [False, True], ids=["commit-then-500", "commit-then-drop"])
def test_a_create_lost_after_commit_leaves_one_resource_and_returns_its_id(
    server: TestServer, make_client: MakeClient, drop: bool
) -> None:
    server.state.faults.append(
        Fault(method="POST", path=r"/flowservice/flows$", commit=True, status=500, drop=drop)
    )
    aep = make_client()
    name = resource_name("aep-bridge", "stripe.charges")
    result = aep.flows.flows.ensure(name, FLOW_BODY)
    assert _flows_named(server, name) == [result.id]
    assert result.created and result.recovered
    # the POST was sent once: the send path did not re-send the ambiguous create
    assert len(server.state.requests_to("POST", r"/flowservice/flows$")) == 1
    # and a second ensure finds it instead of creating
    again = aep.flows.flows.ensure(name, FLOW_BODY)
    assert again.id == result.id and not again.created
    assert len(_flows_named(server, name)) == 1


def test_a_create_that_failed_before_commit_is_created_again(
    server: TestServer, make_client: MakeClient
) -> None:
    server.state.faults.append(Fault(method="POST", path=r"/flowservice/flows$", status=502))
    aep = make_client()
    result = aep.flows.flows.ensure("aep-bridge-x", FLOW_BODY)
    assert _flows_named(server, "aep-bridge-x") == [result.id]
    assert result.created and not result.recovered
    assert len(server.state.requests_to("POST", r"/flowservice/flows$")) == 2


def test_an_unambiguous_refusal_is_not_retried(server: TestServer, make_client: MakeClient) -> None:
    server.state.faults.append(
        Fault(
            method="POST",
            path=r"/flows$",
            status=400,
            body={"type": "https://ns.adobe.com/aep/errors/FLOW-1413-400", "title": "bad spec"},
        )
    )
    aep = make_client()
    with pytest.raises(errors.BadRequestError) as info:
        aep.flows.flows.ensure("aep-bridge-y", FLOW_BODY)
    assert info.value.code == "https://ns.adobe.com/aep/errors/FLOW-1413-400"
    assert len(server.state.requests_to("POST", r"/flows$")) == 1


def test_listing_follows_links_next(server: TestServer, make_client: MakeClient) -> None:
    aep = make_client()
    ids = [aep.flows.flows.create({**FLOW_BODY, "name": f"f{i}"}).id for i in range(5)]
    assert [f.id for f in aep.flows.flows.list()] == ids
    pages = server.state.requests_to("GET", r"/flowservice/flows$")
    assert len(pages) == 3  # page size 2
    assert "continuationToken=4" in pages[-1].query


def test_two_resources_with_one_name_is_an_error_listing_both(
    server: TestServer, make_client: MakeClient
) -> None:
    aep = make_client()
    ids = [aep.flows.flows.create({**FLOW_BODY, "name": "dup"}).id for _ in range(3)]
    aep.flows.flows.create({**FLOW_BODY, "name": "other"})
    with pytest.raises(errors.AmbiguousMatch) as info:
        aep.flows.flows.find_by_name("dup")
    assert info.value.ids == ids  # across two pages
    assert all(i in str(info.value) for i in ids)
    with pytest.raises(errors.AmbiguousMatch):
        aep.flows.flows.ensure("dup", FLOW_BODY)
    assert len(_flows_named(server, "dup")) == 3


def test_catalog_create_lost_after_commit_returns_the_dataset(
    server: TestServer, make_client: MakeClient
) -> None:
    aep = make_client()
    for i in range(3):  # fill more than one page of other datasets
        aep.catalog.create_dataset({"name": f"other-{i}"})
    server.state.faults.append(
        Fault(method="POST", path=r"/catalog/dataSets$", commit=True, drop=True)
    )
    result = aep.catalog.ensure_dataset("aep-bridge-charges", {"schemaRef": {"id": "s"}})
    stored = [
        k
        for k, v in server.state.resources["dataSets"].items()
        if v["name"] == "aep-bridge-charges"
    ]
    assert stored == [result.id] and result.recovered
    assert len(result.id) == 24
    # lists are keyed by id, limited to 100 per page, paged with start
    listed = server.state.requests_to("GET", r"/catalog/dataSets$")
    assert all("limit=100" in s.query for s in listed)


def test_a_dropped_connection_is_a_connection_dropped_error(
    server: TestServer, make_client: MakeClient
) -> None:
    server.state.faults.append(Fault(method="GET", path=r"/flows$", drop=True))
    aep = make_client()
    with pytest.raises(errors.ConnectionDropped) as info:
        aep.http.request("GET", aep.flows.url("/flows"), idempotent=False)
    assert info.value.ambiguous
    assert "RemoteProtocolError" in str(info.value)


def test_a_mapping_set_tag_matches_whole_not_inside_a_longer_tag() -> None:
    from aep.mappings import MappingSet, with_tag

    def tagged(tag: str, description: str | None = None) -> MappingSet:
        body = with_tag({"mappings": [{"source": "a", "description": description}]}, tag)
        return MappingSet(id="m", mappings=body["mappings"])

    assert tagged("aep-bridge:stripe_payments").has_tag("aep-bridge:stripe_payments")
    assert tagged("aep-bridge:stripe_payments", "history").has_tag("aep-bridge:stripe_payments")
    # another key that extends this one, or another prefix that ends with this one
    assert not tagged("aep-bridge:stripe_payments_eu").has_tag("aep-bridge:stripe_payments")
    assert not tagged("staging-aep-bridge:stripe_payments").has_tag("aep-bridge:stripe_payments")
    assert not tagged("aep-bridge:stripe.charges.v2").has_tag("aep-bridge:stripe.charges")
    # a description that holds a longer tag still gets its own
    body = with_tag(
        {"mappings": [{"description": "[aep-bridge:stripe_payments_eu]"}]},
        "aep-bridge:stripe_payments",
    )
    assert MappingSet(id="m", mappings=body["mappings"]).has_tag("aep-bridge:stripe_payments")
