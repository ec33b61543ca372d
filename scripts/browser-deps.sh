#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed for the browser tests
# (test/browser/). Idempotent: does nothing when a working Chromium is there.
# Never downloads a browser of its own (no `playwright install`): only
# Debian's package, through apt-get.
#
# Exit status: 0 when Chromium answers `--version`; non-zero, with a loud
# message on stderr, when it cannot be installed or started.
#   CHROMIUM_PATH=/path/to/chromium  use another binary (checked, not installed)
set -uo pipefail

BIN="${CHROMIUM_PATH:-/usr/bin/chromium}"

fail() {
  {
    echo
    echo "################################################################"
    echo "#  BROWSER TESTS CANNOT RUN: $*"
    echo "#  The editor tests need Debian's Chromium at $BIN."
    echo "#  Install it with:  apt-get update && apt-get install -y chromium"
    echo "#  (or point CHROMIUM_PATH at a Chromium binary)."
    echo "################################################################"
    echo
  } >&2
  exit 1
}

works() { "$BIN" --version >/dev/null 2>&1; }

if works; then
  echo "browser-deps: $("$BIN" --version 2>/dev/null) at $BIN"
  exit 0
fi

if [ -n "${CHROMIUM_PATH:-}" ]; then
  fail "CHROMIUM_PATH=$CHROMIUM_PATH does not start ('$BIN --version' failed)"
fi

command -v apt-get >/dev/null 2>&1 || fail "no Chromium at $BIN and no apt-get to install it"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "no Chromium at $BIN, and installing it needs root (no sudo)"
  SUDO="sudo -n"
fi

echo "browser-deps: installing Debian's chromium (apt-get)…"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2 || fail "'apt-get update' failed"
$SUDO apt-get install -y -qq --no-install-recommends chromium >&2 \
  || fail "'apt-get install chromium' failed"

works || fail "chromium was installed but '$BIN --version' does not run"
echo "browser-deps: $("$BIN" --version 2>/dev/null) at $BIN"
