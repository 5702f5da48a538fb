#!/usr/bin/env bash
# The main job of the README's Quick start: builds Chorus and the browser demo, starts one node
# (chorusd with deploy/demo.toml) serving the demo chat page, prints its address, shows the
# node's replicated state with chorus-snapshot, and runs until Ctrl-C.
#   scripts/run-demo.sh                    until Ctrl-C
#   DEMO_SECONDS=10 scripts/run-demo.sh    stop by itself
#   DEMO_PORT=8080 scripts/run-demo.sh     another HTTP port (default 8000; 0 = any free port)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh release
bash scripts/install-node-deps.sh client/js
(cd client/js && npm run --silent build >/dev/null)

bin=build/release
out=$(mktemp)
"$bin/broker/node/chorusd" --config deploy/demo.toml --set "http.port=${DEMO_PORT:-8000}" \
  --set "http.static_dir=client/js/demo/dist" --set node.log_level=warn >"$out" &
node_pid=$!
trap 'kill $node_pid 2>/dev/null || true; wait $node_pid 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 200); do
  grep -q '^chorusd ready' "$out" && break
  kill -0 $node_pid 2>/dev/null || { echo "run-demo: chorusd exited (port busy? try DEMO_PORT=0)" >&2; exit 1; }
  sleep 0.05  # waiting for the node's ready line
done
line=$(grep '^chorusd ready' "$out") || { echo "run-demo: chorusd did not start" >&2; exit 1; }
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
http=$(field http)

# A first message, through the server API, so the room has history when the page opens.
curl -fsS -o /dev/null -X POST -H 'X-API-Key: demo-api-key' \
  -d '{"channel":"chat:lobby","data":{"nick":"chorus","text":"Welcome to the Chorus demo room."}}' \
  "http://$http/api/publish" || echo "run-demo: could not publish the welcome message" >&2

echo "$line"
echo
echo "  Demo chat page:   http://$http/            (open it in two browser windows)"
echo "  Server API:       http://$http/api/<method>  (X-API-Key: demo-api-key)"
echo "  Metrics:          http://$http/metrics"
echo "  Native clients:   $(field native)   e.g. $bin/client/cpp/chorus-chat-example --help"
echo
echo "Replicated channel state (chorus-snapshot $(field chp_command) --stats):"
"$bin/chp/chorus-snapshot" "$(field chp_command)" --stats || true
echo
if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"  # the demo's own run time, not a synchronisation
else
  echo "Running; Ctrl-C to stop."
  wait $node_pid
fi
