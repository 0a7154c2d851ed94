"""The organization policies that would break this stack, read before a deploy: locations,
the functions' ingress, and domain restricted sharing (legacy and managed) against the members
the stack binds but does not create. A policy the caller may not read is a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from infra.ops.gcp_rest import CRM, Context, Reply, Verdict, fail, ok, warn

ORGPOLICY = "https://orgpolicy.googleapis.com/v2"
# The managed successor of iam.allowedPolicyMemberDomains: its parameters name the members and
# principal sets IAM may bind (DRS_DOC, "managed constraint"); only Org Policy v2 reads it.
MANAGED_MEMBERS = "iam.managed.allowedPolicyMembers"
INGRESS_VALUES = {  # Cloud Functions ingress setting -> run.allowedIngress value
    "ALLOW_ALL": "all",
    "ALLOW_INTERNAL_ONLY": "internal",
    "ALLOW_INTERNAL_AND_GCLB": "internal-and-cloud-load-balancing",
}
DRS_DOC = (
    "https://cloud.google.com/resource-manager/docs/organization-policy/domain-restricted-sharing"
)
_REGION_GROUP = re.compile(r"in:[a-z]+-[a-z]+[0-9]+-locations")


def list_verdict(policy: Mapping[str, Any], value_allowed: Callable[[str], bool | None]) -> str:
    """How a list policy treats one value: "allowed", "denied" or "unknown"."""
    listed = policy.get("listPolicy")
    if not listed or listed.get("allValues") == "ALLOW":
        return "allowed"  # not set (or a boolean constraint): nothing restricts it
    if listed.get("allValues") == "DENY":
        return "denied"
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


def _unreadable(ctx: Context, reply: Reply) -> Verdict:
    return warn(
        f"cannot read it: {reply.message}",
        f"ask for roles/orgpolicy.policyViewer on {ctx.project}, or check the constraint in "
        "the console (IAM & Admin > Organization policies)",
    )


def _policy(ctx: Context, constraint: str) -> tuple[Mapping[str, Any], Verdict | None]:
    """The effective (v1) policy of a constraint, or the warning that it cannot be read."""
    reply = ctx.post(
        f"{CRM}/projects/{ctx.project}:getEffectiveOrgPolicy",
        {"constraint": f"constraints/{constraint}"},
    )
    return reply.body, None if reply.ok else _unreadable(ctx, reply)


def check_locations(ctx: Context) -> Verdict:
    policy, unreadable = _policy(ctx, "gcp.resourceLocations")
    if unreadable:
        return unreadable
    used = {ctx.config.region}
    if ctx.config.create_firestore_database:
        used.add(ctx.config.firestore_location)
    verdicts = {loc: list_verdict(policy, _location_in(loc)) for loc in sorted(used)}
    denied = [loc for loc, v in verdicts.items() if v == "denied"]
    unknown = [loc for loc, v in verdicts.items() if v == "unknown"]
    allowed = policy.get("listPolicy", {}).get("allowedValues", [])
    if denied:
        return fail(
            f"{', '.join(denied)} not allowed here (allowed: {', '.join(allowed) or 'none'})",
            'set "region" (and firestore_location) in cdktf.json to an allowed location, '
            "or ask your organization admin for an exception on this project",
        )
    if unknown:
        return warn(
            f"cannot tell whether {', '.join(allowed)} includes {', '.join(unknown)}",
            "check the value groups: https://cloud.google.com/resource-manager/docs/"
            "organization-policy/defining-locations",
        )
    return ok(f"{', '.join(sorted(used))} allowed")


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


def check_ingress(ctx: Context, constraint: str) -> Verdict:
    """run.allowedIngress (values all/internal/...) or cloudfunctions.allowedIngressSettings
    (values ALLOW_ALL/...) against the functions' ingress settings."""
    policy, unreadable = _policy(ctx, constraint)
    if unreadable:
        return unreadable
    run_values = constraint.startswith("run.")
    refused = []
    for setting, functions in sorted(_ingress_used(ctx.stack).items()):
        value = INGRESS_VALUES.get(setting, setting) if run_values else setting
        if list_verdict(policy, _is(value)) != "allowed":
            refused.append(f"{value} ({', '.join(functions)})")
    if not refused:
        return ok("the functions' ingress settings are allowed")
    backfill = "ALLOW_ALL" in _ingress_used(ctx.stack) and ctx.config.backfill_invokers
    return fail(
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


def check_member_domains(ctx: Context) -> Verdict:
    policy, unreadable = _policy(ctx, "iam.allowedPolicyMemberDomains")
    if unreadable:
        return unreadable
    listed = policy.get("listPolicy")
    if not listed or listed.get("allValues") == "ALLOW":
        return ok("not restricted")
    outside = _outside_members(ctx.stack)
    return fail(
        f"domain restricted sharing is enforced ({', '.join(listed.get('allowedValues', []))}) "
        f"and the stack binds {len(outside)} members outside your domain, Google's service "
        "agents among them (Pub/Sub, Cloud Storage): IAM would refuse those bindings",
        "for the deploy, override the policy on this project to allow all (console: IAM & "
        "Admin > Organization policies > Domain restricted sharing > Override parent's "
        f"policy), run cdktf deploy, then restore it ({DRS_DOC})",
    )


def check_managed_members(ctx: Context) -> Verdict:
    url = f"{ORGPOLICY}/projects/{ctx.project}/policies/{MANAGED_MEMBERS}:getEffectivePolicy"
    reply = ctx.get(url)
    if not reply.ok:
        return _unreadable(ctx, reply)
    rules = [r for r in reply.body.get("spec", {}).get("rules", []) if r.get("enforce")]
    if not rules:
        return ok("not enforced")
    subjects = {s for r in rules for s in r.get("parameters", {}).get("allowedMemberSubjects", [])}
    sets = [p for r in rules for p in r.get("parameters", {}).get("allowedPrincipalSets", [])]
    outside = [m for m in _outside_members(ctx.stack) if m not in subjects]
    if not outside:
        return ok("every member the stack binds is an allowed subject")
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
        return warn(f"{what}; allowed principal sets {', '.join(sets)} may", fix)
    return fail(f"{what}: IAM would refuse those bindings", fix)


CHECKS: Mapping[str, Callable[[Context], Verdict]] = {
    "org policy gcp.resourceLocations": check_locations,
    "org policy run.allowedIngress": lambda ctx: check_ingress(ctx, "run.allowedIngress"),
    "org policy cloudfunctions.allowedIngressSettings": lambda ctx: check_ingress(
        ctx, "cloudfunctions.allowedIngressSettings"
    ),
    "org policy iam.allowedPolicyMemberDomains": check_member_domains,
    f"org policy {MANAGED_MEMBERS}": check_managed_members,
}
