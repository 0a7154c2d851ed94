"""Each identity of the local stack acts under the IAM the synthesized stacks give it
(docs/local-stack.md, "IAM"): a function through fronts of its own (`iam_grpc`,
`iam_storage`); a delivery only if the route's account holds `run.invoker` on the function,
and the trigger's `eventarc.eventReceiver`, else Cloud Run answers 403
(https://cloud.google.com/run/docs/securing/managing-access,
https://cloud.google.com/eventarc/docs/run/roles-permissions).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from infra.common import paths
from infra.local.fidelity.iam_grpc import GrpcFront
from infra.local.fidelity.iam_storage import StorageChecks
from infra.local.hooks import Call, DeliveryHook
from infra.local.routes import TRIGGER
from infra.model.iam_policy import ROLES, Policy, load_policy, service_resource
from infra.model.topology import Topology

log = logging.getLogger("infra.local.fidelity.iam")

MODES = ("on", "soft", "off")
FORBIDDEN = 403  # what Cloud Run answers a caller without run.invoker


@dataclass
class _Record:
    used: Counter[str] = field(default_factory=Counter)
    bindings: set[str] = field(default_factory=set)  # addresses of the bindings that granted
    denied: Counter[tuple[str, str, str]] = field(default_factory=Counter)


class Identities(DeliveryHook):
    label = "iam"  # a delivery Cloud Run refused for the caller's IAM (403)

    def __init__(
        self, topology: Topology, policy: Policy, mode: str, upstreams: Mapping[str, str]
    ) -> None:
        if mode not in MODES[:2]:
            raise ValueError(f"IAM mode {mode!r}: on or soft")
        self.topology, self.policy, self.mode = topology, policy, mode
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}
        self.fronts = {  # upstreams: `pubsub` and `firestore` -> host:port
            key: GrpcFront(member, self.check, upstreams).start()
            for key, member in policy.runtime.items()
        }
        self.undead = {key for key in topology.subscriptions if not self._dead_lettering(key)}

    def check(self, member: str, permission: str, resource: str, call: str) -> bool:
        """Whether `member` may use `permission` on `resource` (for `call`); recorded."""
        binding = self.policy.grant(member, permission, resource)
        with self._lock:
            record = self._records.setdefault(member, _Record())
            if binding is not None:
                record.used[permission] += 1
                record.bindings.add(binding.address)
                return True
            first = (permission, resource, call) not in record.denied
            record.denied[permission, resource, call] += 1
        if first:
            who = member or "an unauthenticated caller"
            soft = "; soft mode lets it through" if self.mode == "soft" else ""
            log.error("IAM: %s was denied %s on %s (%s)%s", who, permission, resource, call, soft)
        return self.mode == "soft"

    def _dead_lettering(self, key: str) -> bool:
        """Pub/Sub dead-letters only if its agent may publish to the dead-letter topic and
        consume the subscription; otherwise it redelivers forever
        (https://cloud.google.com/pubsub/docs/handling-failures): the subscription is then
        created without its dead-letter policy (`undead`)."""
        t, agent = self.topology, self.policy.pubsub_agent
        path, topic = t.subscription_path(key), t.topic_path(t.subscriptions[key].dead_letter_topic)
        call = f"dead lettering of {path}"
        publish = self.check(agent, "pubsub.topics.publish", topic, call)
        return self.check(agent, "pubsub.subscriptions.consume", path, call) and publish

    def env(self, function: str) -> dict[str, str]:
        """What function `function` runs with instead of the emulators' own hosts."""
        host = self.fronts[function].host
        return {"PUBSUB_EMULATOR_HOST": host, "FIRESTORE_EMULATOR_HOST": host}

    def storage(self) -> StorageChecks:
        """The GCS front's hook: each function's listener (named by its service account id)
        checked as the account the policy names."""
        functions = self.topology.functions
        accounts = {functions[k].service_account_id: m for k, m in self.policy.runtime.items()}
        return StorageChecks(self.check, accounts)

    @contextlib.contextmanager
    def gate(self, call: Call) -> Iterator[int | None]:
        member = self.policy.invokers.get(call.route, "")
        needs = [("run.routes.invoke", service_resource(self.topology, call.function))]
        if call.route == self.policy.trigger_route:
            needs.append(("eventarc.events.receiveEvent", f"projects/{self.topology.project}"))
        what = f"{call.route} delivery to {call.function}"
        granted = [self.check(member, p, r, what) for p, r in needs]
        yield None if all(granted) else FORBIDDEN

    def denials(self) -> int:
        with self._lock:
            return sum(sum(r.denied.values()) for r in self._records.values())

    def stats(self) -> dict[str, object]:
        return {"iam": {"denied": self.denials(), "without_dead_lettering": sorted(self.undead)}}

    def report(self) -> dict[str, Any]:
        """What `scripts/local iam` prints (GET /iam on the control endpoint)."""
        identities = {}
        with self._lock:
            for member in dict.fromkeys([*self.policy.identities(), *self._records]):
                record = self._records.get(member, _Record())
                bindings = [b for b in self.policy.bindings if b.member == member]
                identities[member or "(unauthenticated)"] = {
                    "used": dict(sorted(record.used.items())),
                    "denied": [
                        {"permission": p, "resource": r, "call": c, "count": n}
                        for (p, r, c), n in sorted(record.denied.items())
                    ],
                    "unused_grants": [
                        asdict(b) for b in bindings if b.address not in record.bindings
                    ],
                    "unused_permissions": sorted(
                        {p for b in bindings for p in ROLES[b.role]} - set(record.used)
                    ),
                }
        return {"mode": self.mode, "policy": self.policy.source, "identities": identities}

    def stop(self) -> None:
        for front in self.fronts.values():
            front.stop()

    @classmethod
    def start(
        cls,
        topology: Topology,
        mode: str,
        policy: Path | None,
        settings: Mapping[str, str],
        upstreams: Mapping[str, str],
    ) -> Identities | None:
        """The IAM of `policy` (a cdktf.out, as it is), else of `settings` (every setting as
        text; synthesized), enforced in `mode`; None when the mode is `off`."""
        if mode == "off":
            return None
        outdir = policy or synthesized_policy(settings)
        return cls(topology, load_policy(outdir, topology, TRIGGER), mode, upstreams)


# Synthesizes one deployment's stacks into sys.argv[1] from its settings (JSON, sys.argv[2]).
_SYNTH = """import json, sys
from cdktf import App
from infra.deploy.pipeline_stack import add_deployments
from infra.model.config import from_mapping
app = App(outdir=sys.argv[1])
add_deployments(app, [from_mapping(json.loads(sys.argv[2]))])
app.synth()"""


def synthesized_policy(settings: Mapping[str, str], timeout: float = 600.0) -> Path:
    """The `cdktf.out` of `settings`, synthesized once per settings and stack code (infra/model,
    infra/deploy) and kept in .local/policy/. A synth needs Node 22+, which `scripts/local`
    and `scripts/demo` put on PATH (`ensure_node`)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for package in ("deploy", "model"):
        for source in sorted((paths.ROOT / "infra" / package).glob("**/*.py")):
            digest.update(source.read_bytes())
    outdir = paths.LOCAL_DIR / "policy" / digest.hexdigest()[:16]
    if (outdir / "manifest.json").exists():
        return outdir
    shutil.rmtree(outdir.parent, ignore_errors=True)  # an older synth: stale now
    outdir.parent.mkdir(parents=True)
    log.warning("synthesizing the stacks for the IAM the local stack enforces (~15 s, once)")
    argv = [sys.executable, "-c", _SYNTH, str(outdir), json.dumps(settings)]
    done = subprocess.run(argv, cwd=paths.ROOT, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        shutil.rmtree(outdir, ignore_errors=True)
        raise RuntimeError(
            f"the synth that gives the local stack its IAM failed (it needs Node 22+; or pass "
            f"--policy DIR, or --iam off):\n{done.stderr[-2000:]}"
        )
    return outdir
