"""What a new synth would replace among the resources holding data, compared with the last.

A bucket's `name` and `location`, a topic's `name`, a subscription's `name`, `topic` and
`filter`, and the Firestore database's `location_id` are ForceNew in the google provider
(6.50): Terraform can only set them when it creates the resource, and replaces it by
destroying it first. `prevent_destroy` refuses such a plan
(`infra/deploy/constructs/protection.py`), but only once `cdktf deploy` has planned it;
`python main.py` already knows, when a previous synth is in `cdktf.out`, and refuses to
write the new one unless `confirm_destroy_data` names the project. Plain data: no cdktf.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from infra.model.config import FIXED_AFTER_FIRST_DEPLOY

# Attributes of the protected resource types that the provider marks ForceNew.
FORCE_NEW: Mapping[str, tuple[str, ...]] = {
    "google_storage_bucket": ("name", "location", "project"),
    "google_firestore_database": ("name", "location_id", "project"),
    "google_pubsub_topic": ("name", "project"),
    "google_pubsub_subscription": ("name", "topic", "filter", "project"),
}


def _holding_data(
    stacks: Iterable[Mapping[str, Any]], protected: bool = False
) -> dict[str, Mapping[str, Any]]:
    """Address -> body of the resources of these types (those with prevent_destroy only)."""
    return {
        f"{kind}.{name}": body
        for tf in stacks
        for kind in FORCE_NEW
        for name, body in tf.get("resource", {}).get(kind, {}).items()
        if not protected or body.get("lifecycle", {}).get("prevent_destroy")
    }


def replacements(
    before: Iterable[Mapping[str, Any]], after: Iterable[Mapping[str, Any]]
) -> Iterator[str]:
    """One line per protected resource of `before` that `after` replaces or removes."""
    new = _holding_data(after)
    for address, old in sorted(_holding_data(before, protected=True).items()):
        kind = address.split(".")[0]
        if address not in new:
            yield f"{address} ({old.get('name')}) is no longer declared: a plan destroys it"
            continue
        for attribute in FORCE_NEW[kind]:
            if old.get(attribute) != new[address].get(attribute):
                yield (
                    f"{address}: {attribute} {old.get(attribute)!r} -> "
                    f"{new[address].get(attribute)!r} replaces it"
                )


def report(lines: list[str], confirmed: bool) -> str:
    """The refusal (or, with `confirm_destroy_data`, the warning) naming each replacement."""
    return (
        (
            "warning: the plan will destroy"
            if confirmed
            else "error: this synth (not written) would destroy"
        )
        + " resources that hold data (compared with the last synth in cdktf.out):\n"
        + "".join(f"  - {line}\n" for line in lines)
        + (
            ""
            if confirmed
            else "  To change a subscription or a topic without losing messages, follow "
            'docs/deploy-and-operate.md, "Changes that lose nothing"; to go ahead and lose what '
            "they hold, set PIPELINE_CONFIRM_DESTROY_DATA=<project>.\n"
        )
        + f"  Settings fixed after the first deploy: {', '.join(FIXED_AFTER_FIRST_DEPLOY)} "
        "(docs/settings.md)."
    )
