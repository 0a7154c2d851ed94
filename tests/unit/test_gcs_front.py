"""The GCS front: how it reads requests (pure), and its own behaviour against a stand-in fake
(bodies read whole within a deadline, locks, links per listener, answers fixed up)."""

from __future__ import annotations

import json
import re
import select
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.local.fidelity import gcs_api, gcs_front
from infra.local.fidelity.gcs_api import Refused, StorageRequest, parse, precondition_failure
from infra.local.fidelity.gcs_front import GcsFront, ObjectLocks

LIVE = {"bucket": "b", "name": "a/b", "generation": "7", "metageneration": "2", "size": "3"}


def test_requests_are_read_as_json_api_methods_with_their_objects():
    copy = parse(
        "", "POST", "/storage/v1/b/s/o/a%2Fb/copyTo/b/d/o/c%20d?ifGenerationMatch=0"
        "&ifSourceGenerationMatch=7", "", b"",
    )  # fmt: skip
    assert (copy.method, copy.bucket, copy.object) == ("objects.copy", "d", "c d")
    assert copy.sources == (("s", "a/b", {"ifGenerationMatch": "7"}),)
    assert copy.conditions == {"ifGenerationMatch": "0"} and copy.writes
    source = {"name": "x", "objectPreconditions": {"ifGenerationMatch": 3}}
    body = json.dumps({"sourceObjects": [source], "destination": {"metadata": {"k": "v"}}})
    compose = parse("", "POST", "/storage/v1/b/d/o/out/compose", "", body.encode())
    assert compose.sources == (("d", "x", {"ifGenerationMatch": "3"}),)
    assert compose.resource == {"metadata": {"k": "v"}}
    multipart = (
        b"--==x==\r\ncontent-type: application/json\r\n\r\n"
        b'{"name": "m.jpg", "metadata": {"owner": "a"}}\r\n--==x==\r\n\r\nBYTES\r\n--==x==--'
    )
    insert = parse(
        "sa", "POST", "/upload/storage/v1/b/u/o?uploadType=multipart",
        "multipart/related; boundary='==x=='", multipart,
    )  # fmt: skip
    assert (insert.identity, insert.object, insert.resource["metadata"]) == (
        "sa",
        "m.jpg",
        {"owner": "a"},
    )
    chunk = parse("", "PUT", "/upload/storage/v1/b/u/o?upload_id=9&name=r", "", b"bytes")
    assert (chunk.method, chunk.resource, chunk.params["upload_id"]) == ("objects.insert", {}, "9")
    with pytest.raises(Refused) as refused:  # the XML API and the fake's own endpoints
        parse("", "PUT", "/u/object.jpg", "", b"")
    assert refused.value.status == 404


@pytest.mark.parametrize(
    ("conditions", "live", "fails"),
    [
        ({"ifGenerationMatch": "0"}, None, False),
        ({"ifGenerationMatch": "0"}, LIVE, True),
        ({"ifGenerationMatch": "7"}, LIVE, False),
        ({"ifGenerationMatch": "8"}, None, True),
        ({"ifGenerationNotMatch": "7"}, LIVE, True),
        ({"ifGenerationNotMatch": "8"}, None, False),
        ({"ifMetagenerationMatch": "2"}, LIVE, False),
        ({"ifMetagenerationMatch": "3"}, LIVE, True),
        ({"ifMetagenerationNotMatch": "2"}, LIVE, True),
        ({"ifMetagenerationMatch": "1"}, None, True),
    ],
)
def test_preconditions_as_cloud_storage_applies_them(conditions, live, fails):
    failure = precondition_failure(conditions, live)
    assert (failure is not None) == fails
    assert failure is None or failure.status == 412


@pytest.mark.parametrize(
    ("metadata", "refused"),
    [
        ({"owner": "alice"}, False),
        ({"owner": "a\x00b"}, True),
        ({"k\r": "v"}, True),
        ({"owner": None}, False),  # a patch that removes the key
        ({"k": "x" * 8190}, False),
        ({"k": "x" * 8192}, True),
        ({"k": 5}, True),
    ],
)
def test_custom_metadata_cloud_storage_refuses_is_refused(metadata, refused):
    request = StorageRequest(
        "", "PATCH", "/", "objects.patch", "b", "o", resource={"metadata": metadata}
    )
    assert (gcs_api.refusal(request) is not None) == refused


def test_a_name_gcs_refuses_is_refused_on_create():
    request = parse("", "POST", "/upload/storage/v1/b/u/o?uploadType=media&name=..", "", b"x")
    refused = gcs_api.refusal(request)
    assert refused is not None and refused.status == 400


def test_an_overwrite_notifies_the_new_generation_and_the_deletion_of_the_old():
    new = {**LIVE, "generation": "9", "size": "5", "updated": "2026-01-01T00:00:00Z"}
    (finalize, finalized), (delete, deleted) = gcs_api.notifications(LIVE, new, "now")
    assert finalized["eventType"] == "OBJECT_FINALIZE" and finalized["overwroteGeneration"] == "7"
    assert deleted == {
        "bucketId": "b", "objectId": "a/b", "objectGeneration": "7", "eventType": "OBJECT_DELETE",
        "eventTime": "now", "payloadFormat": "JSON_API_V1", "overwrittenByGeneration": "9",
    }  # fmt: skip
    assert json.loads(delete)["size"] == "3"  # the deleted generation's whole resource
    assert json.loads(finalize)["size"] == "5"
    ((_, update),) = gcs_api.notifications(LIVE, LIVE, "now")
    assert update["eventType"] == "OBJECT_METADATA_UPDATE"


