"""Which permissions a Cloud Storage JSON API request needs, and the 403 that refuses one.

Per method, from https://cloud.google.com/storage/docs/access-control/iam-json: get, list,
delete and patch need their permission on the object (list: on the bucket); an insert needs
`create`, and `delete` too when it replaces a live object (not with `ifGenerationMatch=0`);
copy and rewrite need `get` on the source and what an insert needs on the destination.
Another request (compose, batch...) answers None: refused rather than passed unchecked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

Needs = list[tuple[str, str]]  # (permission, resource)
Exists = Callable[[str, str], bool]  # (bucket, object name) -> is a generation live?

_OBJECT = re.compile(r"/(?:download/)?storage/v1/b/([^/]+)/o/([^/]+)")
_BUCKET = re.compile(r"/storage/v1/b/([^/]+)(/o)?")
_UPLOAD = re.compile(r"/upload/storage/v1/b/([^/]+)/o")
_TO = re.compile(r"/storage/v1/b/([^/]+)/o/([^/]+)/(?:copyTo|rewriteTo)/b/([^/]+)/o/([^/]+)")


def bucket_resource(bucket: str) -> str:
    return f"projects/_/buckets/{bucket}"


def object_resource(bucket: str, name: str) -> str:
    return f"projects/_/buckets/{bucket}/objects/{name}"


def requirements(
    method: str,
    path: str,
    params: Mapping[str, str],
    body: Mapping[str, Any],
    exists: Exists,
) -> Needs | None:
    """What the request needs. `path` is percent-encoded, without its query; `body` is the
    object resource the request carries (an upload's metadata), or {}."""
    if method == "PUT" and _UPLOAD.fullmatch(path) and "upload_id" in params:
        return []  # the rest of a resumable upload: checked when it was started
    if method == "POST" and (match := _UPLOAD.fullmatch(path)):
        return _writes(match[1], params.get("name") or body.get("name", ""), params, exists)
    if method == "POST" and (match := _TO.fullmatch(path)):
        source, target = object_resource(match[1], unquote(match[2])), unquote(match[4])
        return [("storage.objects.get", source), *_writes(match[3], target, params, exists)]
    if match := _OBJECT.fullmatch(path):
        verbs: Mapping[str, Sequence[str]] = {
            "GET": ("get",),
            "HEAD": ("get",),
            "DELETE": ("delete",),
            "PATCH": ("get", "update"),
            "PUT": ("get", "update"),
        }
        resource = object_resource(match[1], unquote(match[2]))
        return [(f"storage.objects.{v}", resource) for v in verbs.get(method, ())] or None
    if method == "GET" and (match := _BUCKET.fullmatch(path)):
        verb = "storage.objects.list" if match[2] else "storage.buckets.get"
        return [(verb, bucket_resource(match[1]))]
    return None


def _writes(bucket: str, name: str, params: Mapping[str, str], exists: Exists) -> Needs:
    """An insert of `name`: create, and delete when it would replace a live generation."""
    needs = [("storage.objects.create", object_resource(bucket, name))]
    expected = params.get("ifGenerationMatch")
    if expected != "0" and (expected is not None or exists(bucket, name)):
        needs.append(("storage.objects.delete", object_resource(bucket, name)))
    return needs


def forbidden(who: str, permission: str, resource: str) -> bytes:
    """The JSON error Cloud Storage answers a caller without `permission`."""
    kind = "object" if "/objects/" in resource else "bucket"
    message = (
        f"{who} does not have {permission} access to the Google Cloud Storage {kind}. "
        f"Permission '{permission}' denied on resource (or it may not exist)."
    )
    error = {"domain": "global", "reason": "forbidden", "message": message}
    return json.dumps({"error": {"code": 403, "message": message, "errors": [error]}}).encode()
