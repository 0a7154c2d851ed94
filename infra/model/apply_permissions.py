"""The IAM permissions `cdktf deploy` needs, derived from the resources the stack declares.

`required_permissions(tf)` reads a synthesized `cdk.tf.json` and maps every resource and
data-source type in it to the permissions Terraform's google provider uses to create it and
read it back, each with a predefined role that grants them (the fix to print when the
caller lacks one). A type missing from the table is an error, never silence: a stack that
gains a new kind of resource fails `tests/infra` until its permissions are written here.

Sources: each API's "Required permissions"/IAM page (Cloud Storage JSON API, Pub/Sub access
control, IAM service accounts, Cloud Run functions access control, Firestore, Cloud
Logging and Monitoring access control).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# What deploying a resource that runs as a service account requires of the caller.
ACT_AS = ("roles/iam.serviceAccountUser", ("iam.serviceAccounts.actAs",))


def _crud(service: str, collection: str, *verbs: str) -> tuple[str, ...]:
    return tuple(f"{service}.{collection}.{verb}" for verb in verbs or ("create", "get", "update"))


def _policy(role: str, collection: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """An `*_iam_member`: reading and setting the IAM policy of its resource."""
    return ((f"roles/{role}", _crud(*collection.split("."), "getIamPolicy", "setIamPolicy")),)


# Terraform type -> ((role, permissions), ...). Roles are the narrowest predefined ones
# that hold the permissions; Owner holds them all.
RESOURCES: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "google_project_service": (
        (
            "roles/serviceusage.serviceUsageAdmin",
            # google provider 6.x's google_project_service reads the project's enabled
            # services with services.list, not only services.get.
            (
                "serviceusage.services.enable",
                "serviceusage.services.get",
                "serviceusage.services.list",
            ),
        ),
    ),
    "google_project_service_identity": (
        ("roles/serviceusage.serviceUsageAdmin", ("serviceusage.services.use",)),
    ),
    "google_project_iam_member": _policy(
        "resourcemanager.projectIamAdmin", "resourcemanager.projects"
    ),
    "google_service_account": (("roles/iam.serviceAccountAdmin", _crud("iam", "serviceAccounts")),),
    "google_service_account_iam_member": _policy("iam.serviceAccountAdmin", "iam.serviceAccounts"),
    "google_storage_bucket": (("roles/storage.admin", _crud("storage", "buckets")),),
    "google_storage_bucket_iam_member": _policy("storage.admin", "storage.buckets"),
    "google_storage_bucket_object": (
        ("roles/storage.admin", _crud("storage", "objects", "create", "get", "delete")),
    ),
    # Creating a notification configuration is an update of its bucket.
    "google_storage_notification": (
        ("roles/storage.admin", _crud("storage", "buckets", "get", "update")),
    ),
    "google_pubsub_topic": (("roles/pubsub.admin", _crud("pubsub", "topics")),),
    "google_pubsub_topic_iam_member": _policy("pubsub.admin", "pubsub.topics"),
    "google_pubsub_subscription": (
        (
            "roles/pubsub.admin",
            (*_crud("pubsub", "subscriptions"), "pubsub.topics.attachSubscription"),
        ),
        ACT_AS,  # a push subscription's OIDC token is minted as a service account
    ),
    "google_pubsub_subscription_iam_member": _policy("pubsub.admin", "pubsub.subscriptions"),
    "google_cloudfunctions2_function": (
        (
            "roles/cloudfunctions.admin",
            (*_crud("cloudfunctions", "functions"), "cloudfunctions.operations.get"),
        ),
        ACT_AS,  # runtime, build and trigger service accounts
    ),
    "google_cloud_run_service_iam_member": _policy("run.admin", "run.services"),
    "google_eventarc_trigger": (("roles/eventarc.admin", _crud("eventarc", "triggers")), ACT_AS),
    "google_firestore_database": (
        ("roles/datastore.owner", _crud("datastore", "databases", "create", "get")),
    ),
    # A field's index configuration is read and patched through the index permissions.
    "google_firestore_field": (
        ("roles/datastore.indexAdmin", _crud("datastore", "indexes", "get", "list", "update")),
    ),
    "google_artifact_registry_repository": (
        ("roles/artifactregistry.admin", _crud("artifactregistry", "repositories")),
    ),
    "google_artifact_registry_repository_iam_member": _policy(
        "artifactregistry.admin", "artifactregistry.repositories"
    ),
    "google_iam_workload_identity_pool": (
        ("roles/iam.workloadIdentityPoolAdmin", _crud("iam", "workloadIdentityPools")),
    ),
    "google_iam_workload_identity_pool_provider": (
        ("roles/iam.workloadIdentityPoolAdmin", _crud("iam", "workloadIdentityPoolProviders")),
    ),
    "google_logging_metric": (("roles/logging.configWriter", _crud("logging", "logMetrics")),),
    "google_monitoring_alert_policy": (
        ("roles/monitoring.alertPolicyEditor", _crud("monitoring", "alertPolicies")),
    ),
    "google_project_iam_custom_role": (("roles/iam.roleAdmin", _crud("iam", "roles")),),
    # Terraform-local resources: no API call, no permission.
    "time_sleep": (),
    "time_static": (),
}
DATA_SOURCES: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    # Another stack's outputs (cdktf cross-stack references), read from that stack's state
    # with the access the deployer already has to the state (a local file, or the
    # `state_bucket`): nothing in the project.
    "terraform_remote_state": (),
    "google_project": (("roles/browser", ("resourcemanager.projects.get",)),),
    "google_storage_project_service_account": (
        ("roles/browser", ("resourcemanager.projects.get",)),
    ),
}


class UnmappedResourceTypes(LookupError):
    """The stack declares resource types whose permissions are not known here."""

    def __init__(self, types: list[str]) -> None:
        super().__init__(
            f"no permission mapping for {', '.join(types)}: add it to "
            "infra/model/apply_permissions.py (the permissions to create and read it back, "
            "and a role that grants them)"
        )
        self.types = types


@dataclass(frozen=True)
class Requirement:
    """One permission the apply needs, a role that grants it, and which types need it."""

    permission: str
    role: str
    types: tuple[str, ...]


def required_permissions(tf: Mapping) -> list[Requirement]:
    """Every permission the stack's resources need, sorted; unknown types raise."""
    tables = {kind: RESOURCES.get(kind) for kind in tf.get("resource", {})} | {
        f"data.{kind}": DATA_SOURCES.get(kind) for kind in tf.get("data", {})
    }
    unmapped = sorted(kind for kind, table in tables.items() if table is None)
    if unmapped:
        raise UnmappedResourceTypes(unmapped)
    found: dict[str, tuple[str, set[str]]] = {}
    for kind, table in tables.items():
        for role, permissions in table or ():
            for permission in permissions:
                found.setdefault(permission, (role, set()))[1].add(kind)
    return [
        Requirement(permission, role, tuple(sorted(types)))
        for permission, (role, types) in sorted(found.items())
    ]


def read_permissions() -> list[str]:
    """The permissions of the tables above that only read (get, list, getIamPolicy): what
    `terraform plan` needs to refresh the stacks, and all a read-only identity holds. Not
    `storage.objects.get`: objects are data (the plan reads only the source archive, which
    the plan account is granted apart, on the source buckets alone)."""
    return sorted(
        {
            permission
            for table in (*RESOURCES.values(), *DATA_SOURCES.values())
            for _, permissions in table
            for permission in permissions
            if permission.rsplit(".", 1)[1] in ("get", "list", "getIamPolicy")
            and permission != "storage.objects.get"
        }
    )


def deployer_roles() -> list[str]:
    """Every role of the tables above: what an account that deploys both stacks holds
    (docs/deploy-and-operate.md, "Prerequisites", names the same)."""
    return sorted(
        {role for table in (*RESOURCES.values(), *DATA_SOURCES.values()) for role, _ in table}
    )
