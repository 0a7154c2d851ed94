"""The permissions preflight asks IAM for are derived from what the stack declares: every
resource and data-source type the synthesized stacks contain must have a mapping."""

from __future__ import annotations

import pytest

from infra.model.apply_permissions import (
    DATA_SOURCES,
    RESOURCES,
    UnmappedResourceTypes,
    required_permissions,
)
from infra.model.synthesized import merged

pytestmark = pytest.mark.synth


@pytest.mark.parametrize("synth_name", ["stack", "alt_stack"])
def test_every_declared_type_has_its_permissions(synth_name, request):
    synth = request.getfixturevalue(synth_name)
    deployment = merged([synth.project, synth.tf])  # what preflight asks about
    resources, data = set(deployment["resource"]), set(deployment["data"])
    assert not resources - set(RESOURCES), "add these to infra/model/apply_permissions.py"
    assert not data - set(DATA_SOURCES), "add these to infra/model/apply_permissions.py"
    needed = {r.permission for r in required_permissions(deployment)}
    assert "serviceusage.services.list" in needed  # google_project_service lists services
    # Spot checks that the derivation follows the stack, not a fixed list.
    assert "cloudfunctions.functions.create" in needed
    assert "monitoring.alertPolicies.create" in needed
    assert "logging.logMetrics.create" in needed
    assert "iam.serviceAccounts.actAs" in needed
    firestore = "google_firestore_database" in resources
    assert ("datastore.databases.create" in needed) == firestore


def test_a_stack_that_creates_the_database_asks_for_it(stack, alt_stack):
    assert stack.config.create_firestore_database  # the default
    assert "datastore.databases.create" in {
        r.permission for r in required_permissions(stack.project)
    }
    assert not alt_stack.config.create_firestore_database
    needed = {r.permission for r in required_permissions(alt_stack.project)}
    assert "datastore.databases.create" not in needed


def test_a_new_resource_type_without_a_mapping_is_refused(stack):
    grown = {**stack.tf, "resource": {**stack.tf["resource"], "google_sql_database_instance": {}}}
    with pytest.raises(UnmappedResourceTypes, match="google_sql_database_instance"):
        required_permissions(grown)
