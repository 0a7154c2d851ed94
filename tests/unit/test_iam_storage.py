"""The Cloud Storage permissions each request of the GCS front needs, and the 403."""

from __future__ import annotations

import pytest

from infra.local.fidelity.gcs_api import parse
from infra.local.fidelity.iam_storage import StorageChecks, needs
from infra.model.iam_policy import Binding, Policy

ME = "me@proj-one.iam.gserviceaccount.com"
BUCKET = "projects/_/buckets/b"
OBJ = f"{BUCKET}/objects/a/b c.jpg"


def _needs(verb: str, target: str, body: bytes = b"", replaces: bool = False):
    request = parse("me", verb, target, "application/json", body)
    request.replaces = replaces
    return needs(request)


@pytest.mark.parametrize(
    ("verb", "target", "expected"),
    [
        ("GET", "/storage/v1/b/b/o/a%2Fb%20c.jpg", [("storage.objects.get", OBJ)]),
        (
            "GET",
            "/download/storage/v1/b/b/o/a%2Fb%20c.jpg?alt=media",
            [("storage.objects.get", OBJ)],
        ),
        ("DELETE", "/storage/v1/b/b/o/a%2Fb%20c.jpg", [("storage.objects.delete", OBJ)]),
        (
            "PATCH",
            "/storage/v1/b/b/o/a%2Fb%20c.jpg",
            [("storage.objects.get", OBJ), ("storage.objects.update", OBJ)],
        ),
        ("GET", "/storage/v1/b/b/o?prefix=a/", [("storage.objects.list", BUCKET)]),
    ],
)
def test_reads_listings_deletes_and_patches(verb, target, expected):
    assert _needs(verb, target, b"{}" if verb == "PATCH" else b"") == expected


def test_a_write_needs_delete_too_when_it_replaces_a_live_generation():
    upload = "/upload/storage/v1/b/b/o?uploadType=media&name=a%2Fb%20c.jpg"
    create, delete = ("storage.objects.create", OBJ), ("storage.objects.delete", OBJ)
    assert _needs("POST", upload) == [create]
    assert _needs("POST", upload, replaces=True) == [create, delete]
    # A resumable upload: its start and its last chunk are checked, the chunks between not.
    chunk = "/upload/storage/v1/b/b/o?uploadType=resumable&upload_id=u1"
    assert _needs("PUT", chunk) == []


def test_copy_and_rewrite_read_their_source():
    target = "/storage/v1/b/src/o/x/rewriteTo/b/b/o/a%2Fb%20c.jpg"
    assert _needs("POST", target, b"{}", replaces=True) == [
        ("storage.objects.create", OBJ),
        ("storage.objects.delete", OBJ),
        ("storage.objects.get", "projects/_/buckets/src/objects/x"),
    ]


def test_a_method_without_known_permissions_needs_one_nobody_holds():
    assert _needs("GET", "/storage/v1/b/b") == [("storage.buckets.get", BUCKET)]
    [(permission, _)] = _needs("DELETE", "/storage/v1/b/b")
    assert "buckets.delete" in permission and "iam_storage" in permission


def _checks(*bindings: Binding) -> tuple[StorageChecks, list[tuple[str, str, str]]]:
    policy = Policy("test", bindings, {}, {}, "")
    asked: list[tuple[str, str, str]] = []

    def check(member: str, permission: str, resource: str, call: str) -> bool:
        asked.append((member, permission, resource))
        return policy.grant(member, permission, resource) is not None

    return StorageChecks(check, {"me": ME}), asked


def test_a_listener_of_a_function_is_checked_and_refused_in_cloud_storages_words():
    checks, asked = _checks(Binding("v", ME, "roles/storage.objectViewer", BUCKET))
    read = parse("me", "GET", "/storage/v1/b/b/o/a%2Fb%20c.jpg", "", b"")
    assert checks.check(read) is None
    delete = parse("me", "DELETE", "/storage/v1/b/b/o/a%2Fb%20c.jpg", "", b"")
    refused = checks.check(delete)
    assert refused is not None and (refused.status, refused.reason) == (403, "forbidden")
    assert refused.message == (
        f"{ME} does not have storage.objects.delete access to the Google Cloud Storage object. "
        "Permission 'storage.objects.delete' denied on resource (or it may not exist)."
    )
    own = parse("", "DELETE", "/storage/v1/b/b/o/a%2Fb%20c.jpg", "", b"")
    assert checks.check(own) is None  # the stack's own listener: tools and tests
    assert [a[1] for a in asked] == ["storage.objects.get", "storage.objects.delete"]
