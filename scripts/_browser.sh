# Sourced by scripts/test: the gallery's browser test drives Debian's chromium through
# chromium-driver. Installed here when missing (as root), so a fresh machine runs it too.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing Debian's chromium and chromium-driver (once, ~90 MB of packages)" >&2
    progress "apt-get update" apt-get update
    progress "apt-get install chromium chromium-driver" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y chromium chromium-driver
  else
    echo "error: the browser test needs the Debian packages chromium and chromium-driver:" \
      "run 'sudo apt-get install -y chromium chromium-driver'" >&2
    exit 1
  fi
fi
