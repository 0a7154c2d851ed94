"""Deploy-order rules over a synthesized stack: an apply Terraform would accept, but whose
order fails on a new project, or works only when Google happens to be fast.

The order is a property of the constructs, not of the settings, so the synth tests prove it
on every structural variant they synthesize (defaults, every optional resource, named
environments, a GitHub deploy): `problems(tf, stacks)` reads the Terraform JSON as plain data,
the resources and data sources and the edges Terraform orders them by (`${...}` references
and `depends_on`), followed transitively. A stack that reads another through cdktf's
cross-stack references is applied after the whole of that stack, so the other stack's
resources are merged in, all upstream of this one's, and a reference to one of its outputs
is a reference to what that output holds. The rules are stated over kinds of resources, not
over ours by name, and each problem names the two resources whose order is wrong. The rules
and their sources: docs/architecture.md, "Deploy order".
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

FUNCTION = "google_cloudfunctions2_function"
EVENTARC_TRIGGER = "google_eventarc_trigger"
SERVICE_IDENTITY = "google_project_service_identity"
STORAGE_AGENT_DATA = "data.google_storage_project_service_account"
SLEEP = "time_sleep"
REMOTE_STATE = "data.terraform_remote_state"
# cdktf's name for the remote state through which a stack reads another stack's outputs.
CROSS_STACK_INPUT = "cross-stack-reference-input-"
_OUTPUT_REF = re.compile(
    rf"{re.escape(REMOTE_STATE)}\.{CROSS_STACK_INPUT}([A-Za-z0-9_-]+)\.outputs\.([A-Za-z0-9_-]+)"
)
_LOG_METRIC = re.compile(r"logging\.googleapis\.com/user/([A-Za-z0-9_.\-/]+)")

_EXPRESSION = re.compile(r"\$\{(.*?)\}")
_ADDRESS = re.compile(r"\b(?:data\.)?[a-z][a-z0-9_]*\.[A-Za-z0-9_-]+")
# A service agent's email written out (e.g. built from the project number) instead of
# taken from the resource that creates the agent.
_AGENT_EMAIL = re.compile(
    r"service-[^@\s]+@(?:gcp-sa-(?P<service>[a-z0-9-]+)|(?P<storage>gs-project-accounts))"
    r"\.iam\.gserviceaccount\.com"
)


@dataclass(frozen=True)
class Node:
    address: str  # `type.name` or `data.type.name`, as Terraform writes it
    type: str  # `google_pubsub_topic`, or `data.google_project` for a data source
    body: Mapping[str, Any]


class Graph:
    """The resources of one stack, and of the stacks it reads (`stacks`, by id), and what
    each one is ordered after."""

    def __init__(
        self, tf: Mapping[str, Any], stacks: Mapping[str, Mapping[str, Any]] | None = None
    ) -> None:
        self.nodes: dict[str, Node] = {}
        self._outputs: dict[str, Mapping[str, Any]] = {}  # stack id -> its outputs
        # A remote-state node -> every resource of the stack it reads (applied before).
        self._before: dict[str, set[str]] = {}
        self._stack_of: dict[str, str] = {}  # address -> the stack declaring it
        self._reads: dict[str, list[str]] = {}  # stack -> its remote-state nodes
        self._declared: dict[str, set[str]] = {}  # stack -> its nodes
        self._add("", tf, stacks or {})
        self.upstream = cache(self._upstream)

    def _add(
        self, key: str, tf: Mapping[str, Any], stacks: Mapping[str, Mapping[str, Any]]
    ) -> set[str]:
        added: set[str] = set()
        for prefix, section in (("", tf.get("resource", {})), ("data.", tf.get("data", {}))):
            for kind, bodies in section.items():
                for name, body in bodies.items():
                    node = Node(f"{prefix}{kind}.{name}", f"{prefix}{kind}", body)
                    if node.address in self.nodes:
                        raise ValueError(f"{node.address} is declared by two stacks")
                    self.nodes[node.address] = node
                    self._stack_of[node.address] = key
                    added.add(node.address)
        for address in sorted(added):
            name = address.removeprefix(f"{REMOTE_STATE}.")
            if address.startswith(f"{REMOTE_STATE}.") and name.startswith(CROSS_STACK_INPUT):
                stack_id = name.removeprefix(CROSS_STACK_INPUT)
                if stack_id not in stacks:
                    raise ValueError(f"{address} reads stack {stack_id!r}, which was not given")
                self._reads.setdefault(key, []).append(address)
                if stack_id not in self._outputs:
                    self._outputs[stack_id] = stacks[stack_id].get("output", {})
                    self._declared[stack_id] = self._add(stack_id, stacks[stack_id], stacks)
                self._before[address] = self._declared[stack_id]
        return added

    def of_type(self, *kinds: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.type in kinds]

    def refs(self, value: Any) -> set[str]:
        """Addresses of the stack's resources that `value` refers to (at any depth)."""
        found: set[str] = set()
        if isinstance(value, str):
            for expression in _EXPRESSION.findall(value):
                found |= {a for a in _ADDRESS.findall(expression) if a in self.nodes}
                # Another stack's output stands for what it holds.
                for stack_id, output in _OUTPUT_REF.findall(expression):
                    held = self._outputs.get(stack_id, {}).get(output, {})
                    found |= self.refs(held.get("value", ""))
        elif isinstance(value, Mapping):
            for key, item in value.items():
                if key != "//":  # comments (`why`) are not references
                    found |= self.refs(item)
        elif isinstance(value, list):
            for item in value:
                found |= self.refs(item)
        return found

    def deps(self, address: str) -> set[str]:
        """What Terraform creates before `address`: its references and `depends_on`."""
        body = self.nodes[address].body
        listed = {d for d in body.get("depends_on", []) if d in self.nodes}
        refs = self.refs({k: v for k, v in body.items() if k != "depends_on"})
        # A stack is applied after the whole of every stack it reads.
        earlier = self._before.get(address, set()) | set(
            self._reads.get(self._stack_of[address], [])
        )
        return (refs | listed | earlier) - {address}

    def _upstream(self, address: str) -> frozenset[str]:
        seen: set[str] = set()
        todo = list(self.deps(address))
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self.deps(current))
        return frozenset(seen)

    def settled(self, grant: str, user: str) -> bool:
        """True if a `time_sleep` after `grant` is upstream of `user`."""
        return any(
            self.nodes[s].type == SLEEP and grant in self.upstream(s) for s in self.upstream(user)
        )

    # Service agents -----------------------------------------------------------------

    def agent_of(self, member: str) -> str | None:
        """The service whose Google agent `member` is (`pubsub`, `storage`, ...), if any."""
        for address in self.refs(member):
            node = self.nodes[address]
            if node.type == SERVICE_IDENTITY:
                return str(node.body.get("service", "")).split(".")[0]
            if node.type == STORAGE_AGENT_DATA:
                return "storage"
        match = _AGENT_EMAIL.search(member)
        if match:
            return "storage" if match.group("storage") else match.group("service")
        return None

    def identities(self, agent: str) -> list[str]:
        """The resources that create (or look up) `agent`'s service agent."""
        if agent == "storage":
            return [n.address for n in self.of_type(STORAGE_AGENT_DATA)]
        return [
            n.address
            for n in self.of_type(SERVICE_IDENTITY)
            if str(n.body.get("service", "")).split(".")[0] == agent
        ]

    def bindings(self) -> Iterator[tuple[Node, str]]:
        """(IAM binding, member) for every member of every `*_iam_member`/`*_iam_binding`."""
        for node in self.nodes.values():
            if node.type.endswith("_iam_member"):
                yield node, str(node.body.get("member", ""))
            elif node.type.endswith("_iam_binding"):
                for member in node.body.get("members", []):
                    yield node, str(member)

    def agent_grants(self, agent: str, role: str, on: str | None = None) -> list[str]:
        """Bindings of `role` to `agent`'s service agent, on the resource `on` if given."""
        return sorted(
            {
                node.address
                for node, member in self.bindings()
                if node.body.get("role") == role
                and self.agent_of(member) == agent
                and (on is None or on in self.refs(node.body))
            }
        )


