#!/usr/bin/env bash
# The JS side of the test command: client/js unit tests and demo build, then the e2e suite
# (real SDK, raw WebSocket, headless Chromium) against a built chorusd. Exits non-zero on any
# failure; nothing is skipped (a missing chorusd, Chromium or Node >= 20 is a failure).
#   tests/e2e/run.sh                       # chorusd from build/release
#   CHORUSD_BIN=/path/to/chorusd tests/e2e/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || {
  echo "tests/e2e: need Node.js >= 20 (have $(node --version 2>/dev/null || echo none))" >&2
  exit 1
}
export CHORUSD_BIN="${CHORUSD_BIN:-$root/build/release/broker/node/chorusd}"
[ -x "$CHORUSD_BIN" ] || { echo "tests/e2e: no chorusd at $CHORUSD_BIN" >&2; exit 1; }
[ -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ] || {
  echo "tests/e2e: no Chromium: apt-get install -y chromium" >&2
  exit 1
}
(cd client/js && npm ci --no-audit --no-fund --loglevel=error && npm test && npm run build)
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error && npm test)
