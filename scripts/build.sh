#!/usr/bin/env bash
# Installs missing packages, configures and builds a preset (default: release).
#   scripts/build.sh [preset]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
bash scripts/install-deps.sh
if [ ! -f "build/${preset}/CMakeCache.txt" ]; then
  cmake --preset "${preset}" >/dev/null
fi
cmake --build "build/${preset}" -j "$(nproc)"
