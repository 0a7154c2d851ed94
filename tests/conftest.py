"""A bare `python -m pytest` runs what this machine can, and says how to run the rest.

Tests marked for a tool that is missing here (`integration`: the emulators and Java;
`synth`: Node; `checkov`; `browser`: Chromium) are deselected, with one summary line naming
what is missing and pointing at `scripts/test`. Under CI (`CI` set) or `scripts/test`
(`REQUIRE_ALL_TESTS=1`) nothing is deselected: such a test fails with the install hint.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.node_version import NODE_MIN_MAJOR, node_major, node_version
from tests.synthesis import synthesized  # noqa: F401  the one synth, for infra and integration

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


def _emulators() -> str | None:
    from infra.local.servers import PreflightError, preflight

    try:
        preflight()
    except PreflightError as error:
        return f"the emulators, {error}"
    return None


def _node() -> str | None:
    """jsii, which runs the provider bindings of a synth, supports Node 22 and 24."""
    node = shutil.which(os.environ.get("JSII_NODE", "node"))  # what jsii starts
    version = node_version(node) if node else ""
    if node_major(version) >= NODE_MIN_MAJOR:
        return None
    found = version or "no node"
    return f"Node.js {NODE_MIN_MAJOR}+ for the CDKTF synth, found {found} (scripts/test adds one)"


def _checkov() -> str | None:
    checkov = Path(os.environ.get("CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))
    return None if checkov.exists() else f"checkov ({checkov}; scripts/test installs it)"


def _browser() -> str | None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return None
    return "Chromium (apt-get install -y chromium chromium-driver)"


# marker -> what reports the missing tool (None: present). Checked once, on first use.
_NEEDS: dict[str, Callable[[], str | None]] = {
    # The integration suite's stacks enforce the IAM of their stacks, from the session synth.
    "integration": lambda: _emulators() or _node(),
    "synth": _node,
    "checkov": _checkov,
    "browser": _browser,
}
_missing: dict[str, str | None] = {}
_left_out: list[pytest.Item] = []


def _strict() -> bool:
    def on(name: str) -> bool:
        return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")

    return on("CI") or on("REQUIRE_ALL_TESTS")


def _lacking(item: pytest.Item) -> list[str]:
    lacking = []
    for marker, check in _NEEDS.items():
        if item.get_closest_marker(marker) is not None:
            if marker not in _missing:
                _missing[marker] = check()
            if _missing[marker]:
                lacking.append(str(_missing[marker]))
    return lacking


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _strict():
        return
    keep = [item for item in items if not _lacking(item)]
    if len(keep) < len(items):
        _left_out.extend(item for item in items if item not in keep)
        config.hook.pytest_deselected(items=_left_out)
        items[:] = keep


def pytest_runtest_setup(item: pytest.Item) -> None:
    lacking = _lacking(item) if _strict() else []
    if lacking:
        pytest.fail(f"this test needs {'; '.join(lacking)}", pytrace=False)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _left_out:
        # The first sentence of each (the emulators' message goes on with an install hint).
        missing = sorted({m.split(". ", 1)[0] for m in _missing.values() if m})
        terminalreporter.write_line(
            f"NOT RUN: {len(_left_out)} test(s) need what this machine lacks "
            f"({' | '.join(missing)}); `scripts/test` runs everything.",
            yellow=True,
            bold=True,
        )
