"""Firestore: the database the metadata writer and the dead-letter recorder write to."""

from __future__ import annotations

from collections.abc import Mapping

from cdktf_cdktf_provider_google.firestore_database import FirestoreDatabase
from cdktf_cdktf_provider_google.firestore_field import FirestoreField, FirestoreFieldIndexConfig
from constructs import Construct

from infra.deploy.constructs._why import why
from infra.deploy.constructs.apis import RequiredApis
from infra.deploy.constructs.deployment import Deployment
from infra.deploy.constructs.protection import protect
from infra.model.config import DeploymentConfig

# Firestore indexes every field by default. A field whose values increase steadily (a
# timestamp, a GCS generation, a Pub/Sub message id) holds the collection to about 500
# writes/s, and a large map costs an index entry per key; nothing queries these, so they are
# exempt (https://cloud.google.com/firestore/docs/best-practices#indexes). Still indexed:
# `name` (tools query it by range), `status`, `bucket` and the small facts.
UNINDEXED_FIELDS: Mapping[str, tuple[str, ...]] = {
    "images": (
        "updatedAt",
        "timeCreated",
        "generation",
        "exif",
        "thumbnails",
        "timings",
        "placeholder",
        "metadata",
    ),
    "dead_letters": (
        "recordedAt",
        "publishTime",
        "messageId",
        "data",
        "attributes",
        "deadLetterAttributes",
        "malformed",
    ),
}


def firestore_database(
    scope: Construct, config: DeploymentConfig, apis: RequiredApis
) -> FirestoreDatabase | None:
    """The project's `(default)` database (native mode), which a new project lacks, unless
    `create_firestore_database` is off (creating it again would fail the apply with 409).
    Why by default, and why in the project stack: docs/architecture.md, "Firestore"."""
    if not config.create_firestore_database:
        return None
    database = FirestoreDatabase(
        scope,
        "firestore",
        project=config.project,
        name="(default)",  # what the functions read (FIRESTORE_DATABASE)
        location_id=config.firestore_location,
        type="FIRESTORE_NATIVE",
        # Should the stack ever be destroyed (confirm_destroy_data), the database and its
        # data stay in place: the project's other workloads may use it.
        deletion_policy="ABANDON",
        depends_on=apis.needed("firestore"),
    )
    protect(database, config)
    return why(
        database,
        "a new project has no Firestore database; set create_firestore_database=false "
        "if this one already has its (default) database",
    )


def pipeline_database(scope: Construct, deployment: Deployment) -> FirestoreDatabase | None:
    """A named environment's own database (the default deployment uses the project stack's),
    and the single-field index exemptions of the pipeline's collections (`UNINDEXED_FIELDS`).

    An empty `index_config` removes every single-field index of the field, as in the
    provider's `firestore_field` example ("Disable all single field indexes for the
    timestamp property").
    """
    topology, config = deployment.topology, deployment.config
    database = None
    if config.environment:
        database = FirestoreDatabase(
            scope,
            "environment-database",
            project=topology.project,
            name=topology.firestore_database,
            location_id=config.firestore_location,
            type="FIRESTORE_NATIVE",
            # The environment's alone: a confirmed tear-down deletes it with its documents.
            deletion_policy="DELETE" if config.confirm_destroy_data else "ABANDON",
        )
        protect(database, config)
        why(database, "this environment's documents, apart from every other environment's")
    for key, names in UNINDEXED_FIELDS.items():
        for name in names:
            why(
                FirestoreField(
                    scope,
                    f"unindexed-{key}-{name}",
                    project=topology.project,
                    database=database.name if database else topology.firestore_database,
                    collection=topology.collections[key],
                    field=name,
                    index_config=FirestoreFieldIndexConfig(),
                ),
                "increases steadily or is a large map, and nothing queries it: indexed, it "
                "would cap the collection's writes (Firestore best practices)",
            )
    return database
