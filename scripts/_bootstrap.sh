# Sourced by every script: makes .venv (once), installs requirements.txt when it
# changed, and activates it. Safe to run from a fresh clone.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "error: $PYTHON not found; install Python 3.11+ (Debian: python3 python3-venv)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  "$PYTHON" -m venv .venv || {
    echo "error: could not create .venv (Debian: apt-get install python3-venv)" >&2
    exit 1
  }
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=.venv/.requirements.sha256
want="$(cat requirements.txt functions/requirements.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: pip install -r requirements.txt" >&2
  python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  echo "$want" >"$stamp"
fi
export PYTHONPATH="$ROOT:$ROOT/functions${PYTHONPATH:+:$PYTHONPATH}"

# checkov (static analysis of the synthesized Terraform, tests/infra/test_checkov.py) pins
# packaging<24, which pytest 9 cannot share, so it lives in its own venv. Called by
# scripts/test; installs once (about 2 minutes), then returns at once.
CHECKOV_VERSION=3.3.30
ensure_checkov() {
  local venv="$ROOT/.venv-checkov"
  if [ "$(cat "$venv/.version" 2>/dev/null)" = "$CHECKOV_VERSION" ] && [ -x "$venv/bin/checkov" ]; then
    return 0
  fi
  echo "bootstrap: installing checkov $CHECKOV_VERSION into .venv-checkov (once, ~2 min)" >&2
  local log
  log="$(mktemp)"
  if ! { "$PYTHON" -m venv "$venv" &&
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      "checkov==$CHECKOV_VERSION"; } >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "error: could not install checkov into .venv-checkov" >&2
    return 1
  fi
  rm -f "$log"
  echo "$CHECKOV_VERSION" >"$venv/.version"
}
