"""scripts/preflight over recorded Google responses: each check's pass and fail paths and
the fix it prints, through google-auth's AuthorizedSession with a replaying transport."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import pytest
import requests
from google.auth.transport.requests import AuthorizedSession, Request
from google.oauth2.credentials import Credentials
from preflight_recordings import (
    BILLING_OFF,
    BILLING_ON,
    CRM,
    FIRESTORE_MISSING,
    FIRESTORE_NATIVE,
    PROJECT,
    PROJECT_ACTIVE,
    PROJECT_DENIED,
    USERINFO,
    Recorded,
    by_constraint,
    error,
    granting,
    list_policy,
    service_disabled,
)

from infra.model.apply_permissions import required_permissions
from infra.ops import preflight

FIRESTORE = "https://firestore.googleapis.com/v1"


def member(account: str) -> dict[str, Any]:
    return {"project": PROJECT, "role": "roles/pubsub.publisher", "member": account}


def fn(name: str, ingress: str) -> dict[str, Any]:
    return {"name": name, "service_config": {"ingress_settings": ingress}}


# A small stack with the shape of the synthesized one (types, ingress, IAM members).
STACK: dict[str, Any] = {
    "data": {"google_project": {"identities_project": {"project_id": PROJECT}}},
    "resource": {
        "google_project_service": {"apis_run": {"service": "run.googleapis.com"}},
        "google_storage_bucket": {"storage_uploads": {"name": f"{PROJECT}-imgpipe-uploads"}},
        "google_service_account": {"identities_push-invoker": {"account_id": "imgpipe-push"}},
        "google_pubsub_subscription": {"pubsub_cleanup": {"name": "imgpipe-cleanup"}},
        "google_pubsub_topic_iam_member": {
            "agent": member(
                "serviceAccount:service-${data.google_project.identities_project.number}"
                "@gcp-sa-pubsub.iam.gserviceaccount.com"
            ),
            "fn": member("${google_service_account.identities_push-invoker.member}"),
        },
        "google_cloudfunctions2_function": {
            "functions_make_thumbnail": fn("imgpipe-make-thumbnail", "ALLOW_INTERNAL_ONLY"),
            "functions_cleanup": fn("imgpipe-cleanup", "ALLOW_INTERNAL_ONLY"),
        },
    },
}


def healthy() -> dict[tuple[str, str], Any]:
    """Every recorded answer of a project ready for the stack."""
    return {
        ("GET", "https://openidconnect.googleapis.com/v1/userinfo"): USERINFO,
        ("GET", f"{CRM}/projects/{PROJECT}"): PROJECT_ACTIVE,
        ("GET", f"https://cloudbilling.googleapis.com/v1/projects/{PROJECT}/billingInfo"): (
            BILLING_ON
        ),
        ("POST", f"{CRM}/projects/{PROJECT}:testIamPermissions"): granting(lambda p: True),
        ("GET", f"{FIRESTORE}/projects/{PROJECT}/databases/(default)"): FIRESTORE_NATIVE,
        ("POST", f"{CRM}/projects/{PROJECT}:getEffectiveOrgPolicy"): by_constraint({}),
        ("GET", MANAGED_POLICY): (200, {"name": MANAGED_POLICY.split("/v2/")[1].split(":")[0]}),
    }


def run(
    routes: Mapping[tuple[str, str], Any] | None = None,
    settings: Mapping[str, str] | None = None,
    stack: Mapping[str, Any] = STACK,
    credentials: Any = "token",
    monkeypatch: pytest.MonkeyPatch | None = None,
) -> tuple[int, str, Recorded]:
    """Runs `scripts/preflight` (its main) against recorded answers."""
    transport = Recorded(routes if routes is not None else healthy())
    creds = Credentials(token="ya29.recorded") if credentials == "token" else credentials
    # Token refreshes go through the same recorded transport as the API calls.
    auth_session = requests.Session()
    auth_session.mount("https://", transport)
    session = (
        AuthorizedSession(creds, auth_request=Request(session=auth_session))
        if creds is not None
        else requests.Session()
    )
    session.mount("https://", transport)
    out = io.StringIO()
    # The recorded project already has its (default) database, so unless a test says
    # otherwise the settings say so too (the stack's default creates one).
    settings = {"create_firestore_database": "false", **(settings or {})}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in settings.items():
            (monkeypatch or patch).setenv(f"PIPELINE_{key.upper()}", value)
        code = preflight.main(
            ["--project", PROJECT],
            out=out,
            connect=lambda: (creds, session),
            synth=lambda config, out: stack,
        )
    return code, out.getvalue(), transport


def line(text: str, check: str) -> str:
    """The result line of one check and its fix lines."""
    lines = text.splitlines()
    for i, current in enumerate(lines):
        if current[6:].startswith(check + " ") or current[6:].rstrip() == check:
            rest = [current]
            for following in lines[i + 1 :]:
                if not following.startswith(" " * 6 + "fix:"):
                    break
                rest.append(following)
            return "\n".join(rest)
    raise AssertionError(f"no line for {check!r} in:\n{text}")


def test_a_ready_project_passes_every_check():
    code, text, transport = run()
    assert code == 0, text
    assert text.rstrip().endswith("preflight: ready to deploy")
    assert "user dev@example.com" in line(text, "credentials")
    assert f"{PROJECT} (number 123456789012)" in line(text, "project")
    assert "billingAccounts/012345-567890-ABCDEF" in line(text, "billing")
    assert "(default) in native mode, nam5" in line(text, "firestore")
    for constraint in (
        "gcp.resourceLocations",
        "run.allowedIngress",
        "cloudfunctions.allowedIngressSettings",
        "iam.allowedPolicyMemberDomains",
    ):
        assert line(text, f"org policy {constraint}").startswith("ok")
    # The permissions asked are exactly those derived from the stack's types.
    (asked,) = transport.bodies(":testIamPermissions")
    assert asked["permissions"] == [r.permission for r in required_permissions(STACK)]
    assert "iam.serviceAccounts.actAs" in asked["permissions"]
    assert "holds all" in line(text, "permissions")
    # The bearer token of the credentials went with every Google request.
    assert all(r.headers["authorization"] == "Bearer ya29.recorded" for r in transport.requests)


def test_no_credentials_stops_the_project_checks():
    code, text, transport = run(credentials=None)
    assert code == 1
    assert "fix: gcloud auth application-default login" in line(text, "credentials")
    assert line(text, "billing").startswith("skip")
    assert transport.requests == []


def stale(token: str | None = None) -> Credentials:
    """A user's credentials whose access token is gone or expired: they will be refreshed."""
    return Credentials(
        token=token,
        refresh_token="1//0refresh",
        token_uri="https://oauth2.googleapis.com/token",
        client_id="764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com",
        client_secret="d-FL95Q19q7MQmFpd7hHD0Ty",
    )


