"""What a new synth would replace among the resources holding data, compared with the last
synth in `cdktf.out`: `python main.py` refuses to write it unless `confirm_destroy_data` names
the project, so the change is named before `cdktf deploy` plans it (where `prevent_destroy`
refuses it). Plain data: no cdktf.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from infra.model.config import FIXED_AFTER_FIRST_DEPLOY

# Attributes of the protected resource types that the google provider marks ForceNew (set only
# at creation, so a change replaces the resource, destroying it first) and the stacks set: its
# schemas at v6.50.0, the version the stacks pin (hashicorp/terraform-provider-google,
# google/services/{storage,firestore,pubsub}/resource_*.go). The stacks set none of the others;
# tests/infra/test_stack_changes.py lists them and fails when a stack sets one.
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
    if confirmed:
        text = "warning: the plan will destroy"
    else:
        text = "error: this synth (not written) would destroy"
    text += " resources that hold data (compared with the last synth in cdktf.out):\n"
    text += "".join(f"  - {line}\n" for line in lines)
    if not confirmed:
        text += (
            "  To change a subscription or a topic without losing messages, follow "
            'docs/deploy-and-operate.md, "Changes that lose nothing"; to go ahead and lose what '
            "they hold, set PIPELINE_CONFIRM_DESTROY_DATA=<project>.\n"
        )
    fixed = ", ".join(FIXED_AFTER_FIRST_DEPLOY)
    return text + f"  Settings fixed after the first deploy: {fixed} (docs/settings.md)."
