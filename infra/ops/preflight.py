"""`scripts/preflight`: will `cdktf deploy` work in this project? Asks before applying, one
line per check with its fix under each one that fails (docs/deploy-and-operate.md, "Prove a
deployment"). Changes nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import requests

from infra.common import arguments
from infra.common.credentials import LOGIN, application_default
from infra.common.paths import ROOT
from infra.model.apply_permissions import UnmappedResourceTypes, required_permissions
from infra.model.config import ConfigError, DeploymentConfig, load_config
from infra.model.synthesized import merged, read_stacks
from infra.ops import org_policies
from infra.ops.gcp_rest import CRM, FAIL, OK, SKIP, Context, Verdict, fail, ok

BILLING = "https://cloudbilling.googleapis.com/v1"
FIRESTORE = "https://firestore.googleapis.com/v1"
USERINFO = "https://openidconnect.googleapis.com/v1/userinfo"
# testIamPermissions takes at most 100 permissions per call.
PERMISSIONS_PER_CALL = 100


def check_credentials(ctx: Context, credentials: Any) -> Verdict:
    """Whose Application Default Credentials the apply will use."""
    if credentials is None:
        why = "no Application Default Credentials (Terraform's google provider needs them)"
        return fail(why, LOGIN)
    email = getattr(credentials, "service_account_email", None)
    if email and email != "default":
        ctx.member = f"serviceAccount:{email}"
        return ok(f"service account {email}")
    reply = ctx.get(USERINFO)
    if reply.ok and reply.body.get("email"):
        ctx.member = f"user:{reply.body['email']}"
        return ok(f"user {reply.body['email']}")
    if reply.status in (400, 401):
        return fail(f"Application Default Credentials are not accepted: {reply.message}", LOGIN)
    if not reply.status:
        return fail(reply.message, "check this machine's connection to Google (network, proxy)")
    return ok("present (account unknown: the token has no email scope)")


def check_project(ctx: Context) -> Verdict:
    reply = ctx.get(f"{CRM}/projects/{ctx.project}")
    state = reply.body.get("lifecycleState", "")
    if reply.ok and state == "ACTIVE":
        return ok(f"{ctx.project} (number {reply.body.get('projectNumber')})")
    if reply.ok:
        undelete = state == "DELETE_REQUESTED"
        fix = f"gcloud projects undelete {ctx.project}" if undelete else "use an active project"
        return fail(f"{ctx.project} is {state}", fix)
    return fail(
        f"{ctx.project} does not exist or {ctx.as_member()} cannot see it ({reply.message})",
        'check the id (`gcloud projects list`), set it as "project" in cdktf.json or pass '
        f"--project; or ask for roles/browser on it for {ctx.as_member()}",
    )


def check_billing(ctx: Context) -> Verdict:
    reply = ctx.get(f"{BILLING}/projects/{ctx.project}/billingInfo")
    if reply.ok and reply.body.get("billingEnabled"):
        return ok(f"enabled ({reply.body.get('billingAccountName')})")
    if reply.ok:
        return fail(
            f"billing is not enabled on {ctx.project}: the apply cannot enable the APIs",
            f"gcloud billing projects link {ctx.project} --billing-account=ACCOUNT_ID "
            "(`gcloud billing accounts list` shows yours)",
        )
    if reply.reason == "SERVICE_DISABLED":
        return fail(
            f"cannot read billing: {reply.message}",
            "gcloud services enable cloudbilling.googleapis.com "
            f"--project {reply.quota_project or ctx.project}",
        )
    return fail(
        f"cannot read the billing of {ctx.project}: {reply.message}",
        f"ask for roles/billing.projectManager on {ctx.project} for {ctx.as_member()}, or have "
        "a billing admin check it is linked",
    )


def check_permissions(ctx: Context) -> Verdict:
    """testIamPermissions for what the stack's resource types need."""
    try:
        needed = required_permissions(ctx.stack)
    except UnmappedResourceTypes as exc:
        return fail(str(exc), "update infra/model/apply_permissions.py")
    wanted = [r.permission for r in needed]
    granted: set[str] = set()
    for start in range(0, len(wanted), PERMISSIONS_PER_CALL):
        chunk = wanted[start : start + PERMISSIONS_PER_CALL]
        url = f"{CRM}/projects/{ctx.project}:testIamPermissions"
        reply = ctx.post(url, {"permissions": chunk})
        if not reply.ok:
            return fail(
                f"IAM would not test the {len(wanted)} permissions: {reply.message}",
                "update infra/model/apply_permissions.py"
                if reply.status == 400
                else "check the project id and your access",
            )
        granted.update(reply.body.get("permissions", []))
    types = {t for r in needed for t in r.types}
    missing = [r for r in needed if r.permission not in granted]
    if not missing:
        return ok(
            f"{ctx.as_member()} holds all {len(wanted)} permissions of the "
            f"{len(types)} resource types"
        )
    listed = ", ".join(f"{r.permission} ({', '.join(r.types)})" for r in missing[:8])
    more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
    grants = "\n".join(
        f"gcloud projects add-iam-policy-binding {ctx.project} "
        f"--member={ctx.as_member()} --role={role}"
        for role in sorted({r.role for r in missing})
    )
    return fail(
        f"missing {len(missing)} of {len(wanted)}: {listed}{more}",
        f"(or roles/owner) have a project admin run:\n{grants}",
    )