def app_problems(stacks: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The problems of every stack of an app, each with the stacks it reads merged in."""
    found: list[str] = []
    for tf in stacks.values():
        found += [p for p in problems(tf, stacks) if p not in found]
    return found


def problems(
    tf: Mapping[str, Any], stacks: Mapping[str, Mapping[str, Any]] | None = None
) -> list[str]:
    """The problems of `tf`, given the stacks it reads (by id) for cross-stack references."""
    graph = Graph(tf, stacks)
    return [
        *_build_problems(graph),
        *_trigger_problems(graph),
        *_agent_binding_problems(graph),
        *_notification_problems(graph),
        *_dead_letter_problems(graph),
        *_data_source_problems(graph),
        *_alert_problems(graph),
        *_push_problems(graph),
    ]


def _block(body: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """A nested block, written by cdktf as an object or a one-element list."""
    value = body.get(key) or {}
    if isinstance(value, list):
        value = value[0] if value else {}
    return value


def _build_problems(g: Graph) -> Iterator[str]:
    """Every function's build waits until its build account's grants have settled."""
    for fn in g.of_type(FUNCTION):
        builder = g.refs(_block(fn.body, "build_config").get("service_account", ""))
        if not builder:
            yield (
                f"{fn.address} builds as the project's default build account, whose roles "
                "differ between projects: give it a build service account with its own grants"
            )
            continue
        for binding, member in g.bindings():
            if g.refs(member) & builder and not g.settled(binding.address, fn.address):
                yield (
                    f"{fn.address} may start its build before {binding.address} has "
                    "propagated: it must depend on a time_sleep that depends on that grant"
                )


def _trigger_problems(g: Graph) -> Iterator[str]:
    """Every Eventarc trigger waits for the Eventarc agent, its role, and that settling."""
    triggers = [n for n in g.of_type(FUNCTION) if n.body.get("event_trigger")]
    triggers += g.of_type(EVENTARC_TRIGGER)
    if not triggers:
        return
    agents = g.identities("eventarc")
    roles = g.agent_grants("eventarc", "roles/eventarc.serviceAgent")
    for trigger in triggers:
        t = trigger.address
        if not agents:
            yield (
                f"{t} has no {SERVICE_IDENTITY} for eventarc.googleapis.com upstream: the "
                "Eventarc agent may not exist when the trigger is created"
            )
        for agent in agents:
            if agent not in g.upstream(t):
                yield f"{t} does not depend on {agent}: the Eventarc agent may not exist yet"
        if agents and not roles:
            yield f"{t}: nothing grants roles/eventarc.serviceAgent to {agents[0]}"
        for role in roles:
            if role not in g.upstream(t):
                yield f"{t} does not depend on {role}: the Eventarc agent may lack its role"
            elif not g.settled(role, t):
                yield _unsettled(t, role)
        for grant in _grants_on_trigger_account(g, trigger):
            if not g.settled(grant, t):
                yield _unsettled(t, grant)


def _unsettled(user: str, grant: str) -> str:
    return (
        f"{user} does not wait for {grant} to propagate: it must depend on a time_sleep "
        "that depends on that grant"
    )


def _grants_on_trigger_account(g: Graph, trigger: Node) -> list[str]:
    """Bindings on the trigger's own service account (e.g. Pub/Sub minting its push
    tokens): the trigger's deliveries use them from the first event on."""
    if trigger.type == FUNCTION:
        account = _block(trigger.body, "event_trigger").get("service_account_email", "")
    else:
        account = trigger.body.get("service_account", "")
    accounts = g.refs(account)
    return sorted(
        node.address
        for node, _ in g.bindings()
        if node.type == "google_service_account_iam_member"
        and g.refs(node.body.get("service_account_id", "")) & accounts
    )


