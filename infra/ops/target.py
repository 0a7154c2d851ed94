"""How an operator tool reaches a pipeline: the local stack or a real GCP project.

Both are described by one `Topology`, so names resolve one way everywhere; the local stack
adds where things listen (`.local/stack.json`). What the functions run with (their Firestore
database and collections, the output rules) comes from their environment, deployed on GCP or
the local stack's, never from cdktf.json, which may hold changes not deployed yet.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, suppress
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TextIO

import requests
from google.api_core.exceptions import NotFound
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from image_pipeline import deadlines
from infra.common import arguments
from infra.common.credentials import LOGIN, application_default
from infra.common.paths import STACK_JSON
from infra.common.terminal import printable
from infra.model.config import ConfigError, load_config
from infra.model.topology import Topology, build_topology
from infra.ops.documents import Documents
from infra.ops.gcp_rest import Reply

if TYPE_CHECKING:
    from image_pipeline.settings import Settings

STACK_FILE = STACK_JSON
EMULATOR_VARS = ("STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST")
_FUNCTIONS_API = "https://cloudfunctions.googleapis.com/v2"
# Where a service is, for the error that says it did not answer: emulator, or Google's host.
_ENDPOINTS = {
    "Cloud Storage": ("STORAGE_EMULATOR_HOST", "storage.googleapis.com"),
    "Pub/Sub": ("PUBSUB_EMULATOR_HOST", "pubsub.googleapis.com"),
}


class TargetError(RuntimeError):
    """The stack cannot be reached as asked; the message says what to do."""


@dataclass
class Target:
    """One pipeline deployment plus the means to call it."""

    topology: Topology
    emulator_env: Mapping[str, str] = field(default_factory=dict)  # empty on GCP
    function_urls: Mapping[str, str] = field(default_factory=dict)  # by name; local only
    # Every Firestore, Cloud Storage and Pub/Sub call gives up after this long.
    deadline_seconds: float = deadlines.SECONDS
    # The local stack's functions' environment (from stack.json); on GCP it is read.
    function_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return bool(self.emulator_env)

    @property
    def project(self) -> str:
        return self.topology.project

    @property
    def uploads_bucket(self) -> str:
        return self.topology.buckets["uploads"].name

    @property
    def thumbnails_bucket(self) -> str:
        return self.topology.buckets["thumbnails"].name

    @property
    def images_collection(self) -> str:
        return self.settings.images_collection

    @property
    def dead_letters_collection(self) -> str:
        return self.settings.dead_letters_collection

    def source_topic(self, subscription: str) -> str:
        """Topic path a dead letter came from, via its source subscription's name."""
        return self.topology.topic_path(self.topology.subscription_by_name(subscription).topic)

    @cached_property
    def _clients(self) -> Any:
        """The emulator clients of the harness locally; default credentials on GCP."""
        if self.is_local:
            from infra.common.emulator_clients import emulator_clients

            database = self.settings.firestore_database
            return emulator_clients(self.project, self.emulator_env, database)
        import google.cloud.pubsub_v1 as pubsub_v1
        import google.cloud.storage as storage

        return SimpleNamespace(
            storage=storage.Client(project=self.project),
            publisher=pubsub_v1.PublisherClient(),
        )

    @property
    def storage(self) -> Any:
        return self._clients.storage

    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> str:
        """Publishes one message in one bounded API call; its id. (The batching client's
        `publish` takes attributes as keywords: one named `timeout` would be misread.)"""
        from google.cloud.pubsub_v1.publisher.client import Client as Batching
        from google.pubsub_v1 import PubsubMessage

        api: Any = super(Batching, self._clients.publisher)  # the generated client it extends
        message = PubsubMessage(data=data, attributes=attributes)
        with self.answering("Pub/Sub"):
            sent = api.publish(
                topic=topic, messages=[message], **deadlines.grpc_call(self.deadline_seconds)
            )
        return str(sent.message_ids[0])

    @cached_property
    def documents(self) -> Documents:
        """Firestore, through the adapter the functions write with, in their database."""
        database, seconds = self.settings.firestore_database, self.deadline_seconds
        if self.is_local:
            return Documents(self._clients.firestore, database, seconds)
        from google.cloud import firestore

        client = firestore.Client(project=self.project, database=database)
        return Documents(client, database, seconds)

    def storage_call(self) -> dict[str, Any]:
        """`timeout` and `retry` for a Cloud Storage call, within the deadline."""
        return deadlines.storage_call(self.deadline_seconds)

    def answering(self, service: str) -> AbstractContextManager[None]:
        """Around a Cloud Storage or Pub/Sub call: no answer becomes `Unavailable`."""
        variable, host = _ENDPOINTS[service]
        where = self.emulator_env.get(variable) or host
        return deadlines.answering(service, where, self.deadline_seconds)

    def blobs(self, bucket: str, prefix: str = "", after: str = "") -> Iterator[Any]:
        """The objects of `bucket` whose names start with `prefix` and sort after `after`, in
        name order (the listing is paged; each page within the deadline)."""
        listing = self.storage.list_blobs(
            bucket, prefix=prefix or None, start_offset=after or None, **self.storage_call()
        )
        with self.answering("Cloud Storage"):
            yield from (blob for blob in listing if blob.name > after)

    def blob(self, bucket: str, name: str) -> Any:
        """The live object, or None."""
        with self.answering("Cloud Storage"):
            return self.storage.bucket(bucket).get_blob(name, **self.storage_call())

    def delete(self, bucket: str, name: str, **conditions: Any) -> None:
        """Deletes an object (`conditions`: its preconditions); one already gone is fine."""
        with self.answering("Cloud Storage"), suppress(NotFound):
            self.storage.bucket(bucket).blob(name).delete(**conditions, **self.storage_call())

    @cached_property
    def _http(self) -> requests.Session:
        """Retries what the platform would: a 429 or 5xx answer, a lost connection (a re-sent
        event is a duplicate the function ignores), after 0, 1 and 2 s."""
        retry = Retry(
            total=3,
            backoff_factor=0.5,
            status_forcelist=(429, *range(500, 600)),
            allowed_methods=None,  # POST too
            raise_on_status=False,  # the last answer is returned
        )
        session = requests.Session()
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        return session

    @property
    def make_thumbnail_url(self) -> str:
        """Where Eventarc delivers: the harness's process locally, the Cloud Run URI on GCP."""
        if self.is_local:
            return self.function_urls[self.topology.functions[self.topology.trigger.function].name]
        return str(self._deployed["serviceConfig"]["uri"])

    @cached_property
    def _deployed(self) -> dict[str, Any]:
        """make_thumbnail as deployed (Cloud Functions v2 API), read once per run: its URI, and
        the environment every function is given (infra.model.topology.function_env)."""
        from google.auth.transport.requests import AuthorizedSession

        name = self.topology.functions[self.topology.trigger.function].name
        where = f"{self.project}/{self.topology.region}"
        url = f"{_FUNCTIONS_API}/projects/{self.project}/locations/{self.topology.region}"
        session = AuthorizedSession(application_default(required=True))
        reply = Reply.of(session.get(f"{url}/functions/{name}", timeout=30))
        if reply.status == 404:
            raise TargetError(
                f"no function {name} in {where}: deploy the stack first (or set the region it "
                'is in: "region" in cdktf.json, or PIPELINE_REGION)'
            )
        if not reply.ok:
            raise TargetError(
                f"cannot look up function {name} in {where}: HTTP {reply.status} {reply.message}"
            )
        return dict(reply.body)

    @cached_property
    def settings(self) -> Settings:
        """What the functions run with: the deployed environment on GCP, the local stack's
        otherwise; never cdktf.json, which may hold changes not deployed yet."""
        from image_pipeline.settings import Settings, SettingsError

        env = self.function_env
        if not self.is_local:
            env = self._deployed.get("serviceConfig", {}).get("environmentVariables", {})
        try:
            return Settings.from_env(env)
        except SettingsError as exc:
            raise TargetError(f"cannot read the functions' settings: {exc}") from None

    @cached_property
    def _id_token(self) -> str:
        """An OIDC ID token for the caller, as Eventarc's trigger account sends one: minted
        for the audience by service-account credentials; for a user, `gcloud auth
        print-identity-token`, which Cloud Run accepts (how developers call a private service)."""
        import google.auth.exceptions
        from google.auth.transport.requests import Request
        from google.oauth2 import id_token

        audience = self.make_thumbnail_url
        try:
            return id_token.fetch_id_token(Request(), audience)
        except google.auth.exceptions.DefaultCredentialsError:
            pass
        try:
            done = subprocess.run(
                ["gcloud", "auth", "print-identity-token"],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise TargetError(
                "no identity token: use a service account's credentials, or install gcloud "
                f"and run 'gcloud auth login' ({exc})"
            ) from None
        return done.stdout.strip()

    def invoke(self, headers: Mapping[str, str], body: bytes) -> requests.Response:
        """POSTs one event to make_thumbnail, authenticated as Eventarc would be."""
        url = self.make_thumbnail_url
        if not self.is_local:
            headers = {**headers, "Authorization": f"Bearer {self._id_token}"}
        response = self._http.post(url, headers=headers, data=body, timeout=60)
        if not self.is_local and response.status_code in (403, 404):
            raise TargetError(
                f"{url} answered {response.status_code}: the deployment must let you call it; "
                "add yourself to the 'backfill_invokers' setting and run 'cdktf deploy' "
                "(docs/deploy-and-operate.md, Backfill)"
            )
        return response


def from_stack_file(path: Path = STACK_FILE, deadline_seconds: float = deadlines.SECONDS) -> Target:
    """The local stack, as `scripts/local up` described it in `.local/stack.json`."""
    try:
        stack = json.loads(path.read_text())
    except FileNotFoundError:
        raise TargetError(
            f"{path} not found: start the local stack with 'scripts/local up', "
            "or pass --project ID for a real project"
        ) from None
    except (OSError, ValueError) as exc:
        raise TargetError(f"{path} is not a stack file ({exc})") from None
    return from_stack(stack, deadline_seconds)


def from_stack(stack: Mapping[str, Any], deadline_seconds: float = deadlines.SECONDS) -> Target:
    """A Target from the contents of `stack.json` (the gallery gets it in memory): the names
    the stack was started with, whatever cdktf.json and PIPELINE_* say now."""
    try:
        config = load_config(
            overrides={
                "project": stack["project"],
                "prefix": stack["prefix"],
                "uploads_bucket": stack["buckets"]["uploads"],
                "thumbnails_bucket": stack["buckets"]["thumbnails"],
            }
        )
        env = {name: stack["env"][name] for name in EMULATOR_VARS}
        function_env = dict(stack["function_env"])
    except (KeyError, TypeError) as exc:
        raise TargetError(
            f"the stack file is not what this version writes ({exc!r}): restart the local "
            "stack ('scripts/local down', then 'scripts/local up')"
        ) from None
    urls = {name: spec["url"] for name, spec in stack.get("functions", {}).items()}
    return Target(
        build_topology(config),
        emulator_env=env,
        function_urls=urls,
        function_env=function_env,
        deadline_seconds=deadline_seconds,
    )


def for_project(project: str) -> Target:
    """A real deployment: the same settings `cdktf deploy` used, with this project id."""
    return Target(build_topology(load_config(overrides={"project": project})))


def add_arguments(parser: argparse.ArgumentParser, local_by_default: bool = True) -> None:
    """The flags every operator tool shares to choose its target."""
    default = "the local stack" if local_by_default else "the project in cdktf.json"
    group = parser.add_argument_group(f"target (default: {default})")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--project", help="a real GCP project")
    where.add_argument("--local", action="store_true", help="the local stack (scripts/local up)")
    group.add_argument(
        "--stack", type=Path, default=STACK_FILE, help="stack file of the local stack"
    )
    parser.set_defaults(local_by_default=local_by_default)


def from_arguments(args: argparse.Namespace) -> Target:
    """The target the flags name (TargetError or ConfigError when there is none)."""
    if args.local or (args.local_by_default and not args.project):
        return from_stack_file(args.stack)
    return for_project(args.project or load_config().project)


def run_tool(
    args: argparse.Namespace, command: Callable[[Target], int], err: TextIO | None = None
) -> int:
    """Runs a tool's command on the target its flags name. What stops it is one line on
    stderr naming what to do, never a traceback: exit 2 for a bad target or checkpoint, 1
    for a dependency, credentials, an API or a function the tool cannot use."""
    from infra.ops.bulk import CheckpointError

    try:
        target = from_arguments(args)
    except (TargetError, ConfigError) as exc:
        return arguments.refusal(str(exc))
    try:
        return command(target)
    except CheckpointError as exc:
        return arguments.refusal(str(exc))
    except Exception as exc:
        line = stopping(exc, target.project)
        if line is None:
            raise
        print(f"error: {printable(line)}", file=err or sys.stderr)
        return 1


def stopping(exc: Exception, project: str | None = None) -> str | None:
    """What to do about an error that stops a tool on GCP (None: not one of those)."""
    import google.auth.exceptions as auth
    from google.api_core import exceptions as api

    if isinstance(exc, deadlines.Unavailable | TargetError):
        return str(exc)
    if isinstance(exc, auth.DefaultCredentialsError):
        return (
            f"no Application Default Credentials ({exc}); run '{LOGIN}' (or set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service account key file)"
        )
    if isinstance(exc, auth.RefreshError):
        return f"your credentials were refused ({exc}); run '{LOGIN}'"
    if isinstance(exc, auth.TransportError | requests.RequestException):
        return f"could not connect ({exc})"  # offline, a proxy, DNS
    if not isinstance(exc, api.GoogleAPICallError):
        return None
    message = str(exc.message).splitlines()[0] if exc.message else type(exc).__name__
    if exc.reason == "SERVICE_DISABLED":
        service = (exc.metadata or {}).get("service", "the API")
        return f"{message}; enable it: gcloud services enable {service} --project {project}"
    return f"{exc.code} {message}"
