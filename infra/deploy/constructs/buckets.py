"""Cloud Storage: the pipeline's buckets, the function source archive, and who may use them."""

from __future__ import annotations

from pathlib import Path

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_google.storage_bucket import (
    StorageBucket,
    StorageBucketLifecycleRule,
    StorageBucketLifecycleRuleAction,
    StorageBucketLifecycleRuleCondition,
    StorageBucketSoftDeletePolicy,
    StorageBucketVersioning,
)
from cdktf_cdktf_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from cdktf_cdktf_provider_google.storage_bucket_object import StorageBucketObject
from constructs import Construct

from infra.deploy.constructs._why import why
from infra.deploy.constructs.deployment import Deployment
from infra.deploy.constructs.iam import Identities, function_grants
from infra.deploy.constructs.protection import protect
from infra.deploy.function_source import FunctionArchive
from infra.model.topology import BucketSpec


def lifecycle_rules(spec: BucketSpec) -> list[StorageBucketLifecycleRule]:
    """Delete at an age, and SetStorageClass at each (class, age), each rule moving only
    objects still in a warmer class (https://cloud.google.com/storage/docs/lifecycle)."""
    rules = []
    if spec.lifecycle_delete_after_days:
        rules.append(
            StorageBucketLifecycleRule(
                action=StorageBucketLifecycleRuleAction(type="Delete"),
                condition=StorageBucketLifecycleRuleCondition(age=spec.lifecycle_delete_after_days),
            )
        )
    warmer = ["STANDARD"]
    for storage_class, days in spec.storage_classes:
        rules.append(
            StorageBucketLifecycleRule(
                action=StorageBucketLifecycleRuleAction(
                    type="SetStorageClass", storage_class=storage_class
                ),
                condition=StorageBucketLifecycleRuleCondition(
                    age=days, matches_storage_class=list(warmer)
                ),
            )
        )
        warmer.append(storage_class)
    return rules


class Buckets(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        deployment: Deployment,
        *,
        identities: Identities,
        archive: FunctionArchive,
        archive_path: Path,
    ) -> None:
        super().__init__(scope, id_)
        self._deployment = deployment
        topology, config = deployment.topology, deployment.config
        self.buckets = {
            spec.key: self._bucket(
                spec.key, spec.name, lifecycle_rules(spec), soft_delete=spec.soft_delete
            )
            for spec in topology.buckets.values()
        }
        # Originals cannot be made again, and thumbnails of every upload take a redeploy and
        # a backfill to remake: a plan that would destroy or replace either bucket fails.
        for resource in self.buckets.values():
            protect(resource, config)

        # Each function's roles on a bucket, exactly as the topology grants them.
        for grant_id, fn, grant in function_grants(topology, "bucket"):
            member = StorageBucketIamMember(
                self,
                grant_id,
                bucket=self.buckets[grant.target].name,
                role=grant.role,
                member=identities.runtime[fn.key].member,
            )
            why(member, f"{fn.name} {grant.why}")

        # Function source archives. Always force_destroy: it only holds build inputs that
        # git reproduces, so `cdktf destroy` may remove it with whatever is left in it.
        self.source = self._bucket(
            "source", config.source_bucket, remade_by_git=True, soft_delete=False
        )
        asset = TerraformAsset(self, "source-archive", path=str(archive_path), type=AssetType.FILE)
        # Named by the archive's hash: a code change is a new object name, which is what
        # makes the functions rebuild; the old archive object is replaced, not kept.
        self.source_object = StorageBucketObject(
            self,
            "source-object",
            bucket=self.source.name,
            name=archive.object_name,
            source=asset.path,
            content_type="application/zip",
        )

    def _bucket(
        self,
        key: str,
        name: str,
        lifecycle: list[StorageBucketLifecycleRule] | None = None,
        remade_by_git: bool = False,
        soft_delete: bool = True,
    ) -> StorageBucket:
        topology, config = self._deployment.topology, self._deployment.config
        return StorageBucket(
            self,
            key,
            project=topology.project,
            name=name,
            # A single region: the Eventarc trigger must be in the bucket's location.
            location=topology.region.upper(),
            storage_class="STANDARD",
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=StorageBucketVersioning(enabled=False),
            lifecycle_rule=lifecycle or None,
            # Off where every object can be made again (thumbnails, source archives): soft
            # delete keeps each deleted or overwritten object, billed, for 7 days by
            # default. The uploads bucket keeps it: originals cannot be recreated.
            soft_delete_policy=(
                None if soft_delete else StorageBucketSoftDeletePolicy(retention_duration_seconds=0)
            ),
            # Terraform reads it from the state when it destroys: a confirmed tear-down applies
            # it first (scripts/cdktf destroy), then deletes the bucket with its objects.
            force_destroy=remade_by_git or bool(config.confirm_destroy_data),
            labels={**self._deployment.labels, "bucket": key.replace("_", "-")},
        )