def test_rejected_credentials_ask_for_a_new_login():
    """An expired token whose refresh Google refuses (reauthentication required)."""
    routes = healthy()
    routes["GET", "https://openidconnect.googleapis.com/v1/userinfo"] = (
        401,
        error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
    )
    routes["POST", "https://oauth2.googleapis.com/token"] = (
        400,
        {"error": "invalid_grant", "error_description": "reauth related error (invalid_rapt)"},
    )
    code, text, transport = run(routes, credentials=stale("ya29.expired"))
    assert code == 1
    found = line(text, "credentials")
    assert "invalid_grant" in found and "fix: gcloud auth application-default login" in found
    assert any(str(r.url) == "https://oauth2.googleapis.com/token" for r in transport.requests)


def test_service_account_credentials_are_named_without_a_call():
    class ServiceAccountCreds(Credentials):
        service_account_email = "deployer@ops-project.iam.gserviceaccount.com"

    routes = healthy()
    del routes["GET", "https://openidconnect.googleapis.com/v1/userinfo"]
    routes["POST", f"{CRM}/projects/{PROJECT}:testIamPermissions"] = granting(
        lambda p: not p.startswith("pubsub.")
    )
    code, text, _ = run(routes, credentials=ServiceAccountCreds(token="ya29.sa"))
    assert code == 1
    assert "service account deployer@ops-project" in line(text, "credentials")
    assert (
        "--member=serviceAccount:deployer@ops-project.iam.gserviceaccount.com "
        "--role=roles/pubsub.admin"
    ) in line(text, "permissions")


