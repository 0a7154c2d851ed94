"""The one declaration of the pipeline's topology.

Both the CDKTF stack (`infra.deploy`) and the local stack (`infra.local`) are generated
from `build_topology(config)`, so the cloud and the laptop cannot drift: a bucket, topic,
subscription, filter, dead-letter policy, trigger or function exists in both or in neither.
Plain data only: no cloud clients, no cdktf.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from image_pipeline.settings import Settings
from infra.model.config import DeploymentConfig

FINALIZED = "google.cloud.storage.object.v1.finalized"

# The Cloud Run functions runtime every function deploys on, and so the Python the functions'
# tests and the local stack run on (scripts/_bootstrap.sh builds .venv with it; a unit test
# checks the interpreter). Runtimes and their deprecation dates:
# https://cloud.google.com/functions/docs/runtime-support#python
FUNCTION_RUNTIME = "python313"


# Result events the thumbnail and cleanup functions publish (attribute `eventType`).
PROCESSED, FAILED, DELETED = "image.processed", "image.failed", "image.deleted"
EXPIRED = "image.expired"  # cleanup: the uploads lifecycle rule removed the original
# Every message here carries this attribute (result events; GCS notifications), and
# subscriptions route on it alone: each declares the event types it takes.
EVENT_TYPE = "eventType"

# For a push subscription the ack deadline is the whole time Pub/Sub waits for the
# endpoint's answer, and that includes a cold start (a new instance starting and importing
# the code) before the function's own timeout begins. A deadline equal to the timeout
# redelivers a slow first delivery while it still runs; this margin covers the start.
PUSH_ACK_MARGIN_SECONDS = 60
# Pull subscriptions that people read (`gcloud pubsub subscriptions pull`): every pull not
# followed by an ack counts as a delivery attempt, so a small limit would turn an operator
# looking five times into a dead letter. Pub/Sub's maxima: 100 attempts, 600 s to ack.
OPERATOR_MAX_DELIVERY_ATTEMPTS = 100
OPERATOR_ACK_DEADLINE_SECONDS = 600


def pubsub_filter(event_types: Iterable[str]) -> str:
    """The Pub/Sub filter that delivers exactly these event types, an OR of equalities
    (https://cloud.google.com/pubsub/docs/subscription-message-filter); empty, which
    delivers every message, for none. The checks keep each type to characters a string
    literal takes unescaped."""
    return " OR ".join(f'attributes.{EVENT_TYPE} = "{t}"' for t in event_types)


def takes(event_types: Collection[str], attributes: Mapping[str, str]) -> bool:
    """Whether Pub/Sub delivers a message with these attributes to a subscription taking
    `event_types`, as its filter decides (the local router and `scripts/local pull` ask)."""
    return not event_types or attributes.get(EVENT_TYPE) in event_types


def push_ack_deadline(timeout_seconds: int) -> int:
    """The ack deadline a push subscription needs for a function with this timeout."""
    return max(10, min(600, timeout_seconds + PUSH_ACK_MARGIN_SECONDS))


@dataclass(frozen=True)
class BucketSpec:
    key: str
    name: str
    lifecycle_delete_after_days: int = 0  # 0 = no lifecycle rule
    # (storage class, age in days): a SetStorageClass rule each (`uploads_storage_classes`)
    storage_classes: tuple[tuple[str, int], ...] = ()
    # False: a deleted or overwritten object is gone at once, instead of being kept (and
    # billed) for Cloud Storage's default 7-day soft-delete window. For outputs only.
    soft_delete: bool = True


@dataclass(frozen=True)
class TopicSpec:
    key: str
    name: str
    is_dead_letter: bool = False


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff between redeliveries (Pub/Sub's retry_policy)."""

    minimum_backoff_seconds: int
    maximum_backoff_seconds: int


@dataclass(frozen=True)
class SubscriptionSpec:
    key: str
    name: str
    topic: str  # TopicSpec.key
    # The event types it takes, a set (empty: every message); their order is only the
    # order the filter lists them in.
    event_types: tuple[str, ...]
    dead_letter_topic: str  # TopicSpec.key
    max_delivery_attempts: int
    retry: RetryPolicy
    ack_deadline_seconds: int
    retention_seconds: int
    push_function: str | None = None  # FunctionSpec.key; None = a pull subscription

    @property
    def filter(self) -> str:
        return pubsub_filter(self.event_types)


@dataclass(frozen=True)
class Condition:
    """An IAM condition narrowing a grant (Common Expression Language over the resource)."""

    title: str
    expression: str
    why: str


@dataclass(frozen=True)
class Grant:
    """A role a function's runtime service account holds on one resource, and why: `kind`
    `bucket`, `topic` or `project`, `target` the bucket or topic key (empty for the project).
    """

    kind: str
    target: str
    role: str
    why: str
    condition: Condition | None = None


@dataclass(frozen=True)
class FunctionSpec:
    key: str  # also the entry point (functions/main.py) and the harness's name for it
    name: str  # deployed Cloud Functions / Cloud Run service name
    purpose: str
    service_account_id: str
    memory: str
    cpu: str  # vCPUs, as Cloud Run writes them ("1", "0.583")
    timeout_seconds: int
    max_instances: int
    concurrency: int  # requests one instance serves at once
    grants: tuple[Grant, ...]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StorageTriggerSpec:
    """Eventarc trigger: object finalized in `bucket` -> `function`."""

    function: str
    bucket: str
    event_type: str
    service_account_id: str


@dataclass(frozen=True)
class NotificationSpec:
    """GCS Pub/Sub notification (JSON_API_V1) of `bucket` to `topic`."""

    bucket: str
    topic: str
    event_types: tuple[str, ...]
    custom_attributes: Mapping[str, str]
    payload_format: str = "JSON_API_V1"


@dataclass(frozen=True)
class Topology:
    project: str
    region: str
    prefix: str
    buckets: Mapping[str, BucketSpec]
    topics: Mapping[str, TopicSpec]
    subscriptions: Mapping[str, SubscriptionSpec]
    functions: Mapping[str, FunctionSpec]
    trigger: StorageTriggerSpec
    notification: NotificationSpec
    collections: Mapping[str, str]
    firestore_database: str  # the database the collections are in
    push_invoker_account_id: str
    # Identity Cloud Build uses to build the functions (deploy-time only; the harness
    # ignores it). Projects created since mid-2024 give the default one no build roles.
    build_account_id: str

    def topic_path(self, key: str) -> str:
        return f"projects/{self.project}/topics/{self.topics[key].name}"

    def subscription_path(self, key: str) -> str:
        return f"projects/{self.project}/subscriptions/{self.subscriptions[key].name}"

    def subscription_by_name(self, name: str) -> SubscriptionSpec:
        """Looks a subscription up by its resource name (what dead letters record)."""
        short = name.rsplit("/", 1)[-1]
        for sub in self.subscriptions.values():
            if sub.name == short:
                return sub
        raise KeyError(f"no subscription named {short!r} in the topology")


def function_env(config: DeploymentConfig, topics: Mapping[str, TopicSpec]) -> dict[str, str]:
    """The environment every function gets, the contract `image_pipeline.settings` parses,
    built through `Settings` so the functions' own validation runs at synth time."""
    return Settings.wired(
        config,
        project=config.project,
        uploads_bucket=config.uploads_bucket,
        thumbnails_bucket=config.thumbnails_bucket,
        image_events_topic=topics["image_events"].name,
        firestore_database=firestore_database(config),
    ).to_env()


def firestore_database(config: DeploymentConfig) -> str:
    """The project's `(default)` database for the one default deployment; a named
    environment's own database, so environments sharing a project share no documents and
    no grant (the datastore.user condition names the database)."""
    return f"{config.prefix}-pipeline" if config.environment else "(default)"


def build_topology(config: DeploymentConfig) -> Topology:
    """Derives every resource of the pipeline from the deployment settings."""
    p = config.prefix
    topics = _topics(p)
    env = function_env(config, topics)
    return Topology(
        project=config.project,
        region=config.region,
        prefix=p,
        buckets=_buckets(config),
        topics=topics,
        subscriptions=_subscriptions(config),
        functions=_functions(config, env),
        trigger=StorageTriggerSpec(
            function="make_thumbnail",
            bucket="uploads",
            event_type=FINALIZED,
            service_account_id=f"{p}-trigger",
        ),
        notification=NotificationSpec(
            bucket="uploads",
            topic="upload_events",
            # Only what is read: the cleanup subscription takes deletes, and make_thumbnail's
            # finalize events come through Eventarc's own plumbing. A message nobody
            # subscribes to for is still published and billed.
            event_types=("OBJECT_DELETE",),
            custom_attributes={"pipeline": p},
        ),
        collections={
            "images": env["IMAGES_COLLECTION"],
            "dead_letters": env["DEAD_LETTERS_COLLECTION"],
        },
        firestore_database=env["FIRESTORE_DATABASE"],
        push_invoker_account_id=f"{p}-push-invoker",
        build_account_id=f"{p}-builder",
    )


def _buckets(config: DeploymentConfig) -> dict[str, BucketSpec]:
    ageing = (pair.partition(":") for pair in config.uploads_storage_classes)  # CLASS:DAYS
    return {
        "uploads": BucketSpec(
            "uploads",
            config.uploads_bucket,
            config.uploads_lifecycle_days,
            tuple((storage_class, int(days)) for storage_class, _, days in ageing),
        ),
        # Triggers nothing (outputs never go where uploads are processed).
        "thumbnails": BucketSpec(
            "thumbnails",
            config.thumbnails_bucket,
            soft_delete=False,  # regenerated from the originals; every overwrite would be billed
        ),
    }


def _topics(p: str) -> dict[str, TopicSpec]:
    return {
        # The uploads bucket's notifications.
        "upload_events": TopicSpec("upload_events", f"{p}-upload-events"),
        # The result events of make_thumbnail and cleanup.
        "image_events": TopicSpec("image_events", f"{p}-image-events"),
        # One dead-letter topic for every pipeline subscription: the
        # CloudPubSubDeadLetterSourceSubscription attribute already names the source, so
        # per-subscription topics would only add resources.
        "dead_letters": TopicSpec("dead_letters", f"{p}-dead-letters", is_dead_letter=True),
        # The recorder's own dead letters (Firestore down for hours) park here for operators;
        # without it the recorder's subscription would have no dead-letter policy.
        "unrecorded": TopicSpec("unrecorded", f"{p}-dead-letters-unrecorded", is_dead_letter=True),
    }


def _subscriptions(config: DeploymentConfig) -> dict[str, SubscriptionSpec]:
    def sub(
        key: str,
        topic: str,
        event_types: tuple[str, ...],
        push: str | None,
        dead_letter: str = "dead_letters",
    ) -> SubscriptionSpec:
        # Every push target runs with function_timeout_seconds (see _functions).
        return SubscriptionSpec(
            key=key,
            name=f"{config.prefix}-{key.replace('_', '-')}",
            topic=topic,
            event_types=event_types,
            dead_letter_topic=dead_letter,
            max_delivery_attempts=(
                config.max_delivery_attempts if push else OPERATOR_MAX_DELIVERY_ATTEMPTS
            ),
            retry=RetryPolicy(config.min_backoff_seconds, config.max_backoff_seconds),
            ack_deadline_seconds=(
                push_ack_deadline(config.function_timeout_seconds)
                if push
                else OPERATOR_ACK_DEADLINE_SECONDS
            ),
            retention_seconds=config.message_retention_seconds,
            push_function=push,
        )

    subscriptions = (
        sub(
            "metadata_writer",
            "image_events",
            (PROCESSED, FAILED, DELETED, EXPIRED),
            "write_metadata",
        ),
        # Failed images, pulled by operators and alerting tools.
        sub("failures", "image_events", (FAILED,), None),
        sub("cleanup", "upload_events", ("OBJECT_DELETE",), "cleanup"),
        sub("dead_letter_recorder", "dead_letters", (), "handle_dead_letter", "unrecorded"),
        # Terminal: pulled by operators. Its own dead letters go back to the recorder's
        # topic, so a message an operator keeps nacking is recorded, not dropped.
        sub("dead_letters_unrecorded", "unrecorded", (), None),
    )
    return {s.key: s for s in subscriptions}


def _functions(config: DeploymentConfig, env: Mapping[str, str]) -> dict[str, FunctionSpec]:
    """make_thumbnail sized by the `thumbnail_*` settings, the others by `function_*`."""
    p = config.prefix
    grants = _grants(config.project, env["FIRESTORE_DATABASE"])

    def fn(key: str, purpose: str, sa: str) -> FunctionSpec:
        thumbnail = key == "make_thumbnail"
        # One request per make_thumbnail instance: a decode may need the instance's memory.
        concurrency = 1 if thumbnail else config.function_concurrency
        return FunctionSpec(
            key=key,
            name=f"{p}-{key.replace('_', '-')}",
            purpose=purpose,
            service_account_id=f"{p}-{sa}",
            memory=config.thumbnail_memory if thumbnail else config.function_memory,
            cpu=config.thumbnail_cpu if thumbnail else config.function_cpu,
            timeout_seconds=(
                config.thumbnail_timeout_seconds if thumbnail else config.function_timeout_seconds
            ),
            max_instances=(
                config.thumbnail_max_instances if thumbnail else config.function_max_instances
            ),
            concurrency=concurrency,
            grants=grants[key],
            # functions-framework's gunicorn runs `THREADS` threads, by default 4 per CPU it
            # sees (functions_framework/_http/gunicorn.py): set to the instance's concurrency,
            # Cloud Run's requests are served, not queued inside the instance.
            env={**env, **({"THREADS": str(concurrency)} if concurrency > 1 else {})},
        )

    functions = (
        fn("make_thumbnail", "finalized upload -> thumbnails + result event", "thumbnailer"),
        fn("write_metadata", "result event -> Firestore images/{id}", "metadata"),
        fn(
            "cleanup", "deleted original -> delete its thumbnails, publish image.deleted", "cleanup"
        ),
        fn("handle_dead_letter", "dead letter -> Firestore dead_letters/{id}", "deadletters"),
    )
    return {f.key: f for f in functions}


def _grants(project: str, database: str) -> dict[str, tuple[Grant, ...]]:
    """What each function's runtime account may do: each role on the one resource that needs
    it, with the reason."""
    image_publisher = Grant(
        "topic", "image_events", "roles/pubsub.publisher", "publishes its result events"
    )
    firestore_user = _firestore_user(project, database)
    return {
        "make_thumbnail": (
            Grant("bucket", "uploads", "roles/storage.objectViewer", "reads originals"),
            Grant(
                "bucket",
                "thumbnails",
                "roles/storage.objectUser",
                "reads, writes, replaces thumbnails (objectUser: the narrowest role to delete)",
            ),
            image_publisher,
        ),
        "write_metadata": (firestore_user,),
        "cleanup": (
            Grant(
                "bucket",
                "thumbnails",
                "roles/storage.objectUser",
                "lists, reads and deletes thumbnails (objectUser: the narrowest role to delete)",
            ),
            Grant(
                "bucket",
                "uploads",
                "roles/storage.objectViewer",
                "reads the live upload, to tell an overwrite's delete from a person's "
                "(objectViewer: the narrowest role to read; its objects.list goes unused)",
            ),
            image_publisher,
        ),
        "handle_dead_letter": (firestore_user,),
    }


def _firestore_user(project: str, database: str) -> Grant:
    """Firestore has no per-collection IAM, but a condition can name the database: the
    grant then reaches this database only, not every database of the project (Firestore,
    "Configure access with IAM Conditions": resource.name of a database)."""
    return Grant(
        "project",
        "",
        "roles/datastore.user",
        "reads and writes its documents in the pipeline's database (Firestore has no "
        "per-collection IAM; the condition keeps it to that database)",
        Condition(
            "pipeline database only",
            f'resource.name == "projects/{project}/databases/{database}"',
            f"the {database} database the functions use, no other database of the project",
        ),
    )
