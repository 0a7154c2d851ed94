"""`scripts/local`: run the pipeline on this machine and look inside it.

scripts/local up [--detach] [fault flags]   start (foreground until Ctrl-C, or detached)
scripts/local down                          stop the stack recorded in .local/stack.json
scripts/local status                        what runs, where, and delivery counters
eval "$(scripts/local env)"                 point client libraries and gcloud at the stack
scripts/local pull SUBSCRIPTION             messages delivered to a pull subscription
scripts/local replay [--all | ID...]        same as scripts/dead-letters replay
scripts/local faults [fault flags]          change fault injection on the live stack
scripts/local redeploy [--set S=V ...]      roll cdktf.json's settings out to the functions
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Collection
from typing import Any

import requests

from image_pipeline import deadlines
from infra.common import arguments, paths
from infra.common.emulator_clients import emulator_subscriber
from infra.local.control import settings_body
from infra.local.emulators import PreflightError
from infra.local.faults import FaultError, FaultSettings
from infra.local.local_stack import (
    LocalStack,
    StackOptions,
    read_stack_json,
    stop_on_signals,
)
from infra.local.operations import (
    PushSubscription,
    client_exports,
    pull_filtered,
    pull_subscription,
)
from infra.local.processes import (
    StartupError,
    group_alive,
    log_tail,
    pid_alive,
    stop_group,
    stop_groups,
)
from infra.model.config import ConfigError, DeploymentConfig, load_config
from infra.model.topology import build_topology
from infra.ops import dead_letters

DETACH_TIMEOUT = 180.0
# How long `down` lets the supervisor stop its children before it kills it and stops them
# itself: `down` answers within 30 s whatever state the stack is in.
DOWN_GRACE_SECONDS = 20.0


def _fault_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("fault injection")
    group.add_argument(
        "--duplicate-rate", type=arguments.number(0, 1), help="share of deliveries sent twice"
    )
    group.add_argument(
        "--reorder-window",
        type=arguments.number(0, 1000, integer=True),
        help="hold and shuffle up to N messages",
    )
    group.add_argument(
        "--transient-rate", type=arguments.number(0, 1), help="share answered 503 uncalled"
    )
    group.add_argument(
        "--fail",
        action="append",
        default=[],
        metavar="FUNCTION",
        help="answer 500 for FUNCTION until healed (repeatable)",
    )
    group.add_argument("--seed", type=int, help="random seed, to repeat a run")


def _fault_request(args: argparse.Namespace) -> dict[str, Any]:
    request: dict[str, Any] = {}
    for name in ("duplicate_rate", "reorder_window", "transient_rate", "seed"):
        if getattr(args, name) is not None:
            request[name] = getattr(args, name)
    return request


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.Parser(
        prog="scripts/local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the local stack")
    up.add_argument("--detach", action="store_true", help="run in the background and return")
    up.add_argument("--project", help="project id for the emulators (default: cdktf.json's)")
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
    up.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="override a deployment setting, e.g. --set max_input_bytes=1000000",
    )
    up.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)
    _fault_flags(up)

    commands.add_parser("down", help="stop the running stack")
    commands.add_parser("status", help="show the running stack")
    commands.add_parser(
        "env", help='print exports for client libraries and gcloud: eval "$(scripts/local env)"'
    )

    pull = commands.add_parser("pull", help="print messages of a pull subscription (JSON lines)")
    pull.add_argument("subscription", help="name (imgpipe-failures) or key (failures)")
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

    redeploy = commands.add_parser(
        "redeploy",
        help="apply cdktf.json, PIPELINE_* and --set to the running functions (as a deploy "
        "would; the data stays), e.g. after changing output_rules",
    )
    redeploy.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="override a deployment setting (those given to `up --set` must be given again)",
    )
    return parser


# -- up / down / status ----------------------------------------------------------------------


def _config(args: argparse.Namespace) -> DeploymentConfig:
    """cdktf.json, then PIPELINE_* variables, then --project and --set (like a deploy)."""
    overrides: dict[str, Any] = {}
    if args.project:
        overrides["project"] = args.project
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(key, "--set wants SETTING=VALUE")
        overrides[key] = value
    return load_config(overrides=overrides)


def _refuse_if_running() -> None:
    try:
        info = read_stack_json()
    except RuntimeError:
        return
    if pid_alive(int(info.get("pid", 0))):
        raise SystemExit(
            f"a local stack is already running (pid {info['pid']}): scripts/local down"
        )
    _reap_stale(info)


def _reap_stale(info: dict[str, Any]) -> None:
    """A stack whose supervisor died: stop its leftover process groups (all at once), forget
    it."""
    groups = [int(pgid) for pgid in info.get("process_groups", {}).values()]
    stop_groups([pgid for pgid in groups if group_alive(pgid)], timeout=3.0)
    paths.STACK_JSON.unlink(missing_ok=True)


def read_stack_json_or(known: dict[str, Any]) -> dict[str, Any]:
    """stack.json as it is now (a restart updates its process groups), else `known`."""
    try:
        return read_stack_json()
    except (RuntimeError, ValueError):
        return known


def cmd_up(args: argparse.Namespace) -> int:
    config = _config(args)  # every setting and flag is checked before anything starts
    _known_functions(args.fail, build_topology(config).functions)
    settings = FaultSettings(failing=frozenset(args.fail), **_fault_request(args))
    _refuse_if_running()
    if args.detach:
        return _detach(args)
    stack = LocalStack(
        config,
        StackOptions(
            faults=settings,
            backoff_factor=args.backoff_factor,
            trigger_window_seconds=args.trigger_retry_window,
        ),
    )
    stop = threading.Event()
    stop_on_signals(stop)
    try:
        stack.up()
        _print_summary(stack.info())
        if not args.supervised:
            print("running; Ctrl-C stops everything", file=sys.stderr)
        while not stop.wait(1.0):
            pass
    finally:
        print("stopping the local stack", file=sys.stderr)
        stack.down()
    return 0


def _detach(args: argparse.Namespace) -> int:
    argv = [sys.executable, "-m", "infra.local.cli", "up", "--supervised"]
    argv += [a for a in sys.argv[2:] if a != "--detach"]
    log_path = paths.LOGS_DIR / "supervisor.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        start = log.tell()  # what earlier runs logged is not this run's error
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + DETACH_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            tail = log_tail(log_path, since=start)
            print(
                f"error: the stack did not start. Last lines of {log_path}:\n{tail}",
                file=sys.stderr,
            )
            return 1
        try:
            info = read_stack_json()
            if info.get("pid") == child.pid:
                _print_summary(info)
                print(
                    f"detached (supervisor pid {child.pid}); stop with scripts/local down",
                    file=sys.stderr,
                )
                return 0
        except (RuntimeError, ValueError):
            pass
        time.sleep(0.2)
    stop_group(child.pid)
    print(f"error: no stack after {DETACH_TIMEOUT:.0f}s; see {log_path}", file=sys.stderr)
    return 1


def _print_summary(info: dict[str, Any]) -> None:
    print(f"local stack up in {info['timings'].get('up_s', '?')} s (project {info['project']})")
    for key, value in info["env"].items():
        print(f"  export {key}={value}")
    for name, fn in info["functions"].items():
        print(f"  function {name:<28} {fn['url']}")
    print(f"  router control: {info['router']['url']}")
    print(f"  gallery:        {info.get('gallery')}")
    print(f"  written: {paths.STACK_JSON}")


def cmd_down(args: argparse.Namespace) -> int:
    try:
        info = read_stack_json()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 0
    for variable, host, answers in _emulator_health(info, timeout=1.0):
        if not answers:  # said, so a slow or odd stop has its reason on screen
            print(f"note: the {_EMULATORS[variable]} at {host} was not answering", file=sys.stderr)
    pid = int(info["pid"])
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)  # the supervisor stops its children itself
        deadline = time.monotonic() + DOWN_GRACE_SECONDS
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if pid_alive(pid):  # stuck: whatever it was doing, `down` still ends in seconds
            print(f"supervisor pid {pid} did not stop; killing it", file=sys.stderr)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _reap_stale(read_stack_json_or(info))
    print("local stack stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    info = read_stack_json()
    alive = pid_alive(int(info["pid"]))
    print(f"supervisor pid {info['pid']}: {'running' if alive else 'NOT running'}")
    healthy = alive
    for name, host, ok in _emulator_health(info):
        healthy &= ok
        emulator = info.get("emulators", {}).get(name.split("_")[0].lower(), {})
        restarts = (
            f"pid {emulator.get('pid', '?')}, restarted {emulator.get('restarts', 0)} time(s)"
        )
        print(f"  {name:<24} {host:<28} {'up' if ok else 'DOWN':<4} {restarts}")
    proxy = info.get("gcs_preconditions", {})
    if proxy.get("host"):  # STORAGE_EMULATOR_HOST is this proxy; the fake listens behind it
        ok = _answers(f"http://{proxy['upstream']}/storage/v1/b")
        healthy &= ok
        state = "up" if ok else "DOWN"
        print(f"  {'fake-gcs-server':<24} {proxy['upstream']:<28} {state:<4} behind the proxy")
    for fn_name, fn in info["functions"].items():
        ok = _answers(fn["url"])
        healthy &= ok
        state = "up" if ok else "DOWN"
        print(
            f"  {fn_name:<24} {fn['url']:<28} {state:<4} pid {fn.get('pid', '?')}, "
            f"restarted {fn.get('restarts', 0)} time(s)"
        )
    router = info["router"]["url"]
    try:
        stats = requests.get(f"{router}/stats", timeout=2).json()
        faults = requests.get(f"{router}/faults", timeout=2).json()
        print("router:", json.dumps(stats))
        print(capacity_lines(stats))
        print("faults:", json.dumps(faults))
    except requests.RequestException:
        healthy = False
        print(f"  router control {router}: DOWN")
    return 0 if healthy else 1


def capacity_lines(stats: dict[str, Any]) -> str:
    """Each function's slots (instances x concurrency), wait bound and 429s so far."""
    lines = ["capacity (Cloud Run's limit; 429 = refused for lack of an instance):"]
    for key, cap in sorted(stats.get("capacity", {}).items()):
        throttled = stats.get("functions", {}).get(key, {}).get("throttled", 0)
        lines.append(
            f"  {key:<20} {cap['slots']:>5} at once, wait <= {cap['wait_s']} s, 429: {throttled}"
        )
    return "\n".join(lines)