def test_an_unknown_project_skips_the_rest():
    routes = healthy()
    routes["GET", f"{CRM}/projects/{PROJECT}"] = PROJECT_DENIED
    code, text, _ = run(routes)
    assert code == 1
    found = line(text, "project")
    assert f"{PROJECT} does not exist or user:dev@example.com cannot see it" in found
    assert "fix: check the id (`gcloud projects list`)" in found
    assert line(text, "permissions").startswith("skip  permissions")


def test_a_project_pending_deletion_can_be_undeleted():
    routes = healthy()
    routes["GET", f"{CRM}/projects/{PROJECT}"] = (
        200,
        {**PROJECT_ACTIVE[1], "lifecycleState": "DELETE_REQUESTED"},
    )
    code, text, _ = run(routes)
    assert code == 1
    assert f"fix: gcloud projects undelete {PROJECT}" in line(text, "project")


def test_billing_off_names_the_link_command():
    routes = healthy()
    routes["GET", f"https://cloudbilling.googleapis.com/v1/projects/{PROJECT}/billingInfo"] = (
        BILLING_OFF
    )
    code, text, _ = run(routes)
    assert code == 1
    assert f"fix: gcloud billing projects link {PROJECT} --billing-account=ACCOUNT_ID" in line(
        text, "billing"
    )
    assert text.rstrip().endswith("preflight: 1 check(s) failed: billing")


def test_billing_api_disabled_names_the_project_to_enable_it_in():
    routes = healthy()
    routes["GET", f"https://cloudbilling.googleapis.com/v1/projects/{PROJECT}/billingInfo"] = (
        service_disabled("cloudbilling.googleapis.com", "projects/quota-project-1")
    )
    code, text, _ = run(routes)
    assert code == 1
    found = line(text, "billing")
    assert "Cloud Billing" in found or "cloudbilling.googleapis.com API has not been used" in found
    assert "fix: gcloud services enable cloudbilling.googleapis.com --project quota-project-1" in (
        found
    )


def test_missing_permissions_are_listed_with_the_roles_that_grant_them():
    routes = healthy()
    routes["POST", f"{CRM}/projects/{PROJECT}:testIamPermissions"] = granting(
        lambda p: not p.startswith(("storage.", "iam.serviceAccounts.actAs"))
    )
    code, text, _ = run(routes)
    assert code == 1
    found = line(text, "permissions")
    assert "storage.buckets.create (google_storage_bucket)" in found
    assert (
        "iam.serviceAccounts.actAs (google_cloudfunctions2_function, google_pubsub_subscription)"
        in (found)
    )
    for role in ("roles/storage.admin", "roles/iam.serviceAccountUser"):
        assert (
            f"gcloud projects add-iam-policy-binding {PROJECT} --member=user:dev@example.com "
            f"--role={role}"
        ) in found


def test_permissions_are_asked_in_batches_of_at_most_100(monkeypatch):
    monkeypatch.setattr(preflight, "PERMISSIONS_PER_CALL", 4)
    code, text, transport = run()
    assert code == 0, text
    batches = transport.bodies(":testIamPermissions")
    assert len(batches) > 1 and all(len(b["permissions"]) <= 4 for b in batches)
    assert sum(len(b["permissions"]) for b in batches) == len(required_permissions(STACK))


def test_a_permission_iam_refuses_to_test_is_reported():
    routes = healthy()
    routes["POST", f"{CRM}/projects/{PROJECT}:testIamPermissions"] = (
        400,
        error(
            400,
            "INVALID_ARGUMENT",
            "Permission storage.buckets.creat is not valid for this resource.",
        ),
    )
    code, text, _ = run(routes)
    assert code == 1
    assert "storage.buckets.creat is not valid" in line(text, "permissions")
    assert "fix: update infra/model/apply_permissions.py" in line(text, "permissions")


def test_a_resource_type_without_a_mapping_fails_the_check():
    stack = {**STACK, "resource": {**STACK["resource"], "google_compute_instance": {"vm": {}}}}
    code, text, _ = run(stack=stack)
    assert code == 1
    assert "no permission mapping for google_compute_instance" in line(text, "permissions")


def test_no_database_without_create_firestore_database(monkeypatch):
    routes = healthy()
    routes["GET", f"{FIRESTORE}/projects/{PROJECT}/databases/(default)"] = FIRESTORE_MISSING
    code, text, _ = run(routes, monkeypatch=monkeypatch)
    assert code == 1
    found = line(text, "firestore")
    assert "no (default) database (none exists) and create_firestore_database is false" in found
    assert '"create_firestore_database": true' in found
    assert f"gcloud firestore databases create --project={PROJECT} --location=us-central1" in found


