"""Application Default Credentials, looked up one way by the deploy precheck, preflight and the
operator tools."""

from __future__ import annotations

from typing import Any

LOGIN = "gcloud auth application-default login"
CLOUD_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


def application_default(*, required: bool = False) -> Any:
    """The Application Default Credentials for Google's APIs. None when this machine has none,
    unless `required`: then google-auth's DefaultCredentialsError, which says where it looked."""
    import google.auth
    import google.auth.exceptions

    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        if required:
            raise
        return None
    return credentials
