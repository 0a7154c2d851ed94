"""Where an operator tool works: the local stack (stack.json) or a project, one topology."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from image_pipeline.settings import Settings
from infra.ops import target as targets


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
    cloud = targets.for_project("my-real-project")
    assert local.is_local and not cloud.is_local
    assert local.uploads_bucket == "local-uploads"
    assert cloud.uploads_bucket == "my-real-project-imgpipe-uploads"
    assert local.make_thumbnail_url == "http://127.0.0.1:4"
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
    assert target.settings.firestore_database == "pipeline-db"
    assert (target.images_collection, target.dead_letters_collection) == ("photos", "letters")
    documents = target.documents
    assert documents.database == "pipeline-db"
    # The client itself addresses that database (nothing connects before a request).
    assert documents._client()._database_string == "projects/demo-imgpipe/databases/pipeline-db"


def test_a_stack_started_with_another_prefix_is_named_by_its_file() -> None:
    target = targets.from_stack(
        {**STACK, "prefix": "other", "functions": {"other-make-thumbnail": {"url": "http://h:5"}}}
    )
    assert target.make_thumbnail_url == "http://h:5"
    assert target.source_topic("other-metadata-writer") == (
        "projects/demo-imgpipe/topics/other-image-events"
    )


def test_a_stack_file_without_the_functions_environment_asks_for_a_restart() -> None:
    old = {k: v for k, v in STACK.items() if k != "function_env"}
    with pytest.raises(targets.TargetError, match=r"'function_env'.*scripts/local up"):
        targets.from_stack(old)


class FunctionsAPI:
    """The Cloud Functions API as an AuthorizedSession reaches it: each function's deployed
    environment, with settings that are not cdktf.json's."""

    def __init__(self, project: str) -> None:
        self.project, self.asked = project, []

    def __call__(self, credentials: Any) -> FunctionsAPI:
        return self

    def get(self, url: str, timeout: float) -> Any:
        name = url.rsplit("/", 1)[1]
        self.asked.append(name)
        env = function_env(self.project, **RUNNING)
        body = {"serviceConfig": {"uri": f"https://{name}", "environmentVariables": env}}
        return SimpleNamespace(status_code=200, json=lambda: body, text="")


def deployed(monkeypatch: pytest.MonkeyPatch, project: str) -> FunctionsAPI:
    """Credentials and the Functions API, for a project here (nothing connects)."""
    import google.auth
    from google.auth.credentials import AnonymousCredentials

    api = FunctionsAPI(project)
    monkeypatch.setattr(google.auth, "default", lambda scopes: (AnonymousCredentials(), None))
    monkeypatch.setattr("google.auth.transport.requests.AuthorizedSession", api)
    return api


def test_on_gcp_the_tools_read_the_deployed_functions_not_cdktf_json(monkeypatch) -> None:
    import google.cloud.firestore
    from google.auth.credentials import AnonymousCredentials

    opened: list[dict[str, str]] = []
    real = google.cloud.firestore.Client

    def client(**kwargs: str) -> Any:  # no credentials here; nothing connects
        opened.append(kwargs)
        return real(credentials=AnonymousCredentials(), **kwargs)

    monkeypatch.setattr(google.cloud.firestore, "Client", client)
    target = targets.for_project("my-real-project")
    api = deployed(monkeypatch, "my-real-project")
    assert target.topology.collections["images"] == "images"  # what cdktf.json says
    assert target.images_collection == "photos"  # what the functions write
    assert target.dead_letters_collection == "letters"
    assert target.documents.database == "pipeline-db"
    assert opened == [{"project": "my-real-project", "database": "pipeline-db"}]
    database = target.documents._client()._database_string
    assert database == "projects/my-real-project/databases/pipeline-db"
    assert target.make_thumbnail_url == "https://imgpipe-make-thumbnail"
    assert target.settings.outputs.fingerprint
    assert api.asked == ["imgpipe-make-thumbnail"], "one read of one function for all of it"


def test_smoke_and_the_gallery_expect_what_make_thumbnail_runs_with() -> None:
    target = targets.from_stack(STACK)
    assert target.topology.functions["make_thumbnail"].env["THUMBNAIL_PREFIX"] == "thumbnails/"
    assert target.settings.thumbnail_prefix == "small/"  # the gallery reads target.settings


@pytest.mark.parametrize("content", ["not json", "[1]", "{}"])
def test_a_stack_file_that_is_not_one_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "stack.json"
    path.write_text(content)
    for given in (path, tmp_path):
        with pytest.raises(targets.TargetError, match="stack"):
            targets.from_stack_file(given)


def test_a_function_call_is_retried_as_the_platform_would(monkeypatch) -> None:
    """429 and 5xx answers are sent again (after 0, 1, 2 s); any other answer is final."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    answers, bodies = [429, 503, 204, 400, 500, 500, 500, 500], []

    class Function(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(answers.pop(0))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Function)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr("urllib3.util.retry.Retry.sleep", lambda self, response=None: None)
    url = f"http://127.0.0.1:{server.server_port}/"
    target = targets.from_stack({**STACK, "functions": {"imgpipe-make-thumbnail": {"url": url}}})
    try:
        assert target.invoke({}, b"event").status_code == 204
        assert bodies == [b"event"] * 3
        assert target.invoke({}, b"event").status_code == 400
        assert target.invoke({}, b"event").status_code == 500  # 4 tries
        assert answers == [] and len(bodies) == 8
    finally:
        server.shutdown()


def test_a_publish_is_one_bounded_call_that_keeps_every_attribute(monkeypatch) -> None:
    """The generated client's publish, under the batching one: attributes named like the
    batching `publish`'s options (`timeout`, `retry`, `ordering_key`) stay attributes."""
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.auth.credentials import AnonymousCredentials
    from google.pubsub_v1.services.publisher.client import PublisherClient as Generated

    calls: list[dict[str, Any]] = []

    def publish(self: Any, **call: Any) -> Any:
        calls.append(call)
        return SimpleNamespace(message_ids=["42"])

    monkeypatch.setattr(Generated, "publish", publish)
    target = targets.from_stack(STACK)
    client = pubsub_v1.PublisherClient(credentials=AnonymousCredentials())
    target.__dict__["_clients"] = SimpleNamespace(publisher=client)
    attributes = {"eventType": "x", "timeout": "5", "retry": "no", "ordering_key": "k"}
    assert target.publish("projects/p/topics/t", b"data", attributes) == "42"
    (call,) = calls
    assert call["topic"] == "projects/p/topics/t"
    (message,) = call["messages"]
    assert (message.data, dict(message.attributes)) == (b"data", attributes)
    assert call["timeout"] == target.deadline_seconds and call["retry"] is not None
