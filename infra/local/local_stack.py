"""LocalStack: the whole pipeline on 127.0.0.1, created from the topology declaration.

up:   preflight -> emulators (in parallel) -> topics, subscriptions (filters and dead-letter
      policies stored as in GCP) -> fake-gcs-server and buckets -> one functions-framework
      process per function -> router + control endpoint -> `.local/stack.json`.
down: router, functions, emulators; each child's whole process group, so no Java outlives
      its `gcloud` wrapper. Also runs at interpreter exit and on SIGTERM, as a backstop.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from image_pipeline.settings import Settings
from infra.common import paths
from infra.common.emulator_clients import Clients, emulator_clients
from infra.local import servers
from infra.local.control import RedeployError, serve_control, settings_body
from infra.local.fidelity import Fidelity
from infra.local.fidelity.faults import FaultSettings
from infra.local.fidelity.gcs_front import GcsFront
from infra.local.fidelity.iam import Identities
from infra.local.gallery import server as gallery_server
from infra.local.processes import free_port, stop_groups
from infra.local.resources import create_resources, notification_configs
from infra.local.router import Router
from infra.local.supervisor import Restart, Supervisor
from infra.model.config import ConfigError, DeploymentConfig, from_mapping
from infra.model.topology import Topology, build_topology


@dataclass
class StackOptions:
    state_dir: Path = paths.LOCAL_DIR
    faults: FaultSettings = field(default_factory=FaultSettings)
    backoff_factor: float = 1.0
    poll_seconds: float = 0.2
    # How long the Eventarc stand-in retries one event (None: 24 h x backoff_factor).
    trigger_window_seconds: float | None = None
    iam: str = "on"  # on: refuse what the stacks' IAM refuses; soft: only record it; off
    policy: Path | None = None  # a cdktf.out to enforce as it is (None: synthesize)


class LocalStack:
    """Start with `up()` (or `with LocalStack(config) as stack:`), stop with `down()`."""

    def __init__(self, config: DeploymentConfig, options: StackOptions | None = None) -> None:
        self.config = config
        self.options = options or StackOptions()
        self.topology: Topology = build_topology(config)
        self.env: dict[str, str] = {}
        self.timings: dict[str, float] = {}
        self.emulators: dict[str, servers.Server] = {}
        self.functions: dict[str, servers.Server] = {}
        self.fidelity: Fidelity | None = None
        self.iam: Identities | None = None
        self.router: Router | None = None
        self.gcs_front: GcsFront | None = None
        self.control: ThreadingHTTPServer | None = None
        self.gallery: ThreadingHTTPServer | None = None
        self.clients: Clients | None = None
        self.startup_seconds: dict[str, float] = {}
        self._functions_lock = threading.Lock()  # the supervisor vs. redeploy()
        self.supervisor = Supervisor(self._children, self._write_stack_json, self._functions_lock)
        self._down_lock = threading.Lock()
        self._is_up = False

    @property
    def logs_dir(self) -> Path:
        return self.options.state_dir / "logs"

    @property
    def stack_json(self) -> Path:
        return self.options.state_dir / "stack.json"

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> LocalStack:
        return self.up()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.down()

    def up(self) -> LocalStack:
        started = time.monotonic()
        servers.preflight()
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        atexit.register(self.down)
        _exit_on_sigterm()
        self._is_up = True
        try:
            self._start_emulators()
            self._start_functions()
            self._start_router()
            self.gallery = gallery_server.start(self.info(), self._abandoned)
        except BaseException:
            self.down()
            raise
        self.timings["up_s"] = time.monotonic() - started
        self._write_stack_json()
        return self

    def down(self) -> None:
        """Stops everything this stack started; safe to call twice and from atexit."""
        with self._down_lock:
            if not self._is_up:
                return
            self._is_up = False
            self.supervisor.stop()
            for server, method in (
                (self.gallery, "shutdown"),
                (self.gallery, "server_close"),
                (self.control, "shutdown"),
                (self.control, "server_close"),
                (self.router, "stop"),
                (self.gcs_front, "stop"),
                (self.iam, "stop"),
            ):
                with contextlib.suppress(Exception):
                    if server is not None:
                        getattr(server, method)()
            # All at once, whatever state they are in: `down` takes seconds, not the sum
            # of every child's grace period.
            processes = self.processes()
            stop_groups([p.pid for p in processes])
            for process in processes:
                with contextlib.suppress(Exception):
                    process.popen.wait(timeout=1)
            if self.clients:
                self.clients.close()
            with contextlib.suppress(OSError, ValueError):
                if json.loads(self.stack_json.read_text()).get("pid") == os.getpid():
                    self.stack_json.unlink()
            atexit.unregister(self.down)

    def processes(self) -> list[servers.Server]:
        """Every child, functions first (they talk to the emulators until stopped)."""
        return [*self.functions.values(), *reversed(list(self.emulators.values()))]

    # -- emulators --------------------------------------------------------------------------

    def _start_emulators(self) -> None:
        t0 = time.monotonic()
        pubsub = self.emulators["pubsub"] = self._spawn_emulator("pubsub")
        firestore = self.emulators["firestore"] = self._spawn_emulator("firestore")
        hosts = {"pubsub": pubsub.host, "firestore": firestore.host}  # (synthesizes meanwhile)
        iam, policy, settings = self.options.iam, self.options.policy, settings_body(self.config)
        self.iam = Identities.start(self.topology, iam, policy, settings, hosts)
        self.timings["pubsub_s"] = pubsub.wait_ready()
        # Every client reaches the fake through the front (fidelity/gcs_front.py).
        upstream, configs = f"127.0.0.1:{free_port()}", notification_configs(self.topology)
        self.gcs_front = GcsFront(upstream, self._publish, configs)
        self.gcs_front.hooks += [self.iam.storage()] if self.iam else []
        gcs = self.emulators["storage"] = self._spawn_emulator("storage")
        self.timings["storage_s"] = gcs.wait_ready()
        self.timings["firestore_s"] = firestore.wait_ready()
        self.env = {
            "GOOGLE_CLOUD_PROJECT": self.topology.project,
            "PUBSUB_EMULATOR_HOST": pubsub.host,
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "STORAGE_EMULATOR_HOST": f"http://{self.gcs_front.host}",
        }
        self.clients = emulator_clients(
            self.topology.project, self.env, self.topology.firestore_database
        )
        create_resources(self.clients, self.topology, self.iam.undead if self.iam else ())
        self.timings["emulators_s"] = time.monotonic() - t0

    def _spawn_emulator(self, name: str, port: int = 0) -> servers.Server:
        """Starts one emulator (on `port`, when a restart keeps the one the stack uses)."""
        # Our own emulator variables must not leak into the emulators' (or gcloud's) env.
        env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
        project, logs = self.topology.project, self.logs_dir
        if name != "storage":
            return servers.start(name, project, logs, env, port)
        assert self.gcs_front is not None
        upstream = int(self.gcs_front.upstream.rsplit(":", 1)[1])
        return servers.start_gcs(logs, env, upstream, f"http://{self.gcs_front.host}")

    def _publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> None:
        assert self.clients is not None
        self.clients.publisher.publish(topic, data, **attributes).result(timeout=30)

    def expire_next_delete(self, name: str, generation: int) -> None:
        """The next delete of this upload is notified as the uploads bucket's lifecycle
        rule would notify it (`GcsFront.expire_next_delete`)."""
        bucket = self.topology.buckets[self.topology.notification.bucket]
        if not bucket.lifecycle_delete_after_days or self.gcs_front is None:
            raise ValueError("the uploads bucket has no lifecycle rule (uploads_lifecycle_days)")
        days = bucket.lifecycle_delete_after_days
        self.gcs_front.expire_next_delete(bucket.name, name, generation, days)

    def _restart_emulator(self, name: str, cancel: threading.Event) -> None:
        started = self._spawn_emulator(name, self.emulators[name].port)
        try:
            started.wait_ready(cancel)
            if name != "firestore":  # topics, subscriptions and buckets live in the others
                assert self.clients is not None
                create_resources(self.clients, self.topology, self.iam.undead if self.iam else ())
        except BaseException:
            started.stop()
            raise
        self.emulators[name] = started

    # -- functions --------------------------------------------------------------------------

    def _env(self, function: str) -> dict[str, str]:
        """A function's environment: the emulators, seen through its identity's fronts (Pub/Sub
        and Firestore: the IAM one's; Cloud Storage: the GCS front's listener for its service
        account)."""
        assert self.gcs_front is not None
        storage = self.gcs_front.listen(self.topology.functions[function].service_account_id)
        iam = self.iam.env(function) if self.iam else {}
        storage_host = {"STORAGE_EMULATOR_HOST": f"http://{storage}"}
        return {**os.environ, **self.env, **iam, **storage_host}

    def _start_functions(self) -> None:
        t0 = time.monotonic()
        for spec in self.topology.functions.values():
            self.functions[spec.key] = servers.start_function(
                spec, paths.FUNCTIONS_SOURCE, self._env(spec.key), self.logs_dir
            )
        for key, running in self.functions.items():
            running.wait_ready()
            # Started together: each one's time from the start is its start-up time.
            self.startup_seconds[key] = time.monotonic() - t0
        self.timings["functions_s"] = time.monotonic() - t0
        self.supervisor.start()

    def _start_function(self, key: str, cancel: threading.Event | None = None) -> None:
        """Starts function `key` again on its port, with the current topology's settings."""
        spec, port = self.topology.functions[key], self.functions[key].port
        running = servers.start_function(
            spec, paths.FUNCTIONS_SOURCE, self._env(key), self.logs_dir, port
        )
        try:
            running.wait_ready(cancel)
        except BaseException:
            running.stop()
            raise
        self.functions[key] = running

    def _children(self) -> list[tuple[str, servers.Server, Restart]]:
        """What the supervisor watches: each child, and how to start it again."""
        children: list[tuple[str, servers.Server, Restart]] = [
            (key, f, partial(self._start_function, key)) for key, f in self.functions.items()
        ]
        return children + [
            (f"emulator {name}", e, partial(self._restart_emulator, name))
            for name, e in self.emulators.items()
        ]

    def _redeploy_request(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """PUT /settings on the control endpoint (`scripts/local redeploy`)."""
        try:
            config = from_mapping(values)
            self.redeploy(config)
        except (ConfigError, ValueError) as exc:
            raise RedeployError(str(exc)) from None
        made_by = Settings.from_env(self.topology.functions["make_thumbnail"].env).outputs
        return {"outputFingerprint": made_by.fingerprint}

    def redeploy(self, config: DeploymentConfig) -> None:
        """New settings, rolled out as `cdktf deploy` does (docs/local-stack.md): each function
        restarted on its port; resource names must not change (that would be a new stack)."""
        topology = build_topology(config)
        if _resource_names(topology) != _resource_names(self.topology):
            raise ValueError("redeploy changes resource names; start a new stack instead")
        with self._functions_lock:
            self.config, self.topology = config, topology
            for key, old in list(self.functions.items()):
                old.stop()
                self._start_function(key)
            if self.fidelity:  # the capacity the new settings deploy
                self.fidelity.throttle.resize(topology)
        self._write_stack_json()

    # -- router -----------------------------------------------------------------------------

    def _start_router(self) -> None:
        assert self.clients is not None
        self.fidelity = Fidelity.for_topology(
            self.topology, self.options.faults, self.startup_seconds, self.options.backoff_factor
        )
        self.fidelity.iam = self.iam
        self.router = Router(
            self.topology,
            self.clients.subscriber,
            {key: f.url for key, f in self.functions.items()},
            hooks=self.fidelity.delivery_hooks(),
            backoff_factor=self.options.backoff_factor,
            poll_seconds=self.options.poll_seconds,
            trigger_window_seconds=self.options.trigger_window_seconds,
        )
        self.router.start()
        self.control = serve_control(self.router, self.fidelity.faults, self._redeploy_request)

    # -- what tools read ------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The content of `.local/stack.json` (its keys are listed in docs/local-stack.md)."""
        t = self.topology
        return {
            "project": t.project,
            "env": dict(self.env),
            "buckets": {key: b.name for key, b in t.buckets.items()},
            "prefix": t.prefix,
            "collections": dict(t.collections),
            "firestore_database": t.firestore_database,
            "topics": {key: topic.name for key, topic in t.topics.items()},
            "subscriptions": {
                sub.name: {
                    "key": sub.key,
                    "topic": t.topics[sub.topic].name,
                    "filter": sub.filter,
                    "event_types": list(sub.event_types),
                    "dead_letter_topic": t.topics[sub.dead_letter_topic].name,
                    "max_delivery_attempts": sub.max_delivery_attempts,
                    "push_function": sub.push_function,
                }
                for sub in t.subscriptions.values()
            },
            # What make_thumbnail runs with (scripts/backfill --stale reads its fingerprint).
            "function_env": dict(t.functions["make_thumbnail"].env),
            "functions": {
                t.functions[key].name: {
                    "url": f.url,
                    "target": t.functions[key].key,
                    "log": str(f.log_path),
                    "pid": f.pid,
                    "restarts": self.supervisor.restarts.get(key, 0),
                }
                for key, f in self.functions.items()
            },
            "router": {
                "url": (
                    f"http://127.0.0.1:{self.control.server_address[1]}" if self.control else None
                ),
                "backoff_factor": self.options.backoff_factor,
                "faults": (
                    self.fidelity.faults.settings if self.fidelity else self.options.faults
                ).to_json(),
            },
            "gallery": gallery_server.url_of(self.gallery) if self.gallery else None,
            "pid": os.getpid(),
            "process_groups": {p.title: p.pid for p in self.processes()},
            "emulators": {
                name: {
                    "host": e.host,
                    "pid": e.pid,
                    "restarts": self.supervisor.restarts.get(f"emulator {name}", 0),
                }
                for name, e in self.emulators.items()
            },
            "logs": str(self.logs_dir),
            "timings": {k: round(v, 2) for k, v in self.timings.items()},
        }

    def _abandoned(self) -> list[dict[str, Any]]:
        return [asdict(a) for a in self.router.log.abandoned()] if self.router else []

    def _write_stack_json(self) -> None:
        self.stack_json.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.stack_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.info(), indent=2) + "\n")
        tmp.replace(self.stack_json)


def _resource_names(t: Topology) -> tuple[object, ...]:
    return (
        t.project,
        sorted(b.name for b in t.buckets.values()),
        sorted(topic.name for topic in t.topics.values()),
        sorted(sub.name for sub in t.subscriptions.values()),
        sorted(f.name for f in t.functions.values()),
    )


def _exit_on_sigterm() -> None:
    """A default SIGTERM would skip atexit and leave the children; make it a clean exit."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:

        def handler(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, handler)


def read_stack_json(path: Path | None = None) -> dict[str, Any]:
    """The running stack's description, or a clear error when none is up."""
    path = path or paths.STACK_JSON
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        message = f"no local stack is running ({path} not found): scripts/local up"
        raise RuntimeError(message) from None


def stop_on_signals(stop: threading.Event) -> Mapping[int, Any]:
    """SIGINT/SIGTERM set `stop` (so the caller runs `down`); returns the old handlers."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    return {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
