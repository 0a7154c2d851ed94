"""Where an operator tool works: the local stack (stack.json) or a project, one topology."""

from __future__ import annotations

import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from image_pipeline.settings import Settings
from infra.local.gallery.server import Gallery
from infra.ops import target as targets
from infra.ops.smoke import Report, Smoke


def function_env(project: str, **settings: Any) -> dict[str, str]:
    """A function environment as the stack sets it, with some settings not the defaults."""
    names = {"uploads_bucket": "local-uploads", "thumbnails_bucket": "local-thumbnails"}
    names |= {"image_events_topic": "imgpipe-image-events"}
    return Settings(project=project, **names, **settings).to_env()


# The functions of this stack write a named database and their own collection names.
RUNNING = {"firestore_database": "pipeline-db", "images_collection": "photos"}
RUNNING |= {"dead_letters_collection": "letters", "thumbnail_prefix": "small/"}
STACK = {
    "project": "demo-imgpipe",
    "prefix": "imgpipe",
    "env": {
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:1",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:2",
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:3",
    },
    "buckets": {"uploads": "local-uploads", "thumbnails": "local-thumbnails"},
    "collections": {"images": "photos", "dead_letters": "letters"},
    "firestore_database": "pipeline-db",
    "function_env": function_env("demo-imgpipe", **RUNNING),
    "functions": {
        "imgpipe-make-thumbnail": {"url": "http://127.0.0.1:4", "target": "make_thumbnail"}
    },
}


def test_the_local_stack_and_a_project_resolve_names_through_one_topology() -> None:
    local = targets.from_stack(STACK)
    cloud = targets.for_project("my-real-project", "europe-west1")
    assert local.is_local and not cloud.is_local
    assert local.uploads_bucket == "local-uploads"
    assert cloud.uploads_bucket == "my-real-project-imgpipe-uploads"
    assert local.function_url("make_thumbnail") == "http://127.0.0.1:4"
    assert local.source_topic("projects/demo-imgpipe/subscriptions/imgpipe-cleanup") == (
        "projects/demo-imgpipe/topics/imgpipe-upload-events"
    )
    assert cloud.source_topic("imgpipe-metadata-writer") == (
        "projects/my-real-project/topics/imgpipe-image-events"
    )


def test_a_missing_stack_file_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(targets.TargetError, match="scripts/local up"):
        targets.from_stack_file(tmp_path / "stack.json")


def test_an_unknown_subscription_is_an_error() -> None:
    with pytest.raises(KeyError, match="no subscription"):
        targets.from_stack(STACK).source_topic("someone-elses-subscription")


def test_the_local_tools_use_the_database_and_collections_the_functions_write() -> None:
    target = targets.from_stack(STACK)
    assert target.firestore_database == "pipeline-db"
    assert (target.images_collection, target.dead_letters_collection) == ("photos", "letters")
    documents = target.documents
    assert documents.database == "pipeline-db"
    # The client itself addresses that database (nothing connects before a request).
    assert documents._client()._database_string == "projects/demo-imgpipe/databases/pipeline-db"


def test_a_stack_started_with_another_prefix_is_named_by_its_file() -> None:
    target = targets.from_stack(
        {**STACK, "prefix": "other", "functions": {"other-cleanup": {"url": "http://h:5"}}}
    )
    assert target.function_url("cleanup") == "http://h:5"
    assert target.source_topic("other-metadata-writer") == (
        "projects/demo-imgpipe/topics/other-image-events"
    )


def test_a_stack_file_without_the_functions_environment_asks_for_a_restart() -> None:
    old = {k: v for k, v in STACK.items() if k != "function_env"}
    with pytest.raises(targets.TargetError, match=r"'function_env'.*scripts/local up"):
        targets.from_stack(old)


class DeployedFunctions:
    """The Cloud Functions API's answers: each function's deployed environment."""

    def __init__(self, project: str, **databases: str) -> None:
        self.project, self.databases, self.asked = project, databases, []

    def __call__(self, name: str) -> dict[str, Any]:
        self.asked.append(name)
        env = function_env(self.project, **RUNNING)
        if name in self.databases:
            env["FIRESTORE_DATABASE"] = self.databases[name]
        return {"serviceConfig": {"uri": f"https://{name}", "environmentVariables": env}}


def test_on_gcp_the_tools_read_the_deployed_functions_not_cdktf_json(monkeypatch) -> None:
    import google.cloud.firestore
    from google.auth.credentials import AnonymousCredentials

    opened: list[dict[str, str]] = []
    real = google.cloud.firestore.Client

    def client(**kwargs: str) -> Any:  # no credentials here; nothing connects
        opened.append(kwargs)
        return real(credentials=AnonymousCredentials(), **kwargs)

    monkeypatch.setattr(google.cloud.firestore, "Client", client)
    target = targets.for_project("my-real-project", "europe-west1")
    deployed = DeployedFunctions("my-real-project")
    monkeypatch.setattr(target, "_cloud_function", deployed)
    assert target.topology.collections["images"] == "images"  # what cdktf.json says
    assert target.images_collection == "photos"  # what write_metadata writes
    assert target.dead_letters_collection == "letters"
    assert target.documents.database == "pipeline-db"
    assert opened == [{"project": "my-real-project", "database": "pipeline-db"}]
    database = target.documents._client()._database_string
    assert database == "projects/my-real-project/databases/pipeline-db"
    assert sorted(set(deployed.asked)) == ["imgpipe-handle-dead-letter", "imgpipe-write-metadata"]
    target.images_collection  # noqa: B018  (read once per function)
    assert len(deployed.asked) == 2


class _Session:
    """An AuthorizedSession stand-in answering the Functions API from DeployedFunctions."""

    def __init__(self, deployed: DeployedFunctions) -> None:
        self.deployed = deployed

    def get(self, url: str, timeout: float) -> Any:
        body = self.deployed(url.rsplit("/", 1)[1])
        return SimpleNamespace(status_code=200, json=lambda: body, text="")


def test_a_functions_url_and_settings_come_from_one_read_of_it(monkeypatch) -> None:
    target = targets.for_project("my-real-project")
    deployed = DeployedFunctions("my-real-project")
    monkeypatch.setattr(targets.Target, "_cloud_session", _Session(deployed))
    assert target.function_url("make_thumbnail") == "https://imgpipe-make-thumbnail"
    assert target.output_fingerprint()
    assert deployed.asked == ["imgpipe-make-thumbnail"]


def test_functions_writing_different_databases_are_an_error(monkeypatch) -> None:
    target = targets.for_project("my-real-project")
    deployed = DeployedFunctions("my-real-project", **{"imgpipe-handle-dead-letter": "other"})
    monkeypatch.setattr(target, "_cloud_function", deployed)
    with pytest.raises(targets.TargetError, match="different Firestore databases"):
        target.documents  # noqa: B018


def test_smoke_and_the_gallery_expect_what_make_thumbnail_runs_with() -> None:
    target = targets.from_stack(STACK)
    assert target.topology.functions["make_thumbnail"].env["THUMBNAIL_PREFIX"] == "thumbnails/"
    assert Smoke(target, Report(io.StringIO())).settings.thumbnail_prefix == "small/"
    assert Gallery(target).settings.thumbnail_prefix == "small/"


@pytest.mark.parametrize("content", ["not json", "[1]", "{}"])
def test_a_stack_file_that_is_not_one_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "stack.json"
    path.write_text(content)
    for given in (path, tmp_path):
        with pytest.raises(targets.TargetError, match="stack"):
            targets.from_stack_file(given)
