#!/usr/bin/env bash
# Installs the npm dependencies of a package folder (client/js, tests/e2e) exactly as pinned in
# its package-lock.json (`npm ci`), unless node_modules was installed after the lock last changed.
# Needs Node.js >= 20 and npm (scripts/install-deps.sh installs Node.js when it is missing).
#   scripts/install-node-deps.sh <folder>
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$1"
stamp="$dir/node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ "$stamp" -nt "$dir/package-lock.json" ]; then
  exit 0
fi
echo "install-node-deps: npm ci in $dir"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
