"""Deriving the apply's permissions from a stack's resource types."""

from __future__ import annotations

import pytest

from infra.model.apply_permissions import RESOURCES, UnmappedResourceTypes, required_permissions


def test_permissions_follow_the_declared_types():
    stack = {
        "resource": {"google_pubsub_topic": {"a": {}, "b": {}}, "time_sleep": {"w": {}}},
        "data": {"google_project": {"p": {}}},
    }
    found = {r.permission: (r.role, r.types) for r in required_permissions(stack)}
    assert found == {
        "pubsub.topics.create": ("roles/pubsub.admin", ("google_pubsub_topic",)),
        "pubsub.topics.get": ("roles/pubsub.admin", ("google_pubsub_topic",)),
        "pubsub.topics.update": ("roles/pubsub.admin", ("google_pubsub_topic",)),
        "resourcemanager.projects.get": ("roles/browser", ("data.google_project",)),
    }


def test_a_permission_shared_by_types_lists_them_all():
    stack = {"resource": {"google_pubsub_subscription": {}, "google_cloudfunctions2_function": {}}}
    (act_as,) = [r for r in required_permissions(stack) if r.permission.endswith("actAs")]
    assert act_as.role == "roles/iam.serviceAccountUser"
    assert act_as.types == ("google_cloudfunctions2_function", "google_pubsub_subscription")


def test_unmapped_types_are_named():
    with pytest.raises(UnmappedResourceTypes) as refused:
        required_permissions({"resource": {"google_compute_network": {}}, "data": {"x_y": {}}})
    assert refused.value.types == ["data.x_y", "google_compute_network"]


def test_every_mapping_names_a_role_and_dotted_permissions():
    for kind, table in RESOURCES.items():
        for role, permissions in table:
            assert role.startswith("roles/"), kind
            assert all(p.count(".") == 2 for p in permissions), kind
