"""Flow Service (`/data/foundation/flowservice`): specs, connections, flows, runs, explore."""

from __future__ import annotations

from functools import partial

from starlette.routing import BaseRoute, Route

from emulator.flowservice import connections, explore, flows, runs, specs_api

__all__ = ["routes"]


def _connection_routes(kind: str) -> list[BaseRoute]:
    return [
        Route(f"/{kind}", partial(connections.list_all, kind=kind), methods=["GET"]),
        Route(f"/{kind}", partial(connections.create, kind=kind), methods=["POST"]),
        Route(f"/{kind}/{{id}}", partial(connections.get_one, kind=kind), methods=["GET"]),
        Route(f"/{kind}/{{id}}", partial(connections.patch, kind=kind), methods=["PATCH"]),
        Route(f"/{kind}/{{id}}", partial(connections.delete, kind=kind), methods=["DELETE"]),
        # the spec puts base-connection PATCH and DELETE on `/connections/{id}/`
        Route(f"/{kind}/{{id}}/", partial(connections.patch, kind=kind), methods=["PATCH"]),
        Route(f"/{kind}/{{id}}/", partial(connections.delete, kind=kind), methods=["DELETE"]),
    ]


routes: list[BaseRoute] = [
    Route("/connectionSpecs", specs_api.connection_specs, methods=["GET"]),
    Route("/connectionSpecs/{id}", specs_api.connection_spec, methods=["GET"]),
    Route("/flowSpecs", specs_api.flow_specs, methods=["GET"]),
    Route("/flowSpecs/{id}", specs_api.flow_spec, methods=["GET"]),
    Route("/connections/{id}/explore", explore.explore, methods=["GET"]),
    Route("/connections/{id}/test", explore.test_connection, methods=["GET"]),
    *[r for kind in connections.KINDS for r in _connection_routes(kind)],
    Route("/flows", flows.list_all, methods=["GET"]),
    Route("/flows", flows.create, methods=["POST"]),
    Route("/flows/{id}", flows.get_one, methods=["GET"]),
    Route("/flows/{id}", flows.patch, methods=["PATCH"]),
    Route("/flows/{id}", flows.delete, methods=["DELETE"]),
    Route("/flows/{id}/action", flows.action, methods=["POST"]),
    Route("/runs", runs.list_all, methods=["GET"]),
    Route("/runs", runs.create, methods=["POST"]),
    Route("/runs/{id}", runs.get_one, methods=["GET"]),
]
