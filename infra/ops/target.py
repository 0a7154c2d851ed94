"""How an operator tool reaches a pipeline: the local stack or a real GCP project.

Both are described by the same `Topology` (built from `infra.model.config`), so bucket, topic
and subscription names are resolved one way everywhere. The local stack only adds where
things listen, read from `.local/stack.json`: the project id it uses, the emulator hosts
and the URL of each functions-framework process. On GCP a function is reached at its
Cloud Run URI with an ID token, exactly as Eventarc reaches it.

What the functions run with (the Firestore database and collections they write, the output
rules) is read from their environment: the deployed one on GCP, the local stack's from
stack.json; never from cdktf.json, which may hold changes not deployed yet.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TextIO

import requests

from image_pipeline import deadlines
from infra.common import arguments
from infra.common.paths import STACK_JSON
from infra.common.terminal import printable
from infra.model.config import ConfigError, load_config
from infra.model.topology import Topology, build_topology
from infra.ops.documents import Documents
from infra.ops.gcp_rest import LOGIN, Reply

if TYPE_CHECKING:
    from image_pipeline.settings import Settings

STACK_FILE = STACK_JSON
EMULATOR_VARS = ("STORAGE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST")
_FUNCTIONS_API = "https://cloudfunctions.googleapis.com/v2"
_CLOUD_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# Where a service is, for the error that says it did not answer: emulator, or Google's host.
_ENDPOINTS = {
    "Cloud Storage": ("STORAGE_EMULATOR_HOST", "storage.googleapis.com"),
    "Pub/Sub": ("PUBSUB_EMULATOR_HOST", "pubsub.googleapis.com"),
}
# The functions that write each Firestore collection: a tool reads where these write.
COLLECTION_WRITERS = {"images": "write_metadata", "dead_letters": "handle_dead_letter"}


class TargetError(RuntimeError):
    """The stack cannot be reached as asked; the message says what to do."""


@dataclass
class Target:
    """One pipeline deployment plus the means to call it."""

    topology: Topology
    emulator_env: Mapping[str, str] = field(default_factory=dict)  # empty on GCP
    function_urls: Mapping[str, str] = field(default_factory=dict)  # by name; local only
    timeout_seconds: float = 60.0
    # Every Firestore, Cloud Storage and Pub/Sub call gives up after this long.
    deadline_seconds: float = deadlines.SECONDS
    # The local stack's functions' environment (from stack.json); on GCP it is looked up.
    function_env: Mapping[str, str] = field(default_factory=dict)
    _functions: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    _settings: dict[str, Settings] = field(default_factory=dict, repr=False)

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
        return self.deployed_settings(COLLECTION_WRITERS["images"]).images_collection

    @property
    def dead_letters_collection(self) -> str:
        return self.deployed_settings(COLLECTION_WRITERS["dead_letters"]).dead_letters_collection

    @cached_property
    def firestore_database(self) -> str:
        """The Firestore database the functions write (`FIRESTORE_DATABASE`)."""
        found = {
            key: self.deployed_settings(key).firestore_database
            for key in COLLECTION_WRITERS.values()
        }
        if len(set(found.values())) > 1:
            raise TargetError(f"the functions write to different Firestore databases: {found}")
        return next(iter(found.values()))

    def source_topic(self, subscription: str) -> str:
        """Topic path a dead letter came from, via its source subscription's name."""
        return self.topology.topic_path(self.topology.subscription_by_name(subscription).topic)

    @cached_property
    def _clients(self) -> Any:
        """The emulator clients of the harness locally; default credentials on GCP."""
        if self.is_local:
            from infra.common.emulator_clients import emulator_clients

            return emulator_clients(self.project, self.emulator_env, self.firestore_database)
        import google.cloud.pubsub_v1 as pubsub_v1
        import google.cloud.storage as storage

        return SimpleNamespace(
            storage=storage.Client(project=self.project),
            publisher=pubsub_v1.PublisherClient(),
        )

    @property
    def storage(self) -> Any:
        return self._clients.storage

    @cached_property
    def documents(self) -> Documents:
        """Firestore, through the adapter the functions write with, in their database."""
        database, seconds = self.firestore_database, self.deadline_seconds
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

    @property
    def publisher(self) -> Any:
        return self._clients.publisher

    @cached_property
    def _http(self) -> requests.Session:
        return requests.Session()

    def function_url(self, key: str) -> str:
        """URL of a function: the harness's process locally, the Cloud Run URI on GCP."""
        name = self.topology.functions[key].name
        if self.is_local:
            try:
                return self.function_urls[name]
            except KeyError:
                raise TargetError(f"the local stack runs no function {name!r}") from None
        return str(self._cloud_function(name)["serviceConfig"]["uri"])

    @cached_property
    def _cloud_session(self) -> Any:
        """One authorized session (one credentials lookup) for every Cloud API call."""
        import google.auth
        from google.auth.transport.requests import AuthorizedSession

        credentials, _ = google.auth.default(scopes=[_CLOUD_SCOPE])
        return AuthorizedSession(credentials)

    def _cloud_function(self, name: str) -> dict[str, Any]:
        """The deployed function (Cloud Functions v2 API), with its service's environment;
        read once per tool run (its URL and its settings come from the same answer)."""
        if name not in self._functions:
            url = f"{_FUNCTIONS_API}/projects/{self.project}/locations/{self.topology.region}"
            response = self._cloud_session.get(f"{url}/functions/{name}", timeout=30)
            if response.status_code != 200:
                raise TargetError(self._lookup_failed(name, response))
            self._functions[name] = dict(response.json())
        return self._functions[name]

    def _lookup_failed(self, name: str, response: requests.Response) -> str:
        where = f"{self.project}/{self.topology.region}"
        if response.status_code == 404:
            return f"no function {name} in {where}: deploy the stack first, or pass --region"
        try:  # Google's error (an API that is off names the command that enables it)
            said = Reply(response.status_code, response.json()).message
        except ValueError:
            said = response.text[:200]
        return f"cannot look up function {name} in {where}: HTTP {response.status_code} {said}"

    def output_fingerprint(self) -> str:
        """The output rules' fingerprint make_thumbnail runs with."""
        return self.deployed_settings("make_thumbnail").outputs.fingerprint

    def deployed_settings(self, key: str) -> Settings:
        """What function `key` runs with: its deployed environment on GCP, the local stack's
        (every function gets the same) otherwise."""
        from image_pipeline.settings import Settings, SettingsError

        if key not in self._settings:
            name = self.topology.functions[key].name
            env = self.function_env
            if not self.is_local:
                function = self._cloud_function(name)
                env = function.get("serviceConfig", {}).get("environmentVariables", {})
            try:
                self._settings[key] = Settings.from_env(env)
            except SettingsError as exc:
                raise TargetError(f"cannot read {name}'s settings: {exc}") from None
        return self._settings[key]

    @cached_property
    def _id_token(self) -> str:
        """An OIDC ID token for the caller, as Eventarc's trigger account sends one.

        Service-account credentials mint one for the audience; a user's application-default
        credentials cannot, so fall back to `gcloud auth print-identity-token`, which Cloud
        Run accepts for users (the documented way developers call a private service).
        """
        import google.auth.exceptions
        from google.auth.transport.requests import Request
        from google.oauth2 import id_token

        audience = self.function_url(self.topology.trigger.function)
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

    def invoke(self, key: str, headers: Mapping[str, str], body: bytes) -> requests.Response:
        """POSTs one request to a function, authenticated as the platform would be."""
        url = self.function_url(key)
        if not self.is_local:
            headers = {**headers, "Authorization": f"Bearer {self._id_token}"}
        response = self._http.post(url, headers=headers, data=body, timeout=self.timeout_seconds)
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


