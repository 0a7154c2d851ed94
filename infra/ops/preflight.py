"""`scripts/preflight`: will `cdktf deploy` work in this project? Ask before applying.

One line per check, and the exact fix under each one that fails: gcloud and Application
Default Credentials (and whose they are), the project, billing, the permissions the apply
needs (derived from the synthesized stack by `infra.model.apply_permissions` and asked of
IAM with `projects.testIamPermissions`), the Firestore `(default)` database against
`create_firestore_database`, the organization policies that would break this stack, and
whether the region offers Cloud Functions, Cloud Run and Eventarc.

Every Google call goes through one `requests` session (in use, google-auth's
`AuthorizedSession`), so the tests replay recorded responses through a mounted transport.
Nothing here changes the project.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import requests

from infra.common.paths import ROOT
from infra.model.apply_permissions import UnmappedResourceTypes, required_permissions
from infra.model.config import ConfigError, DeploymentConfig, load_config
from infra.model.synthesized import merged, read_stacks

CLOUD_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
CRM = "https://cloudresourcemanager.googleapis.com/v1"
BILLING = "https://cloudbilling.googleapis.com/v1"
FIRESTORE = "https://firestore.googleapis.com/v1"
USERINFO = "https://openidconnect.googleapis.com/v1/userinfo"
ORGPOLICY = "https://orgpolicy.googleapis.com/v2"
# The managed successor of iam.allowedPolicyMemberDomains: enforced with parameters naming
# the members (allowedMemberSubjects) and principal sets (allowedPrincipalSets) IAM may bind
# ("Restricting identities by domain", managed constraint). Only Org Policy v2 reads it.
MANAGED_MEMBERS = "iam.managed.allowedPolicyMembers"
# testIamPermissions takes at most 100 permissions per call.
PERMISSIONS_PER_CALL = 100
# The regional services every function needs, and where each lists its locations.
REGIONAL_APIS = {
    "Cloud Functions": "https://cloudfunctions.googleapis.com/v2",
    "Cloud Run": "https://run.googleapis.com/v1",
    "Eventarc": "https://eventarc.googleapis.com/v1",
}
INGRESS_VALUES = {  # Cloud Functions ingress setting -> run.allowedIngress value
    "ALLOW_ALL": "all",
    "ALLOW_INTERNAL_ONLY": "internal",
    "ALLOW_INTERNAL_AND_GCLB": "internal-and-cloud-load-balancing",
}
DRS_DOC = (
    "https://cloud.google.com/resource-manager/docs/organization-policy/domain-restricted-sharing"
)

OK, FAIL, WARN, SKIP = "ok", "FAIL", "warn", "skip"
_REGION_GROUP = re.compile(r"in:[a-z]+-[a-z]+[0-9]+-locations")


@dataclass(frozen=True)
class Result:
    check: str
    status: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class Reply:
    """One REST answer: status code, parsed JSON body, and Google's error fields."""

    status: int
    body: Mapping[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def error_status(self) -> str:
        return str(self.body.get("error", {}).get("status", ""))

    @property
    def message(self) -> str:
        return str(self.body.get("error", {}).get("message", f"HTTP {self.status}"))

    @property
    def reason(self) -> str:
        """The `ErrorInfo.reason` of a Google API error (e.g. SERVICE_DISABLED)."""
        for detail in self.body.get("error", {}).get("details", []):
            if detail.get("@type", "").endswith("google.rpc.ErrorInfo"):
                return str(detail.get("reason", ""))
        return ""


class Google:
    """GET/POST JSON over the caller's session; never raises on an HTTP error status."""

    def __init__(self, session: requests.Session, timeout: float = 30.0) -> None:
        self.session = session
        self.timeout = timeout

    def _reply(self, response: requests.Response) -> Reply:
        try:
            body = response.json()
        except ValueError:
            body = {"error": {"message": response.text[:300]}}
        return Reply(response.status_code, body if isinstance(body, Mapping) else {})

    def _call(self, method: str, url: str, **kwargs: Any) -> Reply:
        import google.auth.exceptions

        try:
            response = self.session.request(method, url, timeout=self.timeout, **kwargs)
        except google.auth.exceptions.RefreshError as exc:
            # The session could not get a fresh access token: the credentials are stale.
            return Reply(401, {"error": {"status": "UNAUTHENTICATED", "message": str(exc)}})
        except requests.RequestException as exc:
            return Reply(0, {"error": {"message": f"cannot reach {url}: {exc}"}})
        return self._reply(response)

    def get(self, url: str, **params: str) -> Reply:
        return self._call("GET", url, params=params or None)

    def post(self, url: str, body: Mapping[str, Any]) -> Reply:
        return self._call("POST", url, json=body)


@dataclass
class Context:
    """What the checks share: settings, the synthesized stack, the caller."""

    config: DeploymentConfig
    stack: Mapping[str, Any]
    api: Google
    member: str = ""  # user:… or serviceAccount:… once known
    project_ok: bool = True

    @property
    def project(self) -> str:
        return self.config.project

    def as_member(self) -> str:
        return self.member or "user:YOU@example.com"


# -- local: gcloud and credentials -------------------------------------------------------


def check_gcloud(which: Callable[[str], str | None]) -> Result:
    path = which("gcloud")
    if path:
        return Result("gcloud", OK, path)
    return Result(
        "gcloud",
        FAIL,
        "the Google Cloud CLI is not on PATH",
        "install it: https://cloud.google.com/sdk/docs/install, then "
        "`gcloud auth application-default login`",
    )


def check_credentials(ctx: Context, credentials: Any) -> Result:
    """Whose Application Default Credentials the apply will use."""
    if credentials is None:
        return Result(
            "credentials",
            FAIL,
            "no Application Default Credentials (Terraform's google provider needs them)",
            "gcloud auth application-default login",
        )
    email = getattr(credentials, "service_account_email", None)
    if email and email != "default":
        ctx.member = f"serviceAccount:{email}"
        return Result("credentials", OK, f"service account {email}")
    reply = ctx.api.get(USERINFO)
    if reply.ok and reply.body.get("email"):
        ctx.member = f"user:{reply.body['email']}"
        return Result("credentials", OK, f"user {reply.body['email']}")
    if reply.status in (400, 401):
        return Result(
            "credentials",
            FAIL,
            f"Application Default Credentials are not accepted: {reply.message}",
            "gcloud auth application-default login",
        )
    return Result("credentials", OK, "present (account unknown: the token has no email scope)")


# -- the project ---------------------------------------------------------------------------


def check_project(ctx: Context) -> Result:
    reply = ctx.api.get(f"{CRM}/projects/{ctx.project}")
    if reply.ok:
        state = reply.body.get("lifecycleState", "")
        if state == "ACTIVE":
            return Result(
                "project", OK, f"{ctx.project} (number {reply.body.get('projectNumber')})"
            )
        ctx.project_ok = False
        return Result(
            "project",
            FAIL,
            f"{ctx.project} is {state}",
            f"gcloud projects undelete {ctx.project}"
            if state == "DELETE_REQUESTED"
            else "use an active project",
        )
    ctx.project_ok = False
    return Result(
        "project",
        FAIL,
        f"{ctx.project} does not exist or {ctx.as_member()} cannot see it ({reply.message})",
        'check the id (`gcloud projects list`), set it as "project" in cdktf.json or pass '
        f"--project; or ask for roles/browser on it for {ctx.as_member()}",
    )


def check_billing(ctx: Context) -> Result:
    reply = ctx.api.get(f"{BILLING}/projects/{ctx.project}/billingInfo")
    if reply.ok:
        if reply.body.get("billingEnabled"):
            return Result("billing", OK, f"enabled ({reply.body.get('billingAccountName')})")
        return Result(
            "billing",
            FAIL,
            f"billing is not enabled on {ctx.project}: the apply cannot enable the APIs",
            f"gcloud billing projects link {ctx.project} --billing-account=ACCOUNT_ID "
            "(`gcloud billing accounts list` shows yours)",
        )
    if reply.reason == "SERVICE_DISABLED":
        return Result(
            "billing",
            FAIL,
            f"cannot read billing: {reply.message}",
            "gcloud services enable cloudbilling.googleapis.com "
            f"--project {_quota_project(reply) or ctx.project}",
        )
    return Result(
        "billing",
        FAIL,
        f"cannot read the billing of {ctx.project}: {reply.message}",
        f"ask for roles/billing.projectManager on {ctx.project} for {ctx.as_member()}, or have "
        "a billing admin check it is linked",
    )


def _quota_project(reply: Reply) -> str:
    for detail in reply.body.get("error", {}).get("details", []):
        consumer = detail.get("metadata", {}).get("consumer", "")
        if consumer.startswith("projects/"):
            return consumer.removeprefix("projects/")
    return ""


def check_permissions(ctx: Context) -> Result:
    """testIamPermissions for what the stack's resource types need."""
    try:
        needed = required_permissions(ctx.stack)
    except UnmappedResourceTypes as exc:
        return Result("permissions", FAIL, str(exc), "update infra/model/apply_permissions.py")
    wanted = [r.permission for r in needed]
    granted: set[str] = set()
    for start in range(0, len(wanted), PERMISSIONS_PER_CALL):
        chunk = wanted[start : start + PERMISSIONS_PER_CALL]
        reply = ctx.api.post(
            f"{CRM}/projects/{ctx.project}:testIamPermissions", {"permissions": chunk}
        )
        if not reply.ok:
            return Result(
                "permissions",
                FAIL,
                f"IAM would not test the {len(wanted)} permissions: {reply.message}",
                "update infra/model/apply_permissions.py"
                if reply.status == 400
                else "check the project id and your access",
            )
        granted.update(reply.body.get("permissions", []))
    types = {t for r in needed for t in r.types}
    missing = [r for r in needed if r.permission not in granted]
    if not missing:
        return Result(
            "permissions",
            OK,
            f"{ctx.as_member()} holds all {len(wanted)} permissions of the "
            f"{len(types)} resource types",
        )
    roles = sorted({r.role for r in missing})
    listed = ", ".join(f"{r.permission} ({', '.join(r.types)})" for r in missing[:8])
    more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
    grants = "\n".join(
        f"gcloud projects add-iam-policy-binding {ctx.project} "
        f"--member={ctx.as_member()} --role={role}"
        for role in roles
    )
    return Result(
        "permissions",
        FAIL,
        f"missing {len(missing)} of {len(wanted)}: {listed}{more}",
        f"(or roles/owner) have a project admin run:\n{grants}",
    )


def check_firestore(ctx: Context) -> Result:
    c = ctx.config
    reply = ctx.api.get(f"{FIRESTORE}/projects/{ctx.project}/databases/(default)")
    create_it = (
        'set "create_firestore_database": true under context.pipeline in cdktf.json '
        "(or PIPELINE_CREATE_FIRESTORE_DATABASE=true), or create it once: "
        f"gcloud firestore databases create --project={ctx.project} "
        f"--location={c.firestore_location} --type=firestore-native"
    )
    if reply.ok:
        kind, where = reply.body.get("type", ""), reply.body.get("locationId", "")
        if kind != "FIRESTORE_NATIVE":
            return Result(
                "firestore",
                FAIL,
                f"the (default) database is in {kind} in {where}; the functions need "
                "Firestore in native mode",
                "use another project (a database with data cannot change mode)",
            )
        if c.create_firestore_database:
            return Result(
                "firestore",
                FAIL,
                f"a (default) database exists ({where}) and create_firestore_database is "
                "true: the apply would fail with 409 ALREADY_EXISTS",
                'set "create_firestore_database": false (the stack then uses the existing one)',
            )
        return Result("firestore", OK, f"(default) in native mode, {where}")
    absent = reply.status == 404 or reply.reason == "SERVICE_DISABLED"
    if not absent:
        return Result(
            "firestore",
            FAIL,
            f"cannot read the (default) database: {reply.message}",
            f"ask for roles/datastore.viewer on {ctx.project} for {ctx.as_member()}",
        )
    if c.create_firestore_database:
        return Result(
            "firestore",
            OK,
            f"no (default) database yet; the stack creates it in {c.firestore_location}",
        )
    why = "the Firestore API is not even enabled" if reply.status != 404 else "none exists"
    return Result(
        "firestore",
        FAIL,
        f"no (default) database ({why}) and create_firestore_database is false: every "
        "metadata write would fail",
        create_it,
    )


# -- organization policies -----------------------------------------------------------------


def effective_policy(ctx: Context, constraint: str) -> Reply:
    return ctx.api.post(
        f"{CRM}/projects/{ctx.project}:getEffectiveOrgPolicy",
        {"constraint": f"constraints/{constraint}"},
    )


def list_verdict(policy: Mapping[str, Any], value_allowed: Callable[[str], bool | None]) -> str:
    """How a list policy treats one value: "allowed", "denied" or "unknown"."""
    listed = policy.get("listPolicy")
    if not listed:
        return "allowed"  # not set (or a boolean constraint): nothing restricts it
    if listed.get("allValues") == "DENY":
        return "denied"
    if listed.get("allValues") == "ALLOW":
        return "allowed"
    if any(value_allowed(v) for v in listed.get("deniedValues", [])):
        return "denied"
    allowed = listed.get("allowedValues", [])
    if not allowed:
        return "allowed"
    verdicts = [value_allowed(v) for v in allowed]
    if any(verdicts):
        return "allowed"
    return "unknown" if None in verdicts else "denied"


def _location_in(location: str) -> Callable[[str], bool | None]:
    """Whether a resourceLocations value covers `location` (None: a group we cannot read)."""

    def covers(value: str) -> bool | None:
        value = value.removeprefix("is:")
        if value in (location, f"in:{location}-locations"):
            return True
        if value == "in:us-locations":
            return location.startswith("us-") or location in ("us", "nam5", "nam7")
        if _REGION_GROUP.fullmatch(value):
            return False  # another single region's group
        return None if value.startswith("in:") else False

    return covers


def _policy_result(ctx: Context, constraint: str) -> tuple[Reply, Result | None]:
    reply = effective_policy(ctx, constraint)
    if reply.ok:
        return reply, None
    return reply, Result(
        f"org policy {constraint}",
        WARN,
        f"cannot read it: {reply.message}",
        f"ask for roles/orgpolicy.policyViewer on {ctx.project}, or check the constraint in "
        "the console (IAM & Admin > Organization policies)",
    )


def check_locations(ctx: Context) -> Result:
    name = "org policy gcp.resourceLocations"
    reply, unreadable = _policy_result(ctx, "gcp.resourceLocations")
    if unreadable:
        return unreadable
    used = {ctx.config.region}
    if ctx.config.create_firestore_database:
        used.add(ctx.config.firestore_location)
    verdicts = {loc: list_verdict(reply.body, _location_in(loc)) for loc in sorted(used)}
    denied = [loc for loc, v in verdicts.items() if v == "denied"]
    unknown = [loc for loc, v in verdicts.items() if v == "unknown"]
    allowed = reply.body.get("listPolicy", {}).get("allowedValues", [])
    if denied:
        return Result(
            name,
            FAIL,
            f"{', '.join(denied)} not allowed here (allowed: {', '.join(allowed) or 'none'})",
            'set "region" (and firestore_location) in cdktf.json to an allowed location, '
            "or ask your organization admin for an exception on this project",
        )
    if unknown:
        return Result(
            name,
            WARN,
            f"cannot tell whether {', '.join(allowed)} includes {', '.join(unknown)}",
            "check the value groups: https://cloud.google.com/resource-manager/docs/"
            "organization-policy/defining-locations",
        )
    return Result(name, OK, f"{', '.join(sorted(used))} allowed")


def _is(wanted: str) -> Callable[[str], bool | None]:
    """A list-policy value that names exactly `wanted` (with or without `is:`)."""
    return lambda value: value.removeprefix("is:") == wanted


def _ingress_used(stack: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each Cloud Functions ingress setting the stack uses, with the functions using it."""
    used: dict[str, list[str]] = {}
    for fn in stack.get("resource", {}).get("google_cloudfunctions2_function", {}).values():
        setting = fn.get("service_config", {}).get("ingress_settings", "ALLOW_ALL")
        used.setdefault(setting, []).append(fn.get("name", "?"))
    return used


def check_ingress(ctx: Context, constraint: str) -> Result:
    """run.allowedIngress (values all/internal/...) or cloudfunctions.allowedIngressSettings
    (values ALLOW_ALL/...) against the functions' ingress settings."""
    name = f"org policy {constraint}"
    reply, unreadable = _policy_result(ctx, constraint)
    if unreadable:
        return unreadable
    run_values = constraint.startswith("run.")
    refused = []
    for setting, functions in sorted(_ingress_used(ctx.stack).items()):
        value = INGRESS_VALUES.get(setting, setting) if run_values else setting
        if list_verdict(reply.body, _is(value)) != "allowed":
            refused.append(f"{value} ({', '.join(functions)})")
    if not refused:
        return Result(name, OK, "the functions' ingress settings are allowed")
    backfill = "ALLOW_ALL" in _ingress_used(ctx.stack) and ctx.config.backfill_invokers
    return Result(
        name,
        FAIL,
        f"ingress refused: {', '.join(refused)}",
        "empty the backfill_invokers setting (make_thumbnail then takes internal traffic only)"
        if backfill
        else "ask your organization admin to allow internal ingress on this project",
    )


def _outside_members(stack: Mapping[str, Any]) -> list[str]:
    """IAM members the stack binds that it does not create: Google's service agents and
    the operators named in settings."""
    members = []
    for kind, resources in stack.get("resource", {}).items():
        if kind.endswith("_iam_member"):
            for body in resources.values():
                member = str(body.get("member", ""))
                if "${google_service_account." not in member:
                    members.append(member)
    return sorted(set(members))


def check_member_domains(ctx: Context) -> Result:
    name = "org policy iam.allowedPolicyMemberDomains"
    reply, unreadable = _policy_result(ctx, "iam.allowedPolicyMemberDomains")
    if unreadable:
        return unreadable
    listed = reply.body.get("listPolicy")
    if not listed or listed.get("allValues") == "ALLOW":
        return Result(name, OK, "not restricted")
    outside = _outside_members(ctx.stack)
    return Result(
        name,
        FAIL,
        f"domain restricted sharing is enforced ({', '.join(listed.get('allowedValues', []))}) "
        f"and the stack binds {len(outside)} members outside your domain, Google's service "
        "agents among them (Pub/Sub, Cloud Storage): IAM would refuse those bindings",
        "for the deploy, override the policy on this project to allow all (console: IAM & "
        "Admin > Organization policies > Domain restricted sharing > Override parent's "
        f"policy), run cdktf deploy, then restore it ({DRS_DOC})",
    )


def check_managed_members(ctx: Context) -> Result:
    name = f"org policy {MANAGED_MEMBERS}"
    reply = ctx.api.get(
        f"{ORGPOLICY}/projects/{ctx.project}/policies/{MANAGED_MEMBERS}:getEffectivePolicy"
    )
    if not reply.ok:
        return Result(
            name,
            WARN,
            f"cannot read it: {reply.message}",
            f"ask for roles/orgpolicy.policyViewer on {ctx.project}, or check the constraint in "
            "the console (IAM & Admin > Organization policies)",
        )
    rules = [r for r in reply.body.get("spec", {}).get("rules", []) if r.get("enforce")]
    if not rules:
        return Result(name, OK, "not enforced")
    subjects = {s for r in rules for s in r.get("parameters", {}).get("allowedMemberSubjects", [])}
    sets = [p for r in rules for p in r.get("parameters", {}).get("allowedPrincipalSets", [])]
    outside = [m for m in _outside_members(ctx.stack) if m not in subjects]
    if not outside:
        return Result(name, OK, "every member the stack binds is an allowed subject")
    fix = (
        "add the members to allowedMemberSubjects, or override the policy on this project for "
        f"the deploy (console: IAM & Admin > Organization policies > {MANAGED_MEMBERS}) "
        f"({DRS_DOC})"
    )
    what = (
        f"enforced, and the stack binds {len(outside)} members that are not allowed subjects, "
        "Google's service agents among them (Pub/Sub, Cloud Storage)"
    )
    if sets:  # a principal set (an organization, a workforce pool) may hold them
        return Result(name, WARN, f"{what}; allowed principal sets {', '.join(sets)} may", fix)
    return Result(name, FAIL, f"{what}: IAM would refuse those bindings", fix)


# -- the region ----------------------------------------------------------------------------


def _locations(ctx: Context, base: str) -> tuple[Reply, set[str]]:
    found: set[str] = set()
    token = ""
    while True:
        params = {"pageSize": "1000", **({"pageToken": token} if token else {})}
        reply = ctx.api.get(f"{base}/projects/{ctx.project}/locations", **params)
        if not reply.ok:
            return reply, found
        found.update(loc.get("locationId", "") for loc in reply.body.get("locations", []))
        token = reply.body.get("nextPageToken", "")
        if not token:
            return reply, found


def check_region(ctx: Context) -> Result:
    region = ctx.config.region
    apis = dict(REGIONAL_APIS)
    if ctx.config.create_firestore_database:
        apis["Firestore"] = FIRESTORE
    missing, unasked = [], []
    for service, base in apis.items():
        reply, found = _locations(ctx, base)
        wanted = ctx.config.firestore_location if service == "Firestore" else region
        if not reply.ok:
            unasked.append(f"{service} ({reply.reason or reply.message})")
        elif wanted not in found:
            missing.append(f"{service} is not offered in {wanted}")
    if missing:
        return Result(
            "region",
            FAIL,
            "; ".join(missing),
            'set "region" in cdktf.json to one that offers all of them '
            "(`gcloud functions regions list`)",
        )
    if unasked:
        return Result(
            "region",
            WARN,
            f"could not ask {', '.join(unasked)}",
            "the APIs are enabled by the deploy itself; to ask first: gcloud services enable "
            f"cloudfunctions.googleapis.com run.googleapis.com eventarc.googleapis.com "
            f"--project {ctx.project}",
        )
    return Result("region", OK, f"{', '.join(apis)} offered in {region}")


# -- running it ----------------------------------------------------------------------------

PROJECT_CHECKS: Sequence[Callable[[Context], Result]] = (
    check_billing,
    check_permissions,
    check_firestore,
    check_locations,
    lambda ctx: check_ingress(ctx, "run.allowedIngress"),
    lambda ctx: check_ingress(ctx, "cloudfunctions.allowedIngressSettings"),
    check_member_domains,
    check_managed_members,
    check_region,
)
SKIPPED_NAMES = (
    "billing",
    "permissions",
    "firestore",
    "org policy gcp.resourceLocations",
    "org policy run.allowedIngress",
    "org policy cloudfunctions.allowedIngressSettings",
    "org policy iam.allowedPolicyMemberDomains",
    f"org policy {MANAGED_MEMBERS}",
    "region",
)


def run_checks(
    ctx: Context, credentials: Any, which: Callable[[str], str | None]
) -> Iterable[Result]:
    yield check_gcloud(which)
    creds = check_credentials(ctx, credentials)
    yield creds
    if creds.status == FAIL:
        for name in ("project", *SKIPPED_NAMES):
            yield Result(name, SKIP, "needs credentials")
        return
    yield check_project(ctx)
    for check, name in zip(PROJECT_CHECKS, SKIPPED_NAMES, strict=True):
        yield check(ctx) if ctx.project_ok else Result(name, SKIP, "needs the project")


def print_result(result: Result, out: TextIO) -> None:
    print(f"{result.status:4}  {result.check:48}  {result.detail}", file=out, flush=True)
    if result.fix and result.status in (FAIL, WARN):
        for line in result.fix.splitlines():
            print(f"{'':6}fix: {line}", file=out, flush=True)


def synthesize(config: DeploymentConfig, out: TextIO) -> dict[str, Any]:
    """`python main.py` with this project, into a temporary folder: what the deployment
    declares, its project stack and pipeline stack together."""
    print("synthesizing the stack to see what it declares (about 20 s) ...", file=out, flush=True)
    with tempfile.TemporaryDirectory(prefix="preflight-") as outdir:
        env = {**os.environ, "PIPELINE_PROJECT": config.project, "CDKTF_OUTDIR": outdir}
        done = subprocess.run(
            [sys.executable, "main.py"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if done.returncode != 0:
            raise SystemExit(f"error: the stack does not synthesize:\n{done.stderr[-2000:]}")
        return merged(read_stacks(Path(outdir)).values())


def default_credentials() -> tuple[Any, requests.Session]:
    """Application Default Credentials and an authorized session (None when there are none)."""
    import google.auth
    import google.auth.exceptions
    from google.auth.transport.requests import AuthorizedSession

    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        return None, requests.Session()
    return credentials, AuthorizedSession(credentials)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scripts/preflight",
        description="Check, before `cdktf deploy`, that the project will accept the stack: "
        "credentials, project, billing, permissions, Firestore, organization policies, "
        "region. Changes nothing. Exit 1 when a check fails.",
    )
    parser.add_argument("--project", help="GCP project (default: the project in cdktf.json)")
    parser.add_argument(
        "--synth",
        type=Path,
        help="an already synthesized cdktf.out folder (both stacks), or one cdk.tf.json "
        "(default: synthesize the stacks now)",
    )
    return parser


def main(
    argv: list[str] | None = None,
    out: TextIO = sys.stdout,
    connect: Callable[[], tuple[Any, requests.Session]] = default_credentials,
    which: Callable[[str], str | None] = shutil.which,
    synth: Callable[[DeploymentConfig, TextIO], Mapping[str, Any]] = synthesize,
) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(overrides={"project": args.project} if args.project else None)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    credentials, session = connect()
    stack: Mapping[str, Any] = {}  # without credentials nothing needs it
    if args.synth:
        stack = (
            merged(read_stacks(args.synth).values())
            if args.synth.is_dir()
            else json.loads(args.synth.read_text())
        )
    elif credentials is not None:
        stack = synth(config, out)
    ctx = Context(config, stack, Google(session))
    print(f"preflight for project {config.project}, region {config.region}", file=out)
    results = []
    for result in run_checks(ctx, credentials, which):
        print_result(result, out)
        results.append(result)
    failed = [r.check for r in results if r.status == FAIL]
    verdict = f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "ready to deploy"
    print(f"\npreflight: {verdict}", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