def test_object_locks_are_all_or_nothing_within_the_deadline():
    locks = ObjectLocks()
    with locks.hold([("b", "x"), ("b", "y")], 1) as held:
        assert held
        with locks.hold([("b", "z"), ("b", "y")], 0.1) as second:
            assert not second
        with locks.hold([("b", "z")], 0.1) as other:
            assert other
    assert locks._locks == {}  # nothing left behind


# -- against a stand-in for the fake ------------------------------------------------------


class Fake(ThreadingHTTPServer):
    """Knows one object, `b/o`, and records the requests that reach it."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, bytes]] = []
        self.live: dict[str, Any] | None = {"bucket": "b", "name": "o", "generation": "1"}
        self.link = ""
        super().__init__(("127.0.0.1", 0), _FakeHandler)


class _FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Fake

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, body))
        if self.command == "DELETE":
            self.server.live, reply = None, b"null"
        elif self.command == "GET" and self.path == "/storage/v1/b/b/o/o":
            reply = json.dumps(self.server.live or {}).encode()
        else:
            reply = json.dumps({"mediaLink": f"{self.server.link}/download/o"}).encode()
        missing = self.command == "GET" and self.path.endswith("/o/o") and not self.server.live
        self.send_response(404 if missing else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


@pytest.fixture
def front() -> Iterator[tuple[GcsFront, Fake]]:
    fake = Fake()
    threading.Thread(target=fake.serve_forever, args=(0.05,), daemon=True).start()
    front = GcsFront(f"127.0.0.1:{fake.server_address[1]}", None, ())  # publishes nothing
    fake.link = f"http://{front.host}"
    yield front, fake
    front.stop()
    fake.shutdown()
    fake.server_close()


def test_a_stalled_body_gets_408_never_reaches_the_fake_and_blocks_nobody(front, monkeypatch):
    gcs, fake = front
    monkeypatch.setattr(gcs_front, "BODY_SECONDS", 2.0)
    port = int(gcs.host.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as stalled:
        stalled.sendall(
            b"POST /upload/storage/v1/b/b/o?uploadType=media&name=o HTTP/1.1\r\n"
            b"Host: x\r\nContent-Length: 1000\r\n\r\n0123456789"
        )
        listed = requests.get(f"http://{gcs.host}/storage/v1/b/b/o", timeout=10)
        assert listed.status_code == 200
        # Answered while the stalled body is still held: its 408 has not been sent yet.
        assert select.select([stalled], [], [], 0)[0] == []
        answer = b""
        while piece := stalled.recv(4096):  # the front closes the connection after its 408
            answer += piece
    assert answer.startswith(b"HTTP/1.1 408") and b"uploadBrokenConnection" in answer
    assert all("name=o" not in path for _, path, _ in fake.seen)  # no partial body forwarded


def test_a_chunked_body_is_forwarded_whole_with_its_length(front):
    gcs, fake = front
    pieces = iter([b"abc", b"defg"])
    requests.post(
        f"http://{gcs.host}/upload/storage/v1/b/b/o?uploadType=media&name=n",
        data=pieces,
        timeout=10,
    )
    assert ("POST", "/upload/storage/v1/b/b/o?uploadType=media&name=n", b"abcdefg") in fake.seen


def test_a_delete_is_204_without_a_body_and_preconditions_are_checked_first(front):
    gcs, fake = front
    url = f"http://{gcs.host}/storage/v1/b/b/o/o"
    assert requests.delete(url, params={"ifGenerationMatch": 2}, timeout=10).status_code == 412
    assert fake.live is not None  # the stale delete never reached the fake
    deleted = requests.delete(url, params={"ifGenerationMatch": 1}, timeout=10)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert requests.delete(url, timeout=10).status_code == 404


def test_each_identity_has_a_listener_and_links_lead_back_to_it(front):
    gcs, _ = front
    seen: list[StorageRequest] = []

    class Recorder:
        def check(self, request: StorageRequest) -> Refused | None:
            seen.append(request)
            return Refused(403, "forbidden", "no") if request.method == "objects.delete" else None

    gcs.hooks.append(Recorder())
    own = gcs.listen("thumbnailer@p.iam.gserviceaccount.com")
    assert own != gcs.host and gcs.listen("thumbnailer@p.iam.gserviceaccount.com") == own
    written = requests.post(
        f"http://{own}/upload/storage/v1/b/b/o?uploadType=media&name=o", data=b"x", timeout=10
    )
    assert written.json()["mediaLink"].startswith(f"http://{own}/")
    refused = requests.delete(f"http://{own}/storage/v1/b/b/o/o", timeout=10)
    assert refused.status_code == 403 and refused.json()["error"]["message"] == "no"
    assert [(r.identity, r.method, r.replaces) for r in seen] == [
        ("thumbnailer@p.iam.gserviceaccount.com", "objects.insert", True),
        ("thumbnailer@p.iam.gserviceaccount.com", "objects.delete", True),
    ]


def test_the_differences_table_names_tests_that_exist():
    """docs/local-stack.md lists every known difference from Cloud Storage with the test
    that shows how the stack handles it: each named test must exist."""
    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "local-stack.md").read_text()
    table = doc[doc.index("| fake-gcs-server alone |") :].split("\n\n", 1)[0]
    rows = table.splitlines()[2:]
    assert len(rows) >= 10
    for row in rows:
        named = re.findall(r"`(test_\w+\.py)::(test_\w+)`", row.rsplit("|", 2)[1])
        assert named, row
        for module, test in named:
            (path,) = root.glob(f"tests/*/{module}")
            assert f"def {test}(" in path.read_text(), (module, test)
