"""Google REST responses as the APIs document them, replayed to `infra.ops.preflight`
through a requests transport mounted on google-auth's AuthorizedSession.

Bodies follow each method's reference page (Resource Manager v1 projects.get,
testIamPermissions, getEffectiveOrgPolicy; Cloud Billing projects.getBillingInfo; Firestore
databases.get; the OpenID userinfo endpoint) and Google's error model (`google.rpc.Status`
with `ErrorInfo`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import requests
from requests.adapters import BaseAdapter

PROJECT = "my-gcp-project"
NUMBER = "123456789012"
CRM = "https://cloudresourcemanager.googleapis.com/v1"


def error(code: int, status: str, message: str, reason: str = "", **metadata: str) -> dict:
    body: dict[str, Any] = {"error": {"code": code, "message": message, "status": status}}
    if reason:
        body["error"]["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                "metadata": metadata,
            }
        ]
    return body


def service_disabled(service: str, consumer: str = f"projects/{NUMBER}") -> tuple[int, dict]:
    return 403, error(
        403,
        "PERMISSION_DENIED",
        f"{service} API has not been used in project {NUMBER} before or it is disabled. "
        f"Enable it by visiting https://console.developers.google.com/apis/api/{service}/"
        f"overview?project={NUMBER} then retry.",
        "SERVICE_DISABLED",
        service=service,
        consumer=consumer,
    )


USERINFO = (200, {"sub": "1100", "email": "dev@example.com", "email_verified": True})
PROJECT_ACTIVE = (
    200,
    {
        "projectNumber": NUMBER,
        "projectId": PROJECT,
        "lifecycleState": "ACTIVE",
        "name": "My GCP Project",
        "createTime": "2026-01-05T10:00:00.000Z",
        "parent": {"type": "organization", "id": "998877665544"},
    },
)
PROJECT_DENIED = (
    403,
    error(
        403,
        "PERMISSION_DENIED",
        "The caller does not have permission",
    ),
)
BILLING_ON = (
    200,
    {
        "name": f"projects/{PROJECT}/billingInfo",
        "projectId": PROJECT,
        "billingAccountName": "billingAccounts/012345-567890-ABCDEF",
        "billingEnabled": True,
    },
)
BILLING_OFF = (
    200,
    {
        "name": f"projects/{PROJECT}/billingInfo",
        "projectId": PROJECT,
        "billingAccountName": "",
        "billingEnabled": False,
    },
)
FIRESTORE_NATIVE = (
    200,
    {
        "name": f"projects/{PROJECT}/databases/(default)",
        "uid": "6d3b5ab8-0f3e-4a7a-9d6c-1f2e3d4c5b6a",
        "createTime": "2026-01-05T10:05:00.000Z",
        "locationId": "nam5",
        "type": "FIRESTORE_NATIVE",
        "concurrencyMode": "PESSIMISTIC",
        "appEngineIntegrationMode": "DISABLED",
        "etag": "IMyW0fTp3YkDMKm4_aKp3YkD",
    },
)
FIRESTORE_MISSING = (
    404,
    error(
        404,
        "NOT_FOUND",
        f"The database '(default)' does not exist for project {PROJECT} Please visit "
        f"https://console.cloud.google.com/datastore/setup?project={PROJECT} to add a Cloud "
        "Datastore or Cloud Firestore database.",
    ),
)
POLICY_UNSET = (200, {"constraint": "constraints/x", "etag": "BwXhqFf1yP0="})


def list_policy(constraint: str, **list_policy: Any) -> tuple[int, dict]:
    return 200, {
        "version": 1,
        "constraint": f"constraints/{constraint}",
        "listPolicy": list_policy,
        "etag": "BwXhqFf1yP0=",
        "updateTime": "2026-01-02T09:00:00.000Z",
    }


Reply = tuple[int, Mapping[str, Any]]
Route = Reply | Callable[[requests.PreparedRequest], Reply]


class Recorded(BaseAdapter):
    """A transport answering from recordings keyed by (method, URL without query)."""

    def __init__(self, routes: Mapping[tuple[str, str], Route]) -> None:
        super().__init__()
        self.routes = dict(routes)
        self.requests: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.requests.append(request)
        url = str(request.url).split("?", 1)[0].replace("%28", "(").replace("%29", ")")
        route = self.routes.get((str(request.method), url))
        if route is None:
            raise AssertionError(f"unrecorded request {request.method} {url}")
        status, body = route(request) if callable(route) else route
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        response.headers["Content-Type"] = "application/json; charset=UTF-8"
        response.url = str(request.url)
        response.request = request
        return response

    def close(self) -> None:
        pass

    def bodies(self, url_suffix: str) -> list[dict[str, Any]]:
        return [
            json.loads(r.body or b"{}") for r in self.requests if str(r.url).endswith(url_suffix)
        ]


def by_constraint(policies: Mapping[str, Reply]) -> Callable[[requests.PreparedRequest], Reply]:
    """getEffectiveOrgPolicy answers per constraint named in the request body."""

    def answer(request: requests.PreparedRequest) -> Reply:
        constraint = json.loads(request.body or b"{}")["constraint"].removeprefix("constraints/")
        return policies.get(constraint, POLICY_UNSET)

    return answer


def granting(granted: Callable[[str], bool]) -> Callable[[requests.PreparedRequest], Reply]:
    """testIamPermissions: returns the asked permissions the caller holds."""

    def answer(request: requests.PreparedRequest) -> Reply:
        asked = json.loads(request.body or b"{}")["permissions"]
        held = [p for p in asked if granted(p)]
        return 200, ({"permissions": held} if held else {})

    return answer
