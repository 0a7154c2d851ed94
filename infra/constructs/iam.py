"""Identities: one runtime service account per function, the trigger, push and build
accounts, and the Google service agents, with their project-level roles.

Bindings on a bucket, topic, subscription or service live next to that resource (in
`buckets.py`, `pubsub.py`, `functions.py`); only project-level ones are here.
"""

from __future__ import annotations

from cdktf_cdktf_provider_google.data_google_project import DataGoogleProject
from cdktf_cdktf_provider_google.data_google_storage_project_service_account import (
    DataGoogleStorageProjectServiceAccount,
)
from cdktf_cdktf_provider_google.project_iam_member import ProjectIamMember
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from cdktf_cdktf_provider_google.service_account_iam_member import ServiceAccountIamMember
from constructs import Construct

from infra.constructs._why import why
from infra.constructs.apis import RequiredApis
from infra.topology import Topology

# What the build service account needs to turn the source archive into a function image
# ("Custom Service Account for Cloud Build", Cloud Run functions documentation). The
# source is staged in a Google-created gcf-v2-sources-* bucket, so storage is project-wide.
BUILD_ROLES = {
    "roles/logging.logWriter": "writes the build logs",
    "roles/artifactregistry.writer": "pushes the function images to gcf-artifacts",
    "roles/storage.objectAdmin": "reads the staged source from the gcf-v2-sources bucket",
}


class Identities(Construct):
    def __init__(
        self, scope: Construct, id_: str, *, topology: Topology, apis: RequiredApis
    ) -> None:
        super().__init__(scope, id_)
        project = topology.project
        needs_iam = apis.needed("iam")

        self.project = DataGoogleProject(
            self, "project", project_id=project, depends_on=apis.needed("cloudresourcemanager")
        )
        # The service agents Google runs on the project's behalf.
        self.pubsub_agent = (
            f"serviceAccount:service-{self.project.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
        )
        storage_agent = DataGoogleStorageProjectServiceAccount(
            self, "storage-agent", project=project, depends_on=apis.needed("storage")
        )
        self.storage_agent = storage_agent.member

        # Runtime identity of each function, with exactly the roles the topology grants it.
        # Bucket and topic grants are bound next to the bucket/topic; project ones here.
        self.runtime: dict[str, ServiceAccount] = {}
        for fn in topology.functions.values():
            self.runtime[fn.key] = ServiceAccount(
                self,
                f"{fn.key}-runtime",
                project=project,
                account_id=fn.service_account_id,
                display_name=f"{fn.name} runtime",
                description=f"Runtime identity of {fn.name}: {fn.purpose}",
                depends_on=needs_iam,
            )
            for grant in fn.grants:
                if grant.kind == "project":
                    why(
                        ProjectIamMember(
                            self,
                            f"{fn.key}-{_slug(grant.role)}",
                            project=project,
                            role=grant.role,
                            member=self.runtime[fn.key].member,
                        ),
                        f"{fn.name} {grant.why}",
                    )

        # Eventarc delivers storage events to make_thumbnail as this account.
        self.trigger = ServiceAccount(
            self,
            "trigger",
            project=project,
            account_id=topology.trigger.service_account_id,
            display_name="Eventarc trigger of the uploads bucket",
            depends_on=needs_iam,
        )
        self.trigger_receiver = why(
            ProjectIamMember(
                self,
                "trigger-event-receiver",
                project=project,
                role="roles/eventarc.eventReceiver",
                member=self.trigger.member,
            ),
            "the trigger's identity must be allowed to receive Eventarc events",
        )
        # Storage direct events reach Eventarc through Pub/Sub topics that Eventarc creates,
        # so the storage agent must publish project-wide (not only to upload-events).
        self.storage_agent_eventarc = why(
            ProjectIamMember(
                self,
                "storage-agent-eventarc-publisher",
                project=project,
                role="roles/pubsub.publisher",
                member=self.storage_agent,
            ),
            "Eventarc Cloud Storage triggers need the storage service agent to publish",
        )

        # Pub/Sub push subscriptions sign their OIDC tokens as this account.
        self.push_invoker = ServiceAccount(
            self,
            "push-invoker",
            project=project,
            account_id=topology.push_invoker_account_id,
            display_name="Pub/Sub push invoker",
            description="Identity of the push subscriptions' OIDC tokens",
            depends_on=needs_iam,
        )
        why(
            ServiceAccountIamMember(
                self,
                "pubsub-agent-token-creator",
                service_account_id=self.push_invoker.name,
                role="roles/iam.serviceAccountTokenCreator",
                member=self.pubsub_agent,
                depends_on=apis.needed("pubsub"),
            ),
            "Pub/Sub mints the push OIDC tokens as the push invoker (required on projects "
            "whose Pub/Sub agent predates April 2021; scoped to this one account)",
        )

        # Cloud Build runs the function builds as this account.
        self.builder: ServiceAccount | None = None
        if topology.build_account_id:
            self.builder = ServiceAccount(
                self,
                "builder",
                project=project,
                account_id=topology.build_account_id,
                display_name="Function builds",
                description="Cloud Build identity for the pipeline's function builds",
                depends_on=needs_iam,
            )
            for role, reason in BUILD_ROLES.items():
                why(
                    ProjectIamMember(
                        self,
                        f"builder-{_slug(role)}",
                        project=project,
                        role=role,
                        member=self.builder.member,
                    ),
                    f"the build {reason}",
                )


def _slug(role: str) -> str:
    return role.removeprefix("roles/").replace(".", "-")
