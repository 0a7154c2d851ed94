"""Cloud Functions (2nd gen): one per FunctionSpec, and who may invoke each one."""

from __future__ import annotations

from collections.abc import Sequence

from cdktf import ITerraformDependable
from cdktf_cdktf_provider_google.artifact_registry_repository import (
    ArtifactRegistryRepository,
    ArtifactRegistryRepositoryCleanupPolicies,
    ArtifactRegistryRepositoryCleanupPoliciesCondition,
    ArtifactRegistryRepositoryCleanupPoliciesMostRecentVersions,
)
from cdktf_cdktf_provider_google.artifact_registry_repository_iam_member import (
    ArtifactRegistryRepositoryIamMember,
)
from cdktf_cdktf_provider_google.cloud_run_service_iam_member import CloudRunServiceIamMember
from cdktf_cdktf_provider_google.cloudfunctions2_function import (
    Cloudfunctions2Function,
    Cloudfunctions2FunctionBuildConfig,
    Cloudfunctions2FunctionBuildConfigSource,
    Cloudfunctions2FunctionBuildConfigSourceStorageSource,
    Cloudfunctions2FunctionEventTrigger,
    Cloudfunctions2FunctionEventTriggerEventFilters,
    Cloudfunctions2FunctionServiceConfig,
)
from cdktf_cdktf_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from constructs import Construct

from infra.deploy.constructs._why import why
from infra.deploy.constructs.buckets import Buckets
from infra.deploy.constructs.deployment import Deployment
from infra.deploy.constructs.generic import WaitForPropagation
from infra.deploy.constructs.grants import project_role
from infra.deploy.constructs.iam import Identities, grants_settled
from infra.model.topology import FUNCTION_RUNTIME, Condition, FunctionSpec, Topology

# Pub/Sub push and Eventarc in the same project count as internal traffic, so nothing
# outside the project reaches the functions, whatever IAM says.
INGRESS = "ALLOW_INTERNAL_ONLY"
# Only when the deployment names backfill invokers: make_thumbnail then takes calls from
# outside the project, and IAM (run.invoker, no allUsers) still decides who gets in.
INGRESS_WITH_BACKFILL = "ALLOW_ALL"
# The function images: the current and the previous build of each function are kept (a
# rollback target); any other version is deleted a day after it was pushed.
IMAGES_KEPT_PER_FUNCTION = 2
IMAGES_DELETED_AFTER = "86400s"
# The buckets Cloud Functions (2nd gen) creates per project and region to stage builds:
# gcf-v2-sources-<project number>-<region> and gcf-v2-uploads-<project number>-<region>.
BUILD_BUCKET_PREFIXES = ("gcf-v2-sources-", "gcf-v2-uploads-")


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        deployment: Deployment,
        *,
        identities: Identities,
        buckets: Buckets,
        after: Sequence[ITerraformDependable] = (),
    ) -> None:
        super().__init__(scope, id_)
        self._deployment, self._identities, self._buckets = deployment, identities, buckets
        topology = deployment.topology
        self.images = _image_repository(self, deployment)
        # The functions start after their builder's grants and after `after` (the database).
        build_ready = [self._build_grants(), *after]
        self.functions = {
            spec.key: self._function(spec, build_ready) for spec in topology.functions.values()
        }
        trigger = topology.trigger.function
        self._invoker(
            trigger,
            "trigger",
            identities.trigger.member,
            "Eventarc calls the function with the trigger account's identity token",
        )
        push_targets = sorted(
            {s.push_function for s in topology.subscriptions.values() if s.push_function}
        )
        self.push_invoker_grants = [
            self._invoker(
                key,
                "push",
                identities.push_invoker.member,
                "Pub/Sub push delivers with the push invoker's OIDC token",
            )
            for key in push_targets
        ]
        for n, member in enumerate(deployment.config.backfill_invokers):
            self._invoker(
                trigger,
                f"backfill-{n}",
                member,
                "scripts/backfill --project sends the trigger's CloudEvents as this operator",
            )

    def _function(
        self, spec: FunctionSpec, build_ready: list[ITerraformDependable]
    ) -> Cloudfunctions2Function:
        topology, identities = self._deployment.topology, self._identities
        triggered = spec.key == topology.trigger.function
        ingress = INGRESS
        if triggered and self._deployment.config.backfill_invokers:
            ingress = INGRESS_WITH_BACKFILL
        return Cloudfunctions2Function(
            self,
            spec.key,
            project=topology.project,
            location=topology.region,
            name=spec.name,
            description=spec.purpose,
            labels={**self._deployment.labels, "function": spec.key.replace("_", "-")},
            build_config=Cloudfunctions2FunctionBuildConfig(
                runtime=FUNCTION_RUNTIME,
                entry_point=spec.key,
                source=Cloudfunctions2FunctionBuildConfigSource(
                    storage_source=Cloudfunctions2FunctionBuildConfigSourceStorageSource(
                        bucket=self._buckets.source.name,
                        object=self._buckets.source_object.name,
                    )
                ),
                service_account=identities.builder.id,
                # Our own repository, with cleanup policies, deleted by `cdktf destroy`
                # (the default gcf-artifacts one keeps every image forever).
                docker_repository=self.images.id,
            ),
            service_config=_service_config(spec, identities, ingress),
            event_trigger=(
                _event_trigger(topology, identities, self._buckets) if triggered else None
            ),
            # Builds start once the builder's grants have settled; the trigger once the
            # grants on its account have. (The APIs, the agents and the database are the
            # project stack's, applied before this one.)
            depends_on=[*build_ready, *([identities.trigger_ready] if triggered else [])],
        )

    def _build_grants(self) -> WaitForPropagation:
        """The build account's grants, each on the narrowest resource IAM allows (what
        Google's Cloud Run Builder role, `roles/run.builder`, holds: Artifact Registry upload
        and download, `logging.logEntries.create` and, of Cloud Storage, `storage.objects.get`;
        https://cloud.google.com/run/docs/reference/iam/roles), and the wait for them: a build
        started before its grants have propagated fails the apply."""
        builder = self._identities.builder
        project = self._deployment.topology.project
        grants: list[ITerraformDependable] = [
            project_role(
                self,
                "builder-logging-logWriter",
                project,
                "roles/logging.logWriter",
                builder.member,
                "the build writes its logs (logs have no narrower resource to grant on)",
            ),
            why(
                ArtifactRegistryRepositoryIamMember(
                    self,
                    "builder-images-writer",
                    project=project,
                    location=self.images.location,
                    repository=self.images.name,
                    role="roles/artifactregistry.writer",
                    member=builder.member,
                ),
                "the build pushes the function images to this repository, and no other",
            ),
            why(
                StorageBucketIamMember(
                    self,
                    "builder-source-viewer",
                    bucket=self._buckets.source.name,
                    role="roles/storage.objectViewer",
                    member=builder.member,
                ),
                "the build reads the source archive from the stack's source bucket only",
            ),
            project_role(
                self,
                "builder-storage-objectViewer",
                project,
                "roles/storage.objectViewer",
                builder.member,
                "the build reads the source Cloud Functions stages in the buckets it creates for "
                "builds (gcf-v2-sources-*, gcf-v2-uploads-*), which the stack cannot name "
                "beforehand; reading is all roles/run.builder allows of Cloud Storage",
                Condition(
                    "Cloud Functions build buckets only",
                    " || ".join(
                        f'resource.name.startsWith("projects/_/buckets/{prefix}")'
                        for prefix in BUILD_BUCKET_PREFIXES
                    ),
                    "the buckets Google creates for function builds, no bucket of ours or others'",
                ),
            ),
        ]
        # The provider's cloudfunctions2_basic_builder example waits 60 s for the same grants.
        return grants_settled(self, "build-grants-settled", self._deployment, grants, "every build")

    def _invoker(self, key: str, who: str, member: str, reason: str) -> CloudRunServiceIamMember:
        """`run.invoker` for `member` on one function's Cloud Run service, with its reason."""
        topology = self._deployment.topology
        return why(
            CloudRunServiceIamMember(
                self,
                f"{key}-invoker-{who}",
                project=topology.project,
                location=topology.region,
                service=self.functions[key].name,
                role="roles/run.invoker",
                member=member,
            ),
            reason,
        )


