"""Who may do what, as the synthesized stacks say: the IAM the local stack enforces.

`load_policy` reads the IAM member bindings of the identities the local stack plays (the
functions' runtime accounts, the push and trigger accounts, the Pub/Sub service agent) from
the pipeline stack of a `cdktf.out` and the stacks it reads, with Terraform references
resolved. What it cannot read exactly (a role missing from `ROLES`, another form of IAM
condition, an unknown kind of binding) is an error, never a guess. Plain JSON, no cdktf.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from infra.model.synthesized import merged, read_stacks
from infra.model.topology import Topology

# The roles the stacks grant to those identities, with their permissions as Google's IAM
# roles reference lists them (https://cloud.google.com/iam/docs/roles-permissions, per
# service: .../roles-permissions/storage, /pubsub, /datastore, /run, /eventarc, /iam).
_PERMISSIONS = {
    "roles/storage.objectViewer": "resourcemanager.projects.{get,list} storage.folders.{get,list} "
    "storage.managedFolders.{get,list} storage.objects.{get,list}",
    "roles/storage.objectUser": "orgpolicy.policy.get resourcemanager.projects.{get,list} "
    "storage.folders.{create,delete,get,list,rename} storage.managedFolders.{create,delete,get,"
    "list} storage.multipartUploads.{abort,create,list,listParts} "
    "storage.objects.{create,delete,get,list,restore,update}",
    "roles/pubsub.publisher": "pubsub.topics.publish",
    "roles/pubsub.subscriber": "pubsub.snapshots.seek pubsub.subscriptions.consume "
    "pubsub.topics.attachSubscription",
    "roles/datastore.user": "appengine.applications.get datastore.databases.{get,getMetadata} "
    "datastore.entities.{allocateIds,create,delete,get,list,update} datastore.indexes.list "
    "datastore.namespaces.{get,list} datastore.statistics.{get,list} "
    "resourcemanager.projects.{get,list}",
    "roles/run.invoker": "run.jobs.run run.routes.invoke",
    "roles/eventarc.eventReceiver": "eventarc.events.{receiveAuditLogWritten,receiveEvent}",
    "roles/iam.serviceAccountTokenCreator": "iam.serviceAccounts.{getAccessToken,getOpenIdToken,"
    "implicitDelegation,signBlob,signJwt}",
}


def _expand(listing: str) -> frozenset[str]:
    """`a.b.{c,d} e.f` -> {a.b.c, a.b.d, e.f} (the table above, written as Google groups it)."""
    found = set()
    for item in listing.split():
        stem, _, verbs = item.partition(".{")
        found |= {f"{stem}.{v}" for v in verbs.rstrip("}").split(",")} if verbs else {item}
    return frozenset(found)


ROLES: Mapping[str, frozenset[str]] = {role: _expand(p) for role, p in _PERMISSIONS.items()}

# Service agents' addresses as Google names them (https://cloud.google.com/iam/docs/
# service-agents: service-PROJECT_NUMBER@gcp-sa-SERVICE.iam..., gs-project-accounts for
# Cloud Storage's); a project's number is not known before it exists, so it stays a word.
_AGENT = "service-PROJECT_NUMBER@{}.iam.gserviceaccount.com"
_REF = re.compile(r"\$\{(data\.)?([a-z0-9_]+)\.([^.}]+)\.([^}]+)\}")
# The CEL the stacks write: resource.name == "..." and resource.name.startsWith("...").
_ATOM = re.compile(r'resource\.name\s*==\s*"([^"\\]*)"|resource\.name\.startsWith\("([^"\\]*)"\)')


class PolicyError(ValueError):
    """The stacks hold IAM that the local check cannot evaluate exactly."""


def condition_holds(expression: str, resource: str) -> bool:
    """An IAM condition of `||`s of `&&`s of the two forms the stacks write."""
    return any(
        all(_atom(atom.strip(), resource) for atom in part.split("&&"))
        for part in expression.split("||")
    )


def _atom(text: str, resource: str) -> bool:
    match = _ATOM.fullmatch(text)
    if match is None:
        raise PolicyError(
            f'IAM condition {text!r}: the local check evaluates resource.name == "..." and '
            'resource.name.startsWith("..."), joined by && or ||, and nothing else'
        )
    equal, prefix = match.groups()
    return resource == equal if equal is not None else resource.startswith(prefix)


@dataclass(frozen=True)
class Binding:
    """One `*_iam_member` resource: `member` (an account's email) holds `role` on `resource`,
    under `condition`."""

    address: str  # type.logical_id in cdk.tf.json
    member: str
    role: str
    resource: str  # projects/P, projects/_/buckets/B, projects/P/topics/T, ...
    condition: str = ""
    kept: str = ""  # why it stays although the local stack never uses it (`//.kept`)

    def allows(self, permission: str, resource: str) -> bool:
        # A project-level binding reaches every resource of the project (the stack has one).
        inside = self.resource.count("/") == 1 or resource == self.resource
        inside = inside or resource.startswith(self.resource + "/")
        if not inside or permission not in ROLES[self.role]:
            return False
        return not self.condition or condition_holds(self.condition, resource)


@dataclass(frozen=True)
class Policy:
    source: str  # the directory it was read from
    bindings: tuple[Binding, ...]
    runtime: Mapping[str, str]  # function key -> the account it runs as ("": none)
    # route -> the account it delivers as: a push subscription's OIDC token, or the trigger's
    invokers: Mapping[str, str]
    pubsub_agent: str
    trigger_route: str = "trigger"

    def grant(self, member: str, permission: str, resource: str) -> Binding | None:
        """The binding that lets `member` use `permission` on `resource`, else None."""
        for binding in self.bindings:
            if binding.member == member and binding.allows(permission, resource):
                return binding
        return None

    def identities(self) -> list[str]:
        """Every member the local stack plays, each once."""
        members = {*self.runtime.values(), *self.invokers.values(), self.pubsub_agent}
        return sorted(members - {""})


def service_resource(topology: Topology, function_key: str) -> str:
    """The Cloud Run service a function deploys as: what `run.invoker` is granted on."""
    name = topology.functions[function_key].name
    return f"projects/{topology.project}/locations/{topology.region}/services/{name}"


def load_policy(outdir: Path, topology: Topology, trigger_route: str = "trigger") -> Policy:
    """The IAM of the identities the local stack plays, from the one stack in `outdir`
    that deploys the topology's functions in its project, and the stacks that one reads."""
    if not (outdir / "manifest.json").is_file():
        raise PolicyError(f"{outdir} is no cdktf.out: it has no manifest.json (`cdktf synth`)")
    stacks = read_stacks(outdir)
    wanted = {(topology.project, spec.name) for spec in topology.functions.values()}
    found = [
        stack_id
        for stack_id, tf in stacks.items()
        if wanted <= {(b.get("project"), b.get("name")) for b in _Resolved([tf]).bodies(_FN)}
    ]
    if len(found) != 1:
        raise PolicyError(
            f"{outdir}: {len(found)} stacks deploy the functions {sorted(n for _, n in wanted)} "
            f"in project {topology.project!r}, not one: synthesize the local stack's settings"
        )
    remote = stacks[found[0]].get("data", {}).get("terraform_remote_state", {})
    read = [found[0], *(name.removeprefix("cross-stack-reference-input-") for name in remote)]
    tf = _Resolved(stacks[s] for s in read)

    def member(body: Mapping[str, Any], *path: str) -> str:
        """The account the field at `path` names ("" when it names none)."""
        for key in path:
            body = body.get(key) or {}
        return tf.value(str(body)) if body else ""

    functions = {b["name"]: b for b in tf.bodies(_FN)}
    subscriptions = {b["name"]: b for b in tf.bodies("google_pubsub_subscription")}
    runtime = {
        key: member(functions[spec.name], "service_config", "service_account_email")
        for key, spec in topology.functions.items()
    }
    invokers = {
        key: member(subscriptions[sub.name], "push_config", "oidc_token", "service_account_email")
        for key, sub in topology.subscriptions.items()
        if sub.push_function
    }
    trigger = functions[topology.functions[topology.trigger.function].name]
    invokers[trigger_route] = member(trigger, "event_trigger", "service_account_email")
    agents = tf.bodies("google_project_service_identity")
    pubsub = [b for b in agents if b["service"] == "pubsub.googleapis.com"]
    agent = _attribute("google_project_service_identity", pubsub[0], "email") if pubsub else ""
    policy = Policy(str(outdir), (), runtime, invokers, agent, trigger_route)
    return replace(policy, bindings=tuple(_bindings(tf, set(policy.identities()))))


_FN = "google_cloudfunctions2_function"


class _Resolved:
    """Stacks read as one, with their Terraform references resolved to what they name."""

    def __init__(self, stacks: Iterable[Mapping[str, Any]]) -> None:
        stacks = list(stacks)
        self.tf = merged(stacks)
        self.outputs = {k: v for tf in stacks for k, v in tf.get("output", {}).items()}

    def bodies(self, kind: str) -> list[dict[str, Any]]:
        return list(self.tf["resource"].get(kind, {}).values())

    def value(self, text: str, what: str = "") -> str:
        match = _REF.fullmatch(text)
        if match is None:
            if "${" in text:
                raise PolicyError(f"{what}: {text!r} is not one plain reference")
            return text
        data, kind, name, attr = match.groups()
        if kind == "terraform_remote_state":  # another stack's output
            return self.value(self.outputs[attr.removeprefix("outputs.")]["value"], what)
        body = self.tf["data" if data else "resource"].get(kind, {}).get(name)
        if body is None:
            raise PolicyError(f"{what}: {text} names no resource of the stacks")
        return _attribute(kind, body, attr)


def _attribute(kind: str, body: Mapping[str, Any], attr: str) -> str:
    """The value Terraform gives `attr` of the resource `body` of type `kind`."""
    if kind == "google_service_account":
        email = f"{body['account_id']}@{body['project']}.iam.gserviceaccount.com"
    elif kind == "google_project_service_identity":
        email = _AGENT.format("gcp-sa-" + body["service"].removesuffix(".googleapis.com"))
    elif kind == "google_storage_project_service_account":
        email = _AGENT.format("gs-project-accounts")
    elif kind in ("google_pubsub_topic", "google_pubsub_subscription") and attr == "id":
        return f"projects/{body['project']}/{kind.removeprefix('google_pubsub_')}s/{body['name']}"
    elif attr == "name" and "name" in body:
        return str(body["name"])
    else:
        raise PolicyError(f"the local check cannot resolve {kind}.{attr}")
    if attr == "member":
        return f"serviceAccount:{email}"
    return (
        f"projects/{body.get('project', '-')}/serviceAccounts/{email}" if attr == "name" else email
    )


# Each kind of binding and the resource it is on. A field may hold a name or a full path (the
# provider takes either), so only its last segment is used.
_SCOPES: Mapping[str, str] = {
    "google_project_iam_member": "projects/{project}",
    "google_storage_bucket_iam_member": "projects/_/buckets/{bucket}",
    "google_pubsub_topic_iam_member": "projects/{project}/topics/{topic}",
    "google_pubsub_subscription_iam_member": "projects/{project}/subscriptions/{subscription}",
    "google_cloud_run_service_iam_member": "projects/{project}/locations/{location}/services/"
    "{service}",
    "google_service_account_iam_member": "projects/-/serviceAccounts/{service_account_id}",
}


def _bindings(tf: _Resolved, members: set[str]) -> Iterator[Binding]:
    """The bindings in `tf` whose member is one of `members`."""
    for kind, bodies in tf.tf["resource"].items():
        if kind.endswith(("_iam_binding", "_iam_policy")):
            raise PolicyError(f"{kind}: the local check reads *_iam_member bindings only")
        for logical_id, body in bodies.items() if kind.endswith("_iam_member") else ():
            address = f"{kind}.{logical_id}"
            # A service account's member is its email here (serviceAccount:EMAIL in IAM).
            member = tf.value(body["member"], address).removeprefix("serviceAccount:")
            if member not in members:
                continue  # someone the local stack does not play (a deployer, a group)
            unknown = [x for x in (kind, body["role"]) if x not in _SCOPES and x not in ROLES]
            if unknown:
                raise PolicyError(
                    f"{address}: the local check does not know {unknown[0]} (add it to "
                    "infra/model/iam_policy.py, from Google's IAM roles reference)"
                )
            fields = {k: tf.value(v, address) for k, v in body.items() if isinstance(v, str)}
            resource = _SCOPES[kind].format(**{k: v.rsplit("/", 1)[-1] for k, v in fields.items()})
            condition = (body.get("condition") or {}).get("expression", "")
            condition_holds(condition or 'resource.name == ""', "")  # refuses other forms now
            kept = body.get("//", {}).get("kept", "")
            yield Binding(address, member, body["role"], resource, condition, kept)