def _agent_binding_problems(g: Graph) -> Iterator[str]:
    """Every binding to a Google service agent comes after the resource creating it."""
    for binding, member in g.bindings():
        agent = g.agent_of(member)
        if agent is None:
            continue
        creators = g.identities(agent)
        if not creators:
            yield (
                f"{binding.address} binds the {agent} service agent, but nothing in the stack "
                f"creates it ({SERVICE_IDENTITY} with service {agent}.googleapis.com)"
            )
        elif not set(creators) & g.upstream(binding.address):
            yield (
                f"{binding.address} binds the {agent} service agent without depending on "
                f"{creators[0]}: the agent may not exist yet"
            )


def _publisher_grant_problems(
    g: Graph, user: str, agent: str, topic: str, what: str, why_first: str
) -> Iterator[str]:
    """`agent` holds roles/pubsub.publisher on `topic`, and that grant is upstream of `user`."""
    grants = g.agent_grants(agent, "roles/pubsub.publisher", on=topic)
    if not grants:
        yield f"{user}: nothing grants the {what} roles/pubsub.publisher on {topic}"
    elif not set(grants) & g.upstream(user):
        yield f"{user} does not depend on {grants[0]}: {why_first}"


def _notification_problems(g: Graph) -> Iterator[str]:
    """A bucket notification is created after Cloud Storage may publish to its topic."""
    for note in g.of_type("google_storage_notification"):
        for topic in sorted(g.refs(note.body.get("topic", ""))):
            yield from _publisher_grant_problems(
                g,
                note.address,
                "storage",
                topic,
                "Cloud Storage agent",
                "Cloud Storage refuses to create a notification to a topic it may not publish to",
            )


