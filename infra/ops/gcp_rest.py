"""Google REST calls as preflight's checks make them: answers that never raise, and verdicts.
Every call goes through one `requests` session (in use, google-auth's `AuthorizedSession`),
so the tests replay recorded responses through a mounted transport.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import requests

from infra.model.config import DeploymentConfig

CRM = "https://cloudresourcemanager.googleapis.com/v1"
OK, FAIL, WARN, SKIP = "ok", "FAIL", "warn", "skip"


class Verdict(NamedTuple):
    """What a check finds, and the fix printed under a failure or a warning."""

    status: str
    detail: str
    fix: str = ""


def ok(detail: str) -> Verdict:
    return Verdict(OK, detail)


def fail(detail: str, fix: str) -> Verdict:
    return Verdict(FAIL, detail, fix)


def warn(detail: str, fix: str) -> Verdict:
    return Verdict(WARN, detail, fix)


@dataclass(frozen=True)
class Reply:
    """One REST answer: status code, parsed JSON body, and Google's error fields."""

    status: int
    body: Mapping[str, Any]

    @classmethod
    def of(cls, response: requests.Response) -> Reply:
        try:
            body = response.json()
        except ValueError:
            body = {"error": {"message": response.text[:300]}}
        return cls(response.status_code, body if isinstance(body, Mapping) else {})

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def message(self) -> str:
        return str(self.body.get("error", {}).get("message", f"HTTP {self.status}"))

    def _error_info(self) -> Mapping[str, Any]:
        for detail in self.body.get("error", {}).get("details", []):
            if detail.get("@type", "").endswith("google.rpc.ErrorInfo"):
                return dict(detail)
        return {}

    @property
    def reason(self) -> str:
        """The `ErrorInfo.reason` of a Google API error (e.g. SERVICE_DISABLED)."""
        return str(self._error_info().get("reason", ""))

    @property
    def quota_project(self) -> str:
        """The project an API error names as its consumer (where to enable the API)."""
        consumer = str(self._error_info().get("metadata", {}).get("consumer", ""))
        return consumer.removeprefix("projects/") if consumer.startswith("projects/") else ""


@dataclass
class Context:
    """What the checks share: settings, the synthesized stack, the caller and its session."""

    config: DeploymentConfig
    stack: Mapping[str, Any]
    session: requests.Session
    member: str = ""  # user:… or serviceAccount:… once known
    timeout: float = 30.0

    @property
    def project(self) -> str:
        return self.config.project

    def as_member(self) -> str:
        return self.member or "user:YOU@example.com"

    def get(self, url: str, **params: str) -> Reply:
        return self._call("GET", url, params=params or None)

    def post(self, url: str, body: Mapping[str, Any]) -> Reply:
        return self._call("POST", url, json=body)

    def _call(self, method: str, url: str, **kwargs: Any) -> Reply:
        import google.auth.exceptions

        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except google.auth.exceptions.RefreshError as exc:
            # The session could not get a fresh access token: the credentials are stale.
            return Reply(401, {"error": {"status": "UNAUTHENTICATED", "message": str(exc)}})
        except (requests.RequestException, google.auth.exceptions.TransportError) as exc:
            # No answer at all, from the API or from the token endpoint (offline, proxy, DNS).
            return Reply(0, {"error": {"message": f"cannot reach {url}: {exc}"}})
        return Reply.of(response)
