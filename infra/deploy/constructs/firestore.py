"""Firestore: the database the metadata writer and the dead-letter recorder write to."""

from __future__ import annotations

from cdktf_cdktf_provider_google.firestore_database import FirestoreDatabase
from constructs import Construct

from infra.deploy.constructs._why import why
from infra.deploy.constructs.deployment import Deployment


def firestore_database(scope: Construct, deployment: Deployment) -> FirestoreDatabase | None:
    """The `(default)` database in native mode, unless `create_firestore_database` is off
    (the project already has one: creating it again fails the apply with 409).

    Created by default because a new project has none, and without it every write of
    `write_metadata` and `handle_dead_letter` fails with NotFound, which is permanent: the
    pipeline would dead-letter and park every result unrecorded.
    """
    config, topology = deployment.config, deployment.topology
    if not config.create_firestore_database:
        return None
    env = topology.functions[topology.trigger.function].env
    database = FirestoreDatabase(
        scope,
        "firestore",
        project=config.project,
        name=env.get("FIRESTORE_DATABASE", "(default)"),
        location_id=config.firestore_location,
        type="FIRESTORE_NATIVE",
        # `cdktf destroy` leaves the database (and its data) in place.
        deletion_policy="ABANDON",
        depends_on=deployment.apis.needed("firestore"),
    )
    return why(
        database,
        "a new project has no Firestore database; set create_firestore_database=false "
        "if this one already has its (default) database",
    )