def for_project(project: str, region: str | None = None) -> Target:
    """A real deployment: the same settings `cdktf deploy` used, with this project id."""
    overrides: dict[str, Any] = {"project": project}
    if region:
        overrides["region"] = region
    return Target(build_topology(load_config(overrides=overrides)))


def add_arguments(parser: argparse.ArgumentParser, local_by_default: bool = True) -> None:
    """The flags every operator tool shares to choose its target."""
    default = "the local stack" if local_by_default else "the project in cdktf.json"
    group = parser.add_argument_group(f"target (default: {default})")
    where = group.add_mutually_exclusive_group()
    where.add_argument("--project", help="a real GCP project")
    where.add_argument("--local", action="store_true", help="the local stack (scripts/local up)")
    group.add_argument("--region", help="region of the functions (default: from cdktf.json)")
    group.add_argument(
        "--stack", type=Path, default=STACK_FILE, help="stack file of the local stack"
    )
    parser.set_defaults(local_by_default=local_by_default)


def from_arguments(args: argparse.Namespace) -> Target:
    """The target the flags name (TargetError or ConfigError when there is none)."""
    if args.local or (args.local_by_default and not args.project):
        return from_stack_file(args.stack)
    return for_project(args.project or load_config().project, args.region)


def run_tool(
    args: argparse.Namespace, command: Callable[[Target], int], err: TextIO | None = None
) -> int:
    """Runs a tool's command on the target its flags name. What stops it is one line on
    stderr naming what to do, never a traceback: no such target, or a checkpoint that is not
    one (exit 2); a dependency that did not answer in time, missing or refused credentials,
    an API that is off or refuses the caller, a function the tool cannot read (exit 1)."""
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
