#!/usr/bin/env bash
# Installs the npm dependencies of a package folder (client/js, tests/e2e) exactly as pinned in
# its package-lock.json, unless node_modules is already in step with it. Needs Node.js >= 20 and
# npm (scripts/install-deps.sh installs them when missing).
#   scripts/install-node-deps.sh <folder>
set -euo pipefail
cd "$(dirname "$0")/.."
dir="$1"
if [ -f "$dir/node_modules/.package-lock.json" ] && cmp -s <(sed -n '/"packages"/,$p' "$dir/package-lock.json" | grep -c '"version"') <(sed -n '/"packages"/,$p' "$dir/node_modules/.package-lock.json" | grep -c '"version"'); then
  exit 0
fi
echo "install-node-deps: npm ci in $dir"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
