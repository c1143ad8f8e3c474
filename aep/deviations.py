"""Where Adobe's tutorials and its OpenAPI specs disagree on a request's form: the one table.

The client sends what the tutorials send (that is what AEP is known to accept); the specs stay
authoritative for paths, fields and response shapes. Every request builder that is affected asks
this module for the form instead of hard-coding it, so a change of mind is one edit here.

Sources: "tutorial" = AdobeDocs/experience-platform.en pages (see
`/spec/adobe-openapi/README.md` and the seeds); "spec" = the OpenAPI files copied under
`spec/adobe-openapi/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DEVIATIONS",
    "Deviation",
    "explore_object_type",
    "flow_action_op",
    "mapping_version",
    "patch_op",
    "schedule_start_time",
    "sync_validation_param",
    "token_lifetime_s",
]


@dataclass(frozen=True)
class Deviation:
    """One disagreement between tutorial and spec, and what the client sends."""

    key: str
    tutorial: str
    spec: str
    sent: str
    tutorial_source: str
    spec_source: str


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        key="flow-action-op",
        tutorial="POST /flows/{id}/action?op=enable (or op=disable), no body, no subOp",
        spec="op enum ENABLE|DISABLE|FINALIZE_UPDATE|FINALIZE|PUBLISH and a `subOp` marked required",
        sent="op=enable / op=disable, lower case, no subOp",
        tutorial_source="help/destinations/api/update-destination-dataflows.md",
        spec_source="flow-service.yaml: /flows/{flowId}/action parameters op, subOp",
    ),
    Deviation(
        key="json-patch-op-case",
        tutorial='[{"op": "replace", "path": "/name", "value": ...}] (RFC 6902, lower case)',
        spec="PatchInstruction.op enum ADD|REPLACE|REMOVE (upper case)",
        sent="lower-case add|replace|remove",
        tutorial_source="help/sources/tutorials/api/update-dataflows.md",
        spec_source="flow-service.yaml: definitions/PatchInstruction",
    ),
    Deviation(
        key="schedule-start-time",
        tutorial='"startTime": "1625040887" (epoch seconds as a string)',
        spec="scheduleParams.startTime typed integer (epoch seconds)",
        sent="a string of epoch seconds",
        tutorial_source="help/sources/tutorials/api/collect/cloud-storage.md; seeds 000, 003",
        spec_source="flow-service.yaml: definitions/ScheduleParams",
    ),
    Deviation(
        key="mapping-version",
        tutorial='"mappingVersion": 0 (integer)',
        spec="transformations[].params.mappingVersion typed string",
        sent="an integer",
        tutorial_source="help/sources/tutorials/api/create/payments/stripe.md (seed 000); streaming/http.md",
        spec_source="flow-service.yaml: definitions/TransformationParams",
    ),
    Deviation(
        key="explore-object-type",
        tutorial="explore ?objectType=rest / root / folder / file (lower case)",
        spec="objectType enum ROOT|TABLE|FILE|FOLDER|REST (upper case)",
        sent="lower case",
        tutorial_source="help/sources/tutorials/api/create/payments/stripe.md; api/explore/cloud-storage.md",
        spec_source="flow-service.yaml: /connections/{connectionId}/explore objectType",
    ),
    Deviation(
        key="sync-validation-param",
        tutorial="?syncValidation=true (older pages: synchronousValidation=true)",
        spec="syncValidation query parameter",
        sent="syncValidation=true",
        tutorial_source="help/ingestion/quality/streaming-validation.md",
        spec_source="streaming-ingestion.yaml: /collection/{CONNECTION_ID}",
    ),
    Deviation(
        key="sftp-username-field",
        tutorial="auth.params.userName in every JSON example",
        spec="the tutorial's own parameter table says `username`",
        sent="userName",
        tutorial_source="help/sources/tutorials/api/create/cloud-storage/sftp.md",
        spec_source="same page, table of auth.params",
    ),
    Deviation(
        key="ims-scope-separator",
        tutorial="scope space-separated (Capillary connector page)",
        spec="IMS reference: scope comma-separated",
        sent="comma-separated",
        tutorial_source="help/sources/connectors/loyalty/capillary.md",
        spec_source="developer.adobe.com ServerToServerAuthentication/IMS",
    ),
    Deviation(
        key="ims-expires-in-unit",
        tutorial="expires_in 86399994 (milliseconds, Capillary page; old JWT exchange)",
        spec="IMS /ims/token/v3: expires_in in seconds (86399)",
        sent="n/a (read): seconds; a value above 10 days is taken as milliseconds",
        tutorial_source="help/sources/connectors/loyalty/capillary.md; help/landing/api-authentication.md",
        spec_source="developer.adobe.com ServerToServerAuthentication/IMS",
    ),
)
"""Every known tutorial/spec disagreement on a request form, with its sources."""

PatchOp = Literal["add", "replace", "remove"]

_TEN_DAYS_S = 10 * 86400


def flow_action_op(action: Literal["enable", "disable"]) -> dict[str, str]:
    """Query parameters of `POST /flows/{id}/action` (deviation `flow-action-op`)."""
    return {"op": action}


def patch_op(op: PatchOp) -> str:
    """The JSON Patch `op` value as sent (deviation `json-patch-op-case`)."""
    return op.lower()


def schedule_start_time(epoch_s: int) -> str:
    """`scheduleParams.startTime` as sent (deviation `schedule-start-time`)."""
    return str(int(epoch_s))


def mapping_version(version: int | str) -> int:
    """`transformations[].params.mappingVersion` as sent (deviation `mapping-version`)."""
    return int(version)


def explore_object_type(kind: Literal["root", "folder", "file", "rest", "table"]) -> str:
    """Explore's `objectType` as sent (deviation `explore-object-type`)."""
    return kind.lower()


def sync_validation_param() -> dict[str, str]:
    """The query parameter that asks DCS to validate synchronously."""
    return {"syncValidation": "true"}


def token_lifetime_s(expires_in: float) -> float:
    """A token lifetime in seconds (deviation `ims-expires-in-unit`)."""
    return expires_in / 1000.0 if expires_in > _TEN_DAYS_S else float(expires_in)