def test_no_database_with_create_firestore_database(monkeypatch):
    routes = healthy()
    routes["GET", f"{FIRESTORE}/projects/{PROJECT}/databases/(default)"] = FIRESTORE_MISSING
    code, text, _ = run(
        routes,
        settings={"create_firestore_database": "true", "firestore_location": "nam5"},
        monkeypatch=monkeypatch,
    )
    assert code == 0, text
    assert "the stack creates it in nam5" in line(text, "firestore")


def test_firestore_api_disabled_means_no_database(monkeypatch):
    routes = healthy()
    routes["GET", f"{FIRESTORE}/projects/{PROJECT}/databases/(default)"] = service_disabled(
        "firestore.googleapis.com"
    )
    code, text, _ = run(routes, monkeypatch=monkeypatch)
    assert code == 1
    assert "the Firestore API is not even enabled" in line(text, "firestore")


def test_an_existing_database_with_create_firestore_database(monkeypatch):
    routes = healthy()
    code, text, _ = run(
        routes, settings={"create_firestore_database": "true"}, monkeypatch=monkeypatch
    )
    assert code == 1
    found = line(text, "firestore")
    assert "409 ALREADY_EXISTS" in found
    assert 'fix: set "create_firestore_database": false' in found


def test_a_datastore_mode_database_cannot_be_used():
    routes = healthy()
    routes["GET", f"{FIRESTORE}/projects/{PROJECT}/databases/(default)"] = (
        200,
        {**FIRESTORE_NATIVE[1], "type": "DATASTORE_MODE"},
    )
    code, text, _ = run(routes)
    assert code == 1
    assert "in DATASTORE_MODE in nam5" in line(text, "firestore")
    assert "fix: use another project" in line(text, "firestore")


def with_policies(**policies: Any) -> dict[tuple[str, str], Any]:
    routes = healthy()
    routes["POST", f"{CRM}/projects/{PROJECT}:getEffectiveOrgPolicy"] = by_constraint(
        {k.replace("__", "."): v for k, v in policies.items()}
    )
    return routes


def test_resource_locations_outside_the_region_fail():
    routes = with_policies(
        gcp__resourceLocations=list_policy(
            "gcp.resourceLocations", allowedValues=["in:europe-west4-locations", "europe-west1"]
        )
    )
    code, text, _ = run(routes)
    assert code == 1
    found = line(text, "org policy gcp.resourceLocations")
    assert "us-central1 not allowed here (allowed: in:europe-west4-locations, europe-west1)" in (
        found
    )
    assert 'fix: set "region"' in found


@pytest.mark.parametrize(
    ("values", "status"),
    [
        (["in:us-locations"], "ok"),
        (["in:us-central1-locations"], "ok"),
        (["us-central1"], "ok"),
        (["in:eu-locations"], "warn"),  # a value group we cannot expand
    ],
)
def test_resource_locations_allowed_or_unknown(values, status):
    routes = with_policies(
        gcp__resourceLocations=list_policy("gcp.resourceLocations", allowedValues=values)
    )
    code, text, _ = run(routes)
    assert line(text, "org policy gcp.resourceLocations").startswith(status)
    assert code == 0  # a warning does not fail the preflight


def test_all_locations_denied():
    routes = with_policies(
        gcp__resourceLocations=list_policy("gcp.resourceLocations", allValues="DENY")
    )
    code, text, _ = run(routes)
    assert code == 1
    assert line(text, "org policy gcp.resourceLocations").startswith("FAIL")


def test_run_ingress_policy_against_backfill_invokers(monkeypatch):
    stack = {
        **STACK,
        "resource": {
            **STACK["resource"],
            "google_cloudfunctions2_function": {
                "functions_make_thumbnail": fn("imgpipe-make-thumbnail", "ALLOW_ALL"),
                "functions_cleanup": fn("imgpipe-cleanup", "ALLOW_INTERNAL_ONLY"),
            },
        },
    }
    routes = with_policies(
        run__allowedIngress=list_policy("run.allowedIngress", allowedValues=["is:internal"])
    )
    code, text, _ = run(
        routes,
        stack=stack,
        settings={"backfill_invokers": "user:ops@example.com"},
        monkeypatch=monkeypatch,
    )
    assert code == 1
    found = line(text, "org policy run.allowedIngress")
    assert "ingress refused: all (imgpipe-make-thumbnail)" in found
    assert "fix: empty the backfill_invokers setting" in found


