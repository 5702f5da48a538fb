#!/usr/bin/env bash
# Checks every tracked C++ file against the pinned .clang-format (clang-format 14, Debian 12).
# Exits non-zero and lists the files that differ.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cc' '*.h' 2>/dev/null || find chp broker client tests -name '*.cc' -o -name '*.h')
bad=$(clang-format --dry-run $files 2>&1 | grep 'warning:' | cut -d: -f1 | sort -u || true)
if [ -n "$bad" ]; then
  echo "check-format: these files differ from .clang-format (run clang-format -i):" >&2
  echo "$bad" >&2
  exit 1
fi
echo "check-format: $(echo "$files" | wc -w) files formatted"