def _dead_letter_problems(g: Graph) -> Iterator[str]:
    """A dead-letter policy works only with the Pub/Sub agent's two grants."""
    agents = g.identities("pubsub")
    for sub in g.of_type("google_pubsub_subscription"):
        policy = _block(sub.body, "dead_letter_policy")
        if not policy:
            continue
        s = sub.address
        for topic in sorted(g.refs(policy.get("dead_letter_topic", ""))):
            yield from _publisher_grant_problems(
                g,
                s,
                "pubsub",
                topic,
                "Pub/Sub agent",
                "messages could be dead-lettered before the Pub/Sub agent may publish them",
            )
        # This grant names the subscription, so it can only come after it; what matters
        # is that it exists (without it Pub/Sub cannot ack what it dead-lettered).
        if not g.agent_grants("pubsub", "roles/pubsub.subscriber", on=s):
            agent = agents[0] if agents else "the Pub/Sub service agent"
            yield f"{s}: nothing grants {agent} roles/pubsub.subscriber on it"


def _data_source_problems(g: Graph) -> Iterator[str]:
    """No data source waits on a resource: it would be read only at apply time."""
    for node in g.nodes.values():
        if node.type.startswith("data."):
            for dep in node.body.get("depends_on", []):
                yield (
                    f"{node.address} depends on {dep}: Terraform then reads it only during "
                    "apply whenever that has changes, so its values are unknown in the plan "
                    "and everything using them is planned for replacement"
                )


def _alert_problems(g: Graph) -> Iterator[str]:
    """An alert policy on a log-based metric waits until Monitoring knows the metric."""
    metrics = {str(n.body.get("name", "")): n.address for n in g.of_type("google_logging_metric")}
    for policy in g.of_type("google_monitoring_alert_policy"):
        for name in sorted(set(_LOG_METRIC.findall(json.dumps(policy.body.get("conditions"))))):
            metric = metrics.get(name)
            if metric is None:
                yield f"{policy.address} reads the log-based metric {name}, which no stack creates"
            elif not g.settled(metric, policy.address):
                yield (
                    f"{policy.address} may be created before Monitoring knows {metric} (404 "
                    "'Cannot find metric(s)' for up to 10 minutes, terraform-provider-google "
                    "#11102): it must depend on a time_sleep that depends on that metric"
                )


def _push_problems(g: Graph) -> Iterator[str]:
    """A push subscription starts pushing once its account's grants have propagated."""
    for sub in g.of_type("google_pubsub_subscription"):
        push = _block(sub.body, "push_config")
        if not push:
            continue
        account = g.refs(_block(push, "oidc_token").get("service_account_email", ""))
        services = g.refs(push.get("push_endpoint", ""))
        invokers = [
            node.address
            for node, member in g.bindings()
            if node.body.get("role") == "roles/run.invoker"
            and g.refs(member) & account
            and g.refs(node.body) & services
        ]
        if not invokers:
            yield f"{sub.address}: nothing grants its push account run.invoker on its endpoint"
        on_account = [
            node.address
            for node, _ in g.bindings()
            if node.type == "google_service_account_iam_member"
            and g.refs(node.body.get("service_account_id", "")) & account
        ]
        for grant in sorted({*invokers, *on_account}):
            if not g.settled(grant, sub.address):
                yield _unsettled(sub.address, grant)
