#!/usr/bin/env bash
# Installs Node.js 22 (22.9 or newer) and Node-RED 5 from the npm registry into
# a cache directory outside the repository, for the Node-RED 5 tests
# (test/nr5/). Idempotent: a second run only checks what is there.
#
#   INTUNE_NR5_CACHE   cache directory (default: ~/.cache/intune-connector/nr5)
#   NODE22_SPEC        npm spec of the `node` package      (default: 22)
#   NODE_RED5_SPEC     npm spec of the `node-red` package  (default: 5)
#
# Node.js comes from the `node` package of the npm registry, which installs
# the matching `node-<os>-<arch>` package (the official binary, shipped inside
# a registry package). Nothing else is downloaded.
#
# On success it writes <cache>/env.json ({ nodeBinary, nodeVersion,
# nodeRedHome, nodeRedVersion }), which the tests read, and prints it.
set -euo pipefail

CACHE="${INTUNE_NR5_CACHE:-$HOME/.cache/intune-connector/nr5}"
NODE_SPEC="${NODE22_SPEC:-22}"
NR_SPEC="${NODE_RED5_SPEC:-5}"
NODE_DIR="$CACHE/node22"
NR_DIR="$CACHE/node-red5"
NODE_BIN="$NODE_DIR/node_modules/node/bin/node"
NR_HOME="$NR_DIR/node_modules/node-red"

fail() {
  {
    echo
    echo "################################################################"
    echo "#  NODE-RED 5 TESTS CANNOT RUN: $*"
    echo "#  (scripts/node22.sh, cache $CACHE)"
    echo "################################################################"
    echo
  } >&2
  exit 1
}

command -v npm >/dev/null 2>&1 || fail "npm is not on PATH"
mkdir -p "$CACHE" || fail "cannot create $CACHE"

# Node.js >= 22.9 ----------------------------------------------------------
node_ok() {
  [ -x "$NODE_BIN" ] || return 1
  "$NODE_BIN" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=9)?0:1)' 2>/dev/null
}
if ! node_ok; then
  echo "node22: installing node@$NODE_SPEC from the npm registry into $NODE_DIR…"
  rm -rf "$NODE_DIR"
  mkdir -p "$NODE_DIR"
  echo '{ "name": "intune-nr5-node", "private": true }' > "$NODE_DIR/package.json"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund --no-save --loglevel=error "node@$NODE_SPEC" >&2 \
    || fail "npm install node@$NODE_SPEC failed"
  node_ok || fail "node@$NODE_SPEC installed, but $NODE_BIN is not Node.js >= 22.9 ($("$NODE_BIN" --version 2>&1 || true))"
fi
NODE_VERSION="$("$NODE_BIN" --version)"

# Node-RED 5, installed with Node 22 on PATH (install scripts and engines see 22)
nr_ok() {
  [ -f "$NR_HOME/red.js" ] || return 1
  "$NODE_BIN" -e 'process.exit(require(process.argv[1]).version.split(".")[0]==="5"?0:1)' "$NR_HOME/package.json" 2>/dev/null
}
if ! nr_ok; then
  echo "node22: installing node-red@$NR_SPEC from the npm registry into $NR_DIR…"
  rm -rf "$NR_DIR"
  mkdir -p "$NR_DIR"
  echo '{ "name": "intune-nr5-node-red", "private": true }' > "$NR_DIR/package.json"
  PATH="$(dirname "$NODE_BIN"):$PATH" npm install --prefix "$NR_DIR" --no-audit --no-fund --no-save --loglevel=error \
    --engine-strict "node-red@$NR_SPEC" >&2 \
    || fail "npm install node-red@$NR_SPEC failed"
  nr_ok || fail "node-red@$NR_SPEC installed, but $NR_HOME is not Node-RED 5"
fi
NR_VERSION="$("$NODE_BIN" -p 'require(process.argv[1]).version' "$NR_HOME/package.json")"

cat > "$CACHE/env.json" <<EOF
{
  "nodeBinary": "$NODE_BIN",
  "nodeVersion": "$NODE_VERSION",
  "nodeRedHome": "$NR_HOME",
  "nodeRedVersion": "$NR_VERSION"
}
EOF
echo "node22: Node.js $NODE_VERSION, Node-RED $NR_VERSION ($CACHE/env.json)"