def _image_repository(scope: Construct, deployment: Deployment) -> ArtifactRegistryRepository:
    """The Artifact Registry repository the builds push the function images to."""
    topology = deployment.topology
    repository = ArtifactRegistryRepository(
        scope,
        "images",
        project=topology.project,
        location=topology.region,
        repository_id=f"{topology.prefix}-functions",
        format="DOCKER",
        description="Images of the pipeline's functions (Cloud Functions builds)",
        labels=dict(deployment.labels),
        cleanup_policy_dry_run=False,
        cleanup_policies=[
            ArtifactRegistryRepositoryCleanupPolicies(
                id="keep-recent",
                action="KEEP",
                most_recent_versions=ArtifactRegistryRepositoryCleanupPoliciesMostRecentVersions(
                    keep_count=IMAGES_KEPT_PER_FUNCTION
                ),
            ),
            ArtifactRegistryRepositoryCleanupPolicies(
                id="delete-old",
                action="DELETE",
                condition=ArtifactRegistryRepositoryCleanupPoliciesCondition(
                    tag_state="ANY", older_than=IMAGES_DELETED_AFTER
                ),
            ),
        ],
    )
    return why(
        repository,
        "every build pushes a new image; without a declared repository they pile up in "
        "gcf-artifacts with no cleanup policy and survive `cdktf destroy`",
    )


def _service_config(
    spec: FunctionSpec, identities: Identities, ingress: str
) -> Cloudfunctions2FunctionServiceConfig:
    return Cloudfunctions2FunctionServiceConfig(
        available_memory=spec.memory,
        # Validated against Cloud Run's CPU rules (infra.model.setting_rules): more than
        # one request per instance needs at least one whole vCPU.
        # https://cloud.google.com/run/docs/configuring/services/cpu
        available_cpu=spec.cpu,
        timeout_seconds=spec.timeout_seconds,
        min_instance_count=0,  # scale to zero: nothing is paid at rest
        max_instance_count=spec.max_instances,
        max_instance_request_concurrency=spec.concurrency,
        service_account_email=identities.runtime[spec.key].email,
        environment_variables=dict(spec.env),
        ingress_settings=ingress,
        all_traffic_on_latest_revision=True,
    )


def _event_trigger(
    topology: Topology, identities: Identities, buckets: Buckets
) -> Cloudfunctions2FunctionEventTrigger:
    trigger = topology.trigger
    return Cloudfunctions2FunctionEventTrigger(
        event_type=trigger.event_type,
        event_filters=[
            Cloudfunctions2FunctionEventTriggerEventFilters(
                attribute="bucket", value=buckets.buckets[trigger.bucket].name
            )
        ],
        # Retried until a delivery fails past the function's retry window
        # (pipeline._given_up_past_the_window), so a transient failure is not an event lost.
        retry_policy="RETRY_POLICY_RETRY",
        service_account_email=identities.trigger.email,
        # Storage triggers must be in the bucket's location.
        trigger_region=topology.region,
    )
