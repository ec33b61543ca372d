#!/usr/bin/env bash
# Makes sure Debian's tinyproxy is installed for the proxy tests
# (test/proxy*.test.ts start it on loopback with their own configuration;
# the package's service is neither configured nor needed). Idempotent: does
# nothing when tinyproxy is there. Only Debian's package, through apt-get.
#
# Exit status: 0 when tinyproxy answers `-v`; non-zero, with a loud message
# on stderr, when it cannot be installed.
#   TINYPROXY_PATH=/path/to/tinyproxy  use another binary (checked, not installed)
set -uo pipefail

BIN="${TINYPROXY_PATH:-/usr/bin/tinyproxy}"

fail() {
  {
    echo
    echo "################################################################"
    echo "#  PROXY TESTS CANNOT RUN: $*"
    echo "#  The proxy tests need Debian's tinyproxy at $BIN."
    echo "#  Install it with:  apt-get update && apt-get install -y tinyproxy"
    echo "#  (or point TINYPROXY_PATH at a tinyproxy binary)."
    echo "################################################################"
    echo
  } >&2
  exit 1
}

works() { [ -x "$BIN" ] && "$BIN" -v >/dev/null 2>&1; }

if works; then
  echo "proxy-deps: $("$BIN" -v 2>&1 | head -1) at $BIN"
  exit 0
fi

if [ -n "${TINYPROXY_PATH:-}" ]; then
  fail "TINYPROXY_PATH=$TINYPROXY_PATH does not run ('$BIN -v' failed)"
fi

command -v apt-get >/dev/null 2>&1 || fail "no tinyproxy at $BIN and no apt-get to install it"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "no tinyproxy at $BIN, and installing it needs root (no sudo)"
  SUDO="sudo -n"
fi

echo "proxy-deps: installing Debian's tinyproxy (apt-get)…"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2 || fail "'apt-get update' failed"
# tinyproxy-bin (Debian 12 and later) is the program alone, without the system service.
if apt-cache show tinyproxy-bin >/dev/null 2>&1; then PKG=tinyproxy-bin; else PKG=tinyproxy; fi
$SUDO apt-get install -y -qq --no-install-recommends "$PKG" >&2 || fail "'apt-get install $PKG' failed"

works || fail "tinyproxy was installed but '$BIN -v' does not run"
echo "proxy-deps: $("$BIN" -v 2>&1 | head -1) at $BIN"
