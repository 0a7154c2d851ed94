"""Cloud Storage: the pipeline's buckets, the function source archive, and who may use them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_google.storage_bucket import (
    StorageBucket,
    StorageBucketLifecycleRule,
    StorageBucketLifecycleRuleAction,
    StorageBucketLifecycleRuleCondition,
    StorageBucketVersioning,
)
from cdktf_cdktf_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from cdktf_cdktf_provider_google.storage_bucket_object import StorageBucketObject
from constructs import Construct

from infra.config import DeploymentConfig
from infra.constructs._why import why
from infra.constructs.apis import RequiredApis
from infra.constructs.iam import Identities
from infra.function_source import FunctionArchive
from infra.topology import Topology


class Buckets(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: DeploymentConfig,
        topology: Topology,
        identities: Identities,
        apis: RequiredApis,
        labels: Mapping[str, str],
        archive: FunctionArchive,
        archive_path: Path,
    ) -> None:
        super().__init__(scope, id_)
        needs_storage = apis.needed("storage")

        def bucket(key: str, name: str, lifecycle_days: int = 0) -> StorageBucket:
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
                lifecycle_rule=(
                    [
                        StorageBucketLifecycleRule(
                            action=StorageBucketLifecycleRuleAction(type="Delete"),
                            condition=StorageBucketLifecycleRuleCondition(age=lifecycle_days),
                        )
                    ]
                    if lifecycle_days
                    else None
                ),
                force_destroy=config.force_destroy,
                labels={**labels, "bucket": key.replace("_", "-")},
                depends_on=needs_storage,
            )

        self.buckets = {
            spec.key: bucket(spec.key, spec.name, spec.lifecycle_delete_after_days)
            for spec in topology.buckets.values()
        }

        # Each function's roles on a bucket, exactly as the topology grants them.
        for fn in topology.functions.values():
            for grant in fn.grants:
                if grant.kind == "bucket":
                    why(
                        StorageBucketIamMember(
                            self,
                            f"{grant.target}-{fn.key}-{grant.role.rsplit('.', 1)[-1]}",
                            bucket=self.buckets[grant.target].name,
                            role=grant.role,
                            member=identities.runtime[fn.key].member,
                        ),
                        f"{fn.name} {grant.why}",
                    )

        # Function source archives. Always force_destroy: they are build inputs, rebuilt
        # from git; without it `cdktf destroy` fails on the archive object it just made.
        self.source = StorageBucket(
            self,
            "source",
            project=topology.project,
            name=config.source_bucket,
            location=topology.region.upper(),
            storage_class="STANDARD",
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=StorageBucketVersioning(enabled=False),
            force_destroy=True,
            labels={**labels, "bucket": "source"},
            depends_on=needs_storage,
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
