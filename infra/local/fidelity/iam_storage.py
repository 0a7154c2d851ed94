"""Cloud Storage's permission checks, at the GCS front's listener of each function's account.

Permissions per JSON API method, from
https://cloud.google.com/storage/docs/access-control/iam-json: a write needs `create`, and
`delete` as well when it replaces a live generation (so not with `ifGenerationMatch=0`);
copy, rewrite and compose also `get` on each source. Any other method is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from infra.local.fidelity.gcs_api import CREATES, Refused, StorageRequest

Check = Callable[[str, str, str, str], bool]  # (member, permission, resource, call) -> go on?
_ON_BUCKET = ("objects.list", "buckets.get")  # the rest are on the object they name
_NEEDS = {
    "buckets.get": ("storage.buckets.get",),
    "objects.get": ("storage.objects.get",),
    "objects.list": ("storage.objects.list",),
    "objects.delete": ("storage.objects.delete",),
    "objects.patch": ("storage.objects.get", "storage.objects.update"),
    "objects.update": ("storage.objects.get", "storage.objects.update"),
    **{method: ("storage.objects.create",) for method in CREATES},
}


def needs(request: StorageRequest) -> list[tuple[str, str]]:
    """(permission, resource) the request needs."""
    bucket = f"projects/_/buckets/{request.bucket}"
    target = bucket if request.method in _ON_BUCKET else f"{bucket}/objects/{request.object}"
    if request.method not in _NEEDS:
        return [(f"(a permission for {request.method}: add it to iam_storage)", target)]
    if "upload_id" in request.params and not request.object:
        return []  # a resumable upload's chunk: its start is checked, and its final chunk
    found = [(permission, target) for permission in _NEEDS[request.method]]
    found += [("storage.objects.delete", target)] if request.replaces else []
    return found + [
        ("storage.objects.get", f"projects/_/buckets/{source_bucket}/objects/{name}")
        for source_bucket, name, _ in request.sources
    ]


class StorageChecks:
    """The front's hook: `members` maps a listener's identity (a function's service account
    id) to the account the policy names; the stack's own listener is not checked."""

    def __init__(self, check: Check, members: Mapping[str, str]) -> None:
        self._check, self._members = check, members

    def check(self, request: StorageRequest) -> Refused | None:
        member = self._members.get(request.identity)
        if member is None:
            return None
        for permission, resource in needs(request):
            if not self._check(member, permission, resource, f"{request.verb} {request.target}"):
                kind = "object" if "/objects/" in resource else "bucket"
                return Refused(
                    403,
                    "forbidden",
                    f"{member} does not have {permission} access to the Google Cloud Storage "
                    f"{kind}. Permission '{permission}' denied on resource (or it may not exist).",
                )
        return None