def check_firestore(ctx: Context) -> Verdict:
    c = ctx.config
    reply = ctx.get(f"{FIRESTORE}/projects/{ctx.project}/databases/(default)")
    if reply.ok:
        kind, where = reply.body.get("type", ""), reply.body.get("locationId", "")
        if kind != "FIRESTORE_NATIVE":
            return fail(
                f"the (default) database is in {kind} in {where}; the functions need "
                "Firestore in native mode",
                "use another project (a database with data cannot change mode)",
            )
        if c.create_firestore_database:
            return fail(
                f"a (default) database exists ({where}) and create_firestore_database is "
                "true: the apply would fail with 409 ALREADY_EXISTS",
                'set "create_firestore_database": false (the stack then uses the existing one)',
            )
        return ok(f"(default) in native mode, {where}")
    if reply.status != 404 and reply.reason != "SERVICE_DISABLED":
        return fail(
            f"cannot read the (default) database: {reply.message}",
            f"ask for roles/datastore.viewer on {ctx.project} for {ctx.as_member()}",
        )
    if c.create_firestore_database:
        return ok(f"no (default) database yet; the stack creates it in {c.firestore_location}")
    why = "the Firestore API is not even enabled" if reply.status != 404 else "none exists"
    return fail(
        f"no (default) database ({why}) and create_firestore_database is false: every "
        "metadata write would fail",
        'set "create_firestore_database": true under context.pipeline in cdktf.json '
        "(or PIPELINE_CREATE_FIRESTORE_DATABASE=true), or create it once: "
        f"gcloud firestore databases create --project={ctx.project} "
        f"--location={c.firestore_location} --type=firestore-native",
    )


PROJECT_CHECKS: Mapping[str, Callable[[Context], Verdict]] = {
    "billing": check_billing,
    "permissions": check_permissions,
    "firestore": check_firestore,
    **org_policies.CHECKS,
}


def run_checks(ctx: Context, credentials: Any) -> Iterator[tuple[str, Verdict]]:
    """Every check in order; those that need what failed before are skipped, saying why."""
    creds = check_credentials(ctx, credentials)
    yield "credentials", creds
    project = Verdict(SKIP, "needs credentials")
    if creds.status != FAIL:
        project = check_project(ctx)
    yield "project", project
    for name, check in PROJECT_CHECKS.items():
        if project.status == OK:
            yield name, check(ctx)
        else:
            yield (
                name,
                Verdict(SKIP, project.detail if creds.status == FAIL else "needs the project"),
            )


def print_result(name: str, verdict: Verdict, out: TextIO) -> None:
    print(f"{verdict.status:4}  {name:48}  {verdict.detail}", file=out, flush=True)
    for line in verdict.fix.splitlines():
        print(f"{'':6}fix: {line}", file=out, flush=True)


def synthesize(config: DeploymentConfig, out: TextIO) -> dict[str, Any]:
    """`python main.py` with this project, into a temporary folder: what the deployment
    declares, its project stack and pipeline stack together."""
    print("synthesizing the stack to see what it declares (about 20 s) ...", file=out, flush=True)
    with tempfile.TemporaryDirectory(prefix="preflight-") as outdir:
        env = {**os.environ, "PIPELINE_PROJECT": config.project, "CDKTF_OUTDIR": outdir}
        try:
            done = subprocess.run(
                [sys.executable, "main.py"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
        except subprocess.TimeoutExpired:
            raise SystemExit("error: the stack did not synthesize within 600 s") from None
        if done.returncode != 0:
            raise SystemExit(f"error: the stack does not synthesize:\n{done.stderr[-2000:]}")
        return merged(read_stacks(Path(outdir)).values())


def default_credentials() -> tuple[Any, requests.Session]:
    """Application Default Credentials and an authorized session (None when there are none)."""
    from google.auth.transport.requests import AuthorizedSession

    credentials = application_default()
    return credentials, AuthorizedSession(credentials) if credentials else requests.Session()


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.Parser(
        prog="scripts/preflight",
        description="Check, before `cdktf deploy`, that the project will accept the stack: "
        "credentials, project, billing, permissions, Firestore, organization policies. "
        "Changes nothing. Exit 1 when a check fails.",
    )
    parser.add_argument("--project", help="GCP project (default: the project in cdktf.json)")
    return parser


def main(
    argv: list[str] | None = None,
    out: TextIO = sys.stdout,
    connect: Callable[[], tuple[Any, requests.Session]] = default_credentials,
    synth: Callable[[DeploymentConfig, TextIO], Mapping[str, Any]] = synthesize,
) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(overrides={"project": args.project} if args.project else None)
    except ConfigError as exc:
        return arguments.refusal(str(exc))
    credentials, session = connect()
    # Without credentials no check needs what the stack declares.
    stack = synth(config, out) if credentials is not None else {}
    ctx = Context(config, stack, session)
    print(f"preflight for project {config.project}, region {config.region}", file=out)
    failed = []
    for name, verdict in run_checks(ctx, credentials):
        print_result(name, verdict, out)
        failed += [name] if verdict.status == FAIL else []
    said = f"{len(failed)} check(s) failed: {', '.join(failed)}" if failed else "ready to deploy"
    print(f"\npreflight: {said}", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
