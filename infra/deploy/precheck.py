"""What `scripts/cdktf deploy|diff|destroy` checks first, before 20-35 s of synth and
`terraform init` (docs/deploy-and-operate.md, "Deploy"): the first problem is one line on
stderr, exit 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from infra.common.credentials import LOGIN, application_default
from infra.model.config import ConfigError, DeploymentConfig, load_environments
from infra.model.synthesized import pipeline_stack_id, project_stack_id

VERBS = ("deploy", "diff", "destroy")
EXAMPLE_PROJECT = "my-gcp-project"  # cdktf.json's placeholder
STORAGE = "https://storage.googleapis.com/storage/v1"


def adc() -> tuple[Any, str]:
    """Application Default Credentials and whose they are (None when there are none)."""
    credentials = application_default()
    return credentials, getattr(credentials, "service_account_email", "") or "your account"


def state_bucket_problem(credentials: Any, who: str, bucket: str) -> str | None:
    """None when `bucket` lists for these credentials (what Terraform's gcs backend does)."""
    import google.auth.exceptions
    import requests
    from google.auth.transport.requests import AuthorizedSession

    url = f"{STORAGE}/b/{bucket}/o?maxResults=1&prefix=terraform/"
    try:
        status = AuthorizedSession(credentials).get(url, timeout=15).status_code
    except google.auth.exceptions.RefreshError as e:
        return f"the Application Default Credentials are not accepted ({e}): run `{LOGIN}`"
    except requests.RequestException as e:
        return f"cannot reach Cloud Storage to read the state bucket {bucket}: {e}"
    if status == 404:
        return f'the state bucket {bucket} does not exist: create it ("Shared state" in the docs)'
    if status != 200:
        return f"{who} cannot list the state bucket {bucket} ({status}): grant it objectUser"
    return None


def problem(
    argv: Sequence[str],
    credentials: Callable[[], tuple[Any, str]] = adc,
    state_bucket: Callable[[Any, str, str], str | None] = state_bucket_problem,
) -> str | None:
    """The first thing that stops `scripts/cdktf argv...`, or None."""
    if not argv or argv[0] not in VERBS:
        return None
    try:
        configs = load_environments()
    except ConfigError as e:
        return str(e)
    named = {a for a in argv[1:] if not a.startswith("-")}
    chosen = [c for c in configs if named & {pipeline_stack_id(c), project_stack_id(c)}]
    for config in chosen or configs:
        if argv[0] == "destroy" and config.confirm_destroy_data != config.project:
            return _unconfirmed(config)
    creds, who = credentials()
    if creds is None:
        return (
            "no Application Default Credentials (Terraform's google provider needs them): "
            f"run `{LOGIN}`"
        )
    for config in chosen or configs:
        if config.project == EXAMPLE_PROJECT:
            return (
                f'"project" is {EXAMPLE_PROJECT!r}, the example: set your project id under '
                "context.pipeline in cdktf.json (or PIPELINE_PROJECT)"
            )
        if config.state_bucket and (found := state_bucket(creds, who, config.state_bucket)):
            return found
    return None


def _unconfirmed(config: DeploymentConfig) -> str:
    return (
        "destroy deletes the buckets with their objects, the topics and subscriptions with "
        "their messages (and a named environment's database): confirm with "
        f"PIPELINE_CONFIRM_DESTROY_DATA={config.project}"
    )


if __name__ == "__main__":
    found = problem(sys.argv[1:])
    if found:
        print(f"error: {found}", file=sys.stderr)
    sys.exit(2 if found else 0)
