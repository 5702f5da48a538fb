#!/usr/bin/env bash
# The main job of the README's Quick start: builds Chorus and runs the CHP demo: a standalone
# CHP server writing a small moving world (presence with TTLs in "lobby", chat lines in "chat"),
# inspected with chorus-snapshot, then followed live until Ctrl-C.
#   scripts/run-demo.sh                  until Ctrl-C
#   DEMO_SECONDS=10 scripts/run-demo.sh  stop by itself
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release
bin=build/release/chp
out=$(mktemp)
"$bin/chorus-chp-server" --demo-ms 300 --log-level warn >"$out" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 100); do
  grep -q 'command=' "$out" && break
  sleep 0.05  # waiting for the server's banner line
done
endpoint=$(sed -n 's/.*command=\([^ ]*\).*/\1/p' "$out")
[ -n "$endpoint" ] || { echo "run-demo: the server did not start" >&2; exit 1; }
echo "CHP server at $endpoint (publisher: $(sed -n 's/.*publisher=\([^ ]*\).*/\1/p' "$out"))"
echo
"$bin/chorus-snapshot" "$endpoint" --stats
echo
"$bin/chorus-snapshot" "$endpoint"
echo
echo "Following changes (Ctrl-C to stop):"
follow=()
[ -n "${DEMO_SECONDS:-}" ] && follow=(--follow-for "$((DEMO_SECONDS * 1000))")
"$bin/chorus-snapshot" "$endpoint" --follow "${follow[@]}" | sed -n '/^seq=/,$p'
