"""The Google service agents of the project and the project-level roles Google gives them:
every trigger in the project relies on them, so they are the project stack's (Eventarc: a
removed `roles/eventarc.serviceAgent` must be restored,
https://cloud.google.com/eventarc/docs/roles-permissions)."""

from __future__ import annotations

from cdktf_cdktf_provider_google.data_google_storage_project_service_account import (
    DataGoogleStorageProjectServiceAccount,
)
from constructs import Construct

from infra.deploy.constructs._why import why
from infra.deploy.constructs.apis import SERVICES, RequiredApis
from infra.deploy.constructs.generic import ExtraProviders, GenericResource
from infra.deploy.constructs.grants import project_role


class ServiceAgents(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        project: str,
        apis: RequiredApis,
        providers: ExtraProviders,
    ) -> None:
        super().__init__(scope, id_)

        def agent(key: str) -> str:
            """The `member` (`serviceAccount:...`) of `key`'s Google service agent, created
            now (google-beta's `google_project_service_identity`). An agent is created
            lazily, some time after its API is enabled, and IAM refuses to bind one that
            does not exist yet: every binding uses this `member`, which orders it after."""
            identity = GenericResource(
                self,
                f"{key}-agent",
                resource_type="google_project_service_identity",
                provider=providers.beta,
                attributes={"project": project, "service": SERVICES[key]},
                depends_on=apis.needed(key),
            )
            why(identity, f"creates the {key} service agent before any IAM binding names it")
            return identity.get_string_attribute("member")

        self.pubsub_member = agent("pubsub")
        eventarc_member = agent("eventarc")
        # Cloud Storage's agent has no service identity API; this data source returns it
        # (and creates it if needed). No `depends_on`: a data source with one is read only at
        # apply time whenever an upstream resource has changes, which makes its member unknown
        # in every plan and re-plans every binding that names it. The Cloud Storage API it
        # calls is among those Google enables by default in a project created with the console
        # or gcloud (Service Usage, "Enabled services").
        self.storage_member = DataGoogleStorageProjectServiceAccount(
            self, "storage-agent", project=project
        ).member

        project_role(
            self,
            "eventarc-agent-service-agent",
            project,
            "roles/eventarc.serviceAgent",
            eventarc_member,
            "Eventarc creates a trigger's Pub/Sub plumbing as its service agent; a trigger "
            "created before the agent exists and holds this role fails with 'Permission denied "
            "while using the Eventarc Service Agent' (terraform-provider-google #14584, #25294)",
        )
        # Storage direct events reach Eventarc through Pub/Sub topics that Eventarc creates,
        # so the storage agent must publish project-wide (not only to our topic).
        project_role(
            self,
            "storage-agent-eventarc-publisher",
            project,
            "roles/pubsub.publisher",
            self.storage_member,
            "Eventarc Cloud Storage triggers need the storage service agent to publish "
            "(Eventarc, 'Roles and permissions for Cloud Run functions targets')",
        )
        # No wait here: the pipeline stack is applied after this whole stack, and its
        # trigger waits iam_settle_seconds after its own grants, so after these as well
        # (the deploy-order check proves it on the two stacks merged).
