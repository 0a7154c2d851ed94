"""`scripts/local`: run the pipeline on this machine and look inside it (docs/local-stack.md)."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from image_pipeline import deadlines
from infra.common import arguments
from infra.common.emulator_clients import emulator_subscriber
from infra.common.terminal import quiet_broken_pipe
from infra.local import lifecycle
from infra.local.control import settings_body
from infra.local.fidelity.faults import FaultError, FaultSettings, names
from infra.local.fidelity.iam import MODES
from infra.local.local_stack import LocalStack, StackOptions, read_stack_json, stop_on_signals
from infra.local.pull import (
    PushSubscription,
    UnknownSubscription,
    pull_filtered,
    pull_subscription,
)
from infra.local.servers import PreflightError, StartupError
from infra.model.config import ConfigError, DeploymentConfig, load_config
from infra.model.iam_policy import PolicyError
from infra.model.topology import build_topology
from infra.ops import dead_letters

_FAULT_SETTINGS = ("duplicate_rate", "reorder_window", "transient_rate", "seed")


def _fault_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fault injection")
    number = arguments.number
    group.add_argument("--duplicate-rate", type=number(0, 1), help="share of deliveries sent twice")
    group.add_argument(
        "--reorder-window",
        type=number(0, 1000, integer=True),
        help="delay each delivery a random 0..N x 50 ms, so close ones arrive in any order",
    )
    group.add_argument("--transient-rate", type=number(0, 1), help="share answered 503 uncalled")
    group.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="FUNCTION",
        help="answer 500 for FUNCTION until healed (repeatable)",
    )
    group.add_argument("--seed", type=int, help="random seed, to repeat a run")


def _settings_flag(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE", help=help)


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.Parser(prog="scripts/local", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the local stack")
    up.add_argument("--detach", action="store_true", help="run in the background and return")
    up.add_argument(
        "--backoff-factor",
        type=arguments.number(above=0),
        default=1.0,
        help="scale retry backoffs (0.01 makes 10 s into 100 ms)",
    )
    up.add_argument(
        "--trigger-retry-window",
        type=arguments.number(above=0),
        metavar="SECONDS",
        help="how long the Eventarc stand-in retries an event before it gives up "
        "(default: Eventarc's 24 h times --backoff-factor)",
    )
    _settings_flag(up, "override a deployment setting, e.g. --set max_input_bytes=1000000")
    iam = "check each call against the stacks' IAM: on refuses what it refuses, soft only logs"
    up.add_argument("--iam", choices=MODES, default="on", help=iam)
    policy = "enforce the IAM of this cdktf.out as it is (default: synthesize the settings')"
    up.add_argument("--policy", type=Path, metavar="DIR", help=policy)
    up.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    _fault_flags(up)
    commands.add_parser("down", help="stop the running stack")
    commands.add_parser("status", help="show the running stack")
    commands.add_parser(
        "env", help='print exports for client libraries and gcloud: eval "$(scripts/local env)"'
    )
    pull = commands.add_parser("pull", help="print messages of a pull subscription (JSON lines)")
    pull.add_argument(
        "subscription",
        help="key (dead_letters_unrecorded), name (dead-letters-unrecorded, "
        "imgpipe-dead-letters-unrecorded) or full path",
    )
    pull.add_argument(
        "--max",
        type=arguments.number(low=1, integer=True),
        default=100,
        help="stop after this many",
    )
    pull.add_argument(
        "--wait", type=arguments.number(low=0), default=2.0, help="stop after this long with none"
    )
    replay = commands.add_parser(
        "replay", add_help=False, help="same as scripts/dead-letters replay (one implementation)"
    )
    replay.add_argument("arguments", nargs=argparse.REMAINDER)  # listed here; main() runs it
    faults = commands.add_parser("faults", help="change fault injection on the live stack")
    _fault_flags(faults)
    faults.add_argument(
        "--heal",
        action="append",
        default=[],
        metavar="FUNCTION",
        help="stop failing FUNCTION ('all' for every one)",
    )
    faults.add_argument("--reset", action="store_true", help="turn every fault off")
    commands.add_parser("iam", help="per identity: permissions used, denied, never used")
    redeploy = commands.add_parser(
        "redeploy",
        help="apply cdktf.json, PIPELINE_* and --set to the running functions (as a deploy "
        "would; the data stays), e.g. after changing output_rules",
    )
    _settings_flag(
        redeploy,
        "override a deployment setting (those given to `up --set` must be given again)",
    )
    return parser


def _config(args: argparse.Namespace) -> DeploymentConfig:
    """cdktf.json, then PIPELINE_* variables, then --set (like a deploy)."""
    overrides: dict[str, Any] = {"project": args.project} if "project" in args else {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(key, "--set wants SETTING=VALUE")
        overrides[key] = value
    return load_config(overrides=overrides)


def _fault_request(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in _FAULT_SETTINGS if getattr(args, k) is not None}


def cmd_up(args: argparse.Namespace) -> int:
    config = _config(args)  # every setting and flag is checked before anything starts
    failing = names(args.fail, "--fail", build_topology(config).functions)
    settings = FaultSettings(failing=failing, **_fault_request(args))
    lifecycle.refuse_if_running()
    if args.detach:
        return lifecycle.detach()
    options = StackOptions(
        faults=settings,
        backoff_factor=args.backoff_factor,
        trigger_window_seconds=args.trigger_retry_window,
        iam=args.iam,
        policy=args.policy,
    )
    stack = LocalStack(config, options)
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        stack.up()
        lifecycle.print_summary(stack.info())
        if not args.supervised:
            print("running; Ctrl-C stops everything", file=sys.stderr)
        while not stop.wait(1.0):
            pass
    finally:
        print("stopping the local stack", file=sys.stderr)
        stack.down()
    return 0


def client_exports(info: Mapping[str, Any]) -> dict[str, str]:
    """The variables that point client libraries (`*_EMULATOR_HOST`) and the gcloud CLI
    (which ignores those for storage and pubsub: endpoint overrides, no credentials) at the
    stack (docs/local-stack.md; measured with gcloud 528)."""
    env = dict(info["env"])
    return {
        **env,
        "CLOUDSDK_CORE_PROJECT": info["project"],
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE": env["STORAGE_EMULATOR_HOST"].rstrip("/") + "/",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": f"http://{env['PUBSUB_EMULATOR_HOST']}/",
    }


def cmd_env(args: argparse.Namespace) -> int:
    """Shell exports, like `gcloud beta emulators pubsub env-init`."""
    for key, value in client_exports(read_stack_json()).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    info = read_stack_json()
    pull_subscription(info, args.subscription)  # refused before any client exists
    subscriber = emulator_subscriber(info["env"])
    host = info["env"]["PUBSUB_EMULATOR_HOST"]
    try:
        with deadlines.answering("Pub/Sub", host, deadlines.SECONDS):
            for item in pull_filtered(subscriber, info, args.subscription, args.max, args.wait):
                print(json.dumps(item), flush=True)
    finally:
        subscriber.close()
    return 0


def cmd_faults(args: argparse.Namespace) -> int:
    info = read_stack_json()
    names(args.fail, "--fail", [fn["target"] for fn in info["functions"].values()])
    request = _fault_request(args)
    if args.fail:
        request["fail"] = args.fail
    if args.heal:
        request["heal"] = "all" if "all" in args.heal else args.heal
    if args.reset:
        request["reset"] = True
    url = f"{info['router']['url']}/faults"
    response = (
        requests.put(url, json=request, timeout=5) if request else requests.get(url, timeout=5)
    )
    if response.status_code == 400:  # the router refused the request: nothing changed
        raise FaultError(response.json().get("error", response.text))
    print(json.dumps(response.json()))
    return 0 if response.ok else 1


def cmd_redeploy(args: argparse.Namespace) -> int:
    """Builds the settings as `up` does, in this process (so errors show here), and has the
    running stack restart its functions with them."""
    info = read_stack_json()
    args.project = info["project"]  # the emulators' project: names must not change
    body = settings_body(_config(args))
    response = requests.put(f"{info['router']['url']}/settings", json=body, timeout=180)
    print(json.dumps(response.json()))
    return 0 if response.ok else 1


def cmd_iam(args: argparse.Namespace) -> int:
    response = requests.get(f"{read_stack_json()['router']['url']}/iam", timeout=10)
    if response.status_code == 404:
        raise RuntimeError("this stack checks no IAM (it was started with --iam off)")
    print(json.dumps(response.json(), indent=2))
    return 0


COMMANDS = {
    "up": cmd_up,
    "down": lambda args: lifecycle.down(),
    "status": lambda args: lifecycle.status(),
    "env": cmd_env,
    "pull": cmd_pull,
    "faults": cmd_faults,
    "redeploy": cmd_redeploy,
    "iam": cmd_iam,
}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["replay"]:
        # Handed over whole: argparse's REMAINDER refuses a leading option such as --all.
        return dead_letters.main(argv)
    args = build_parser().parse_args(argv)
    try:
        return quiet_broken_pipe(lambda: COMMANDS[args.command](args))
    except (ConfigError, FaultError, PushSubscription, UnknownSubscription, PolicyError) as exc:
        return arguments.refusal(str(exc))  # refused: nothing started, nothing pulled
    except (PreflightError, StartupError, RuntimeError, deadlines.Unavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
