"""The permissions each Cloud Storage JSON API request needs, and the 403 body."""

from __future__ import annotations

import json

import pytest

from infra.local.fidelity.iam_storage import forbidden, requirements

OBJ = "projects/_/buckets/b/objects/a/b c.jpg"


def _needs(method: str, path: str, live: bool = False, body: dict | None = None, **params: str):
    return requirements(method, path, params, body or {}, lambda bucket, name: live)


@pytest.mark.parametrize(
    ("method", "path", "needs"),
    [
        ("GET", "/storage/v1/b/b/o/a%2Fb%20c.jpg", [("storage.objects.get", OBJ)]),
        ("GET", "/download/storage/v1/b/b/o/a%2Fb%20c.jpg", [("storage.objects.get", OBJ)]),
        ("DELETE", "/storage/v1/b/b/o/a%2Fb%20c.jpg", [("storage.objects.delete", OBJ)]),
        (
            "PATCH",
            "/storage/v1/b/b/o/a%2Fb%20c.jpg",
            [("storage.objects.get", OBJ), ("storage.objects.update", OBJ)],
        ),
        ("GET", "/storage/v1/b/b/o", [("storage.objects.list", "projects/_/buckets/b")]),
        ("GET", "/storage/v1/b/b", [("storage.buckets.get", "projects/_/buckets/b")]),
    ],
)
def test_reads_and_deletes(method, path, needs):
    assert _needs(method, path) == needs


def test_an_upload_replacing_a_live_object_also_needs_delete():
    path = "/upload/storage/v1/b/b/o"
    create, delete = ("storage.objects.create", OBJ), ("storage.objects.delete", OBJ)
    assert _needs("POST", path, live=False, name="a/b c.jpg") == [create]
    assert _needs("POST", path, live=True, name="a/b c.jpg") == [create, delete]
    # ifGenerationMatch=0 can only create; another generation can only replace.
    assert _needs("POST", path, live=True, name="a/b c.jpg", ifGenerationMatch="0") == [create]
    assert _needs("POST", path, live=False, name="a/b c.jpg", ifGenerationMatch="7") == [
        create,
        delete,
    ]
    # A multipart upload names the object in its metadata part, not in the query.
    assert _needs("POST", path, body={"name": "a/b c.jpg"}, uploadType="multipart") == [create]
    # The chunks of a resumable upload were checked when it started.
    assert _needs("PUT", path, uploadType="resumable", upload_id="u1") == []


def test_copy_and_rewrite_read_their_source():
    copy = _needs("POST", "/storage/v1/b/src/o/x/rewriteTo/b/b/o/a%2Fb%20c.jpg", live=True)
    assert copy == [
        ("storage.objects.get", "projects/_/buckets/src/objects/x"),
        ("storage.objects.create", OBJ),
        ("storage.objects.delete", OBJ),
    ]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/storage/v1/b/b/o/x"),
        ("GET", "/batch/storage/v1"),
        ("POST", "/storage/v1/b"),
        ("POST", "/storage/v1/b/b/o/x/compose"),
    ],
)
def test_other_requests_are_not_guessed(method, path):
    assert _needs(method, path) is None


def test_the_403_names_the_caller_the_permission_and_the_kind_of_resource():
    body = json.loads(forbidden("me@p.iam.gserviceaccount.com", "storage.objects.get", OBJ))
    assert body["error"]["code"] == 403
    assert body["error"]["message"] == (
        "me@p.iam.gserviceaccount.com does not have storage.objects.get access to the Google "
        "Cloud Storage object. Permission 'storage.objects.get' denied on resource (or it may "
        "not exist)."
    )
    assert body["error"]["errors"][0]["reason"] == "forbidden"
    bucket = json.loads(forbidden("me", "storage.objects.list", "projects/_/buckets/b"))
    assert "Google Cloud Storage bucket." in bucket["error"]["message"]