_EMULATORS = {
    "PUBSUB_EMULATOR_HOST": "Pub/Sub emulator",
    "FIRESTORE_EMULATOR_HOST": "Firestore emulator",
    "STORAGE_EMULATOR_HOST": "Cloud Storage emulator",
}


def _emulator_health(info: dict[str, Any], timeout: float = 2.0) -> list[tuple[str, str, bool]]:
    """Each emulator's variable, host and whether it answers HTTP now."""
    found = []
    for name, host in info["env"].items():
        if name in _EMULATORS:
            url = host if host.startswith("http") else f"http://{host}"
            path = "/storage/v1/b" if name == "STORAGE_EMULATOR_HOST" else "/"
            found.append((name, host, _answers(url + path, timeout)))
    return found


def _answers(url: str, timeout: float = 2.0) -> bool:
    try:
        requests.get(url, timeout=timeout)
        return True
    except requests.RequestException:
        return False


def cmd_env(args: argparse.Namespace) -> int:
    """Shell exports, like `gcloud beta emulators pubsub env-init`."""
    for key, value in client_exports(read_stack_json()).items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


# -- pull / replay / faults ------------------------------------------------------------------


def cmd_pull(args: argparse.Namespace) -> int:
    info = read_stack_json()
    try:  # refused before any client exists: nothing is pulled, nothing acked
        pull_subscription(info, args.subscription)
    except (PushSubscription, KeyError) as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    subscriber = emulator_subscriber(info["env"])
    host = info["env"]["PUBSUB_EMULATOR_HOST"]
    try:
        with deadlines.answering("Pub/Sub", host, deadlines.SECONDS):
            for item in pull_filtered(subscriber, info, args.subscription, args.max, args.wait):
                print(json.dumps(item), flush=True)
    except deadlines.Unavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        subscriber.close()
    return 0


def _known_functions(names: list[str], functions: Collection[str]) -> None:
    unknown = sorted(set(names) - set(functions))
    if unknown:
        raise FaultError(
            f"--fail: no function {', '.join(unknown)} (known: {', '.join(functions)})"
        )


def cmd_faults(args: argparse.Namespace) -> int:
    info = read_stack_json()
    _known_functions(args.fail, [fn["target"] for fn in info["functions"].values()])
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
    config = _config(args)
    body = settings_body(config)
    response = requests.put(f"{info['router']['url']}/settings", json=body, timeout=180)
    print(json.dumps(response.json()))
    return 0 if response.ok else 1


COMMANDS = {
    "up": cmd_up,
    "down": cmd_down,
    "status": cmd_status,
    "env": cmd_env,
    "pull": cmd_pull,
    "faults": cmd_faults,
    "redeploy": cmd_redeploy,
}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["replay"]:
        # Handed over whole: argparse's REMAINDER refuses a leading option such as --all.
        return dead_letters.main(argv)
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ConfigError, FaultError) as exc:  # a bad setting or flag: refused, nothing started
        return arguments.refusal(str(exc))
    except (PreflightError, StartupError, RuntimeError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
