"""The first GCP hour: an operator tool run against GCP without credentials, or where the
pipeline's APIs are off, answers in one line naming what to do and exits non-zero, never with
a traceback. Offline and deterministic: GOOGLE_APPLICATION_CREDENTIALS names a file that does
not exist, so google-auth stops before any network call (tests/infra runs the scripts too)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from google.api_core.exceptions import PermissionDenied
from google.rpc import error_details_pb2

from infra.ops import backfill, dead_letters, erase, smoke
from infra.ops import target as targets

PROJECT = "my-real-project"
TOOLS = {
    "smoke": (smoke.main, []),
    "smoke --project": (smoke.main, ["--project", PROJECT]),
    "backfill --execute": (backfill.main, ["--project", PROJECT, "--execute"]),
    "dead-letters list": (dead_letters.main, ["list", "--project", PROJECT]),
    "erase --execute": (erase.main, ["--project", PROJECT, "--metadata", "owner=a", "--execute"]),
}


@pytest.mark.parametrize("tool", TOOLS)
def test_without_credentials_a_tool_says_how_to_log_in(
    tool: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "no-such-key.json"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    main, argv = TOOLS[tool]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1, err
    assert err.startswith("error: no Application Default Credentials"), err
    assert "gcloud auth application-default login" in err and "Traceback" not in out + err


def _off(service: str) -> PermissionDenied:
    """Google's answer when an API is not enabled (google.rpc.ErrorInfo SERVICE_DISABLED)."""
    info = error_details_pb2.ErrorInfo(
        reason="SERVICE_DISABLED", domain="googleapis.com", metadata={"service": service}
    )
    return PermissionDenied(
        f"{service} API has not been used in project 1 before", details=[info], error_info=info
    )


def test_an_api_that_is_off_is_named_with_the_command_that_enables_it(capsys) -> None:
    args = argparse.Namespace(project=PROJECT, local=False, local_by_default=True, stack=None)

    def command(target: targets.Target) -> int:
        raise _off("firestore.googleapis.com")

    assert targets.run_tool(args, command) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"enable it: gcloud services enable firestore.googleapis.com --project {PROJECT}" in err


def test_a_project_without_the_pipeline_says_deploy_first(monkeypatch, capsys) -> None:
    import google.auth
    from google.auth.credentials import AnonymousCredentials

    answer: dict[str, Any] = {"error": {"code": 404, "message": "Resource not found"}}
    session = SimpleNamespace(
        get=lambda url, timeout: SimpleNamespace(status_code=404, json=lambda: answer, text="")
    )
    monkeypatch.setattr(google.auth, "default", lambda scopes: (AnonymousCredentials(), None))
    monkeypatch.setattr("google.auth.transport.requests.AuthorizedSession", lambda c: session)
    assert dead_letters.main(["list", "--project", PROJECT]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: no function imgpipe-make-thumbnail in {PROJECT}/us-central1: deploy the stack "
        'first (or set the region it is in: "region" in cdktf.json, or PIPELINE_REGION)\n'
    )


# backfill lists the uploads bucket first: the storage client retries until its deadline
# (10 s) and says "did not answer" (deadlines.Unavailable); these read the functions first.
OFFLINE = ("smoke", "smoke --project", "dead-letters list", "erase --execute")


@pytest.mark.parametrize("tool", OFFLINE)
def test_without_a_connection_to_google_a_tool_says_so_in_one_line(
    tool: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Credentials, but nothing answers: every HTTPS request goes to a proxy that is not there."""
    key = tmp_path / "adc.json"
    key.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "id.apps.googleusercontent.com",
                "client_secret": "secret",
                "refresh_token": "1//0refresh",
            }
        )
    )
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    for name in ("HTTPS_PROXY", "https_proxy"):  # the discard port: nothing listens
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    main, argv = TOOLS[tool]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert err.count("\n") == 1, err
    assert err.startswith("error: could not connect (") and "Traceback" not in out + err