def test_cloud_functions_ingress_policy_denying_internal():
    routes = with_policies(
        cloudfunctions__allowedIngressSettings=list_policy(
            "cloudfunctions.allowedIngressSettings", deniedValues=["ALLOW_INTERNAL_ONLY"]
        )
    )
    code, text, _ = run(routes)
    assert code == 1
    found = line(text, "org policy cloudfunctions.allowedIngressSettings")
    assert "ingress refused: ALLOW_INTERNAL_ONLY (imgpipe-make-thumbnail, imgpipe-cleanup)" in (
        found
    )


def test_domain_restricted_sharing_blocks_the_service_agents():
    routes = with_policies(
        iam__allowedPolicyMemberDomains=list_policy(
            "iam.allowedPolicyMemberDomains", allowedValues=["C03xgje4y"]
        )
    )
    code, text, _ = run(routes)
    assert code == 1
    found = line(text, "org policy iam.allowedPolicyMemberDomains")
    assert "binds 1 members outside your domain, Google's service agents among them" in found
    assert "Override parent's policy" in found and "domain-restricted-sharing" in found


MANAGED_POLICY = (
    f"https://orgpolicy.googleapis.com/v2/projects/{PROJECT}/policies/"
    "iam.managed.allowedPolicyMembers:getEffectivePolicy"
)


def _managed(**parameters: list[str]) -> tuple[int, dict[str, Any]]:
    """An effective v2 policy enforcing the managed member constraint."""
    return (200, {"spec": {"rules": [{"enforce": True, "parameters": parameters}]}})


def test_the_managed_member_constraint_is_checked_too():
    check = "org policy iam.managed.allowedPolicyMembers"
    code, text, _ = run()
    assert code == 0 and line(text, check).startswith("ok") and "not enforced" in text
    routes = healthy()
    routes["GET", MANAGED_POLICY] = _managed(allowedMemberSubjects=["user:ops@example.com"])
    code, text, _ = run(routes)
    assert code == 1
    found = line(text, check)
    assert found.startswith("FAIL") and "Google's service agents among them" in found
    assert "allowedMemberSubjects" in found
    # A principal set (an organization) may hold the agents: the check cannot tell.
    routes["GET", MANAGED_POLICY] = _managed(
        allowedPrincipalSets=["//cloudresourcemanager.googleapis.com/organizations/123"]
    )
    code, text, _ = run(routes)
    assert line(text, check).startswith("warn") and "organizations/123" in text


def test_unreadable_org_policies_are_a_warning():
    routes = healthy()
    routes["POST", f"{CRM}/projects/{PROJECT}:getEffectiveOrgPolicy"] = (
        403,
        error(403, "PERMISSION_DENIED", "The caller does not have permission"),
    )
    code, text, _ = run(routes)
    assert code == 0, text
    found = line(text, "org policy gcp.resourceLocations")
    assert found.startswith("warn") and "roles/orgpolicy.policyViewer" in found


def test_without_credentials_the_stack_is_not_synthesized():
    def no_synth(config, out):
        raise AssertionError("synthesized although nothing could use it")

    out = io.StringIO()
    code = preflight.main(
        ["--project", PROJECT],
        out=out,
        connect=lambda: (None, requests.Session()),
        synth=no_synth,
    )
    assert code == 1
    assert "preflight: 1 check(s) failed: credentials" in out.getvalue()


def test_no_connection_to_google_fails_the_credentials_check():
    """The token endpoint does not answer (offline, a proxy): no traceback, no false ok."""

    def offline(request):
        raise requests.ConnectionError("Failed to resolve 'oauth2.googleapis.com'")

    routes = {("POST", "https://oauth2.googleapis.com/token"): offline}
    code, text, _ = run(routes, credentials=stale())
    assert code == 1
    found = line(text, "credentials")
    assert found.startswith("FAIL") and "cannot reach" in found and "Failed to resolve" in found
    assert "fix: check this machine's connection to Google" in found
