#!/usr/bin/env bash
# The main job of the README's Quick start: builds Chorus and the browser demo, starts a local
# cluster of DEMO_NODES nodes (chorusd with deploy/demo.toml, a 3-voter meta group on loopback)
# serving the demo chat page, with the sync scheduler on over a temporary source tree and
# catalog dir, and the demo's sync endpoint (client/js/demo/sync_server.mjs: the page's way to
# submit syncs without the API key); prints the addresses, shows node 1's replicated state with
# chorus-snapshot, runs until Ctrl-C.
#   scripts/run-demo.sh                    until Ctrl-C
#   DEMO_SECONDS=10 scripts/run-demo.sh    stop by itself
#   DEMO_PORT=8080 scripts/run-demo.sh     node 1's HTTP port (default 8000, node i: +i-1; 0 = free ports)
#   DEMO_NODES=1 scripts/run-demo.sh       one node alone (default 3)
#   DEMO_NO_BUILD=1 scripts/run-demo.sh    use build/release as it is (chorusd must be built)
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${DEMO_NO_BUILD:-}" ] || bash scripts/build.sh release
bash scripts/install-node-deps.sh client/js
(cd client/js && npm run --silent build >/dev/null)

bin=build/release
out=$(mktemp)
work=$(mktemp -d)  # sources/, catalogs/, static/ (the built page plus demo-config.json)
node_pids=
sync_pid=
cleanup() {
  for pid in $sync_pid $node_pids; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$out" "$out".* "$work"
}
trap cleanup EXIT
mkdir -p "$work/catalogs" "$work/static"
cp client/js/demo/dist/index.html "$work/static/"
# Demo sources for the sync panel: sparse files (no disk used; every byte is still read and
# hashed), sized so that a sync takes a few seconds and the progress bar visibly moves.
node --input-type=module -e "
  import { makeDemoSources } from './client/js/demo/sync_server.mjs';
  makeDemoSources('$work/sources', {
    documents: { files: 300, bytes: 64 << 10 },
    photos: { files: 1200, bytes: 1 << 20 },
    music: { files: 3000, bytes: 1 << 20 },
  });"
nodes=${DEMO_NODES:-3}
case "$nodes" in 1 | 3 | 5) ;; *) echo "run-demo: DEMO_NODES must be 1, 3 or 5" >&2; exit 1 ;; esac
base_port=${DEMO_PORT:-8000}
# Raft and cluster ports are named up front: every node's voters list and seeds hold them.
free_ports() { node -e '
  const net = require("net");
  const n = Number(process.argv[1]);
  const servers = Array.from({ length: n }, () => net.createServer());
  let bound = 0;
  for (const s of servers) s.listen(0, "127.0.0.1", () => {
    if (++bound < n) return;
    console.log(servers.map((x) => x.address().port).join(" "));
    for (const x of servers) x.close();
  });' "$1"; }
read -r -a raft_ports <<<"$(free_ports "$nodes")"
read -r -a cluster_ports <<<"$(free_ports "$nodes")"
voters=
for i in $(seq 1 "$nodes"); do
  voters+="${voters:+,}$i@127.0.0.1:${raft_ports[$((i - 1))]}"
done
for i in $(seq 1 "$nodes"); do
  port=$base_port
  [ "$base_port" = 0 ] || port=$((base_port + i - 1))
  cluster_args=()
  if [ "$nodes" -gt 1 ]; then
    seeds=
    for j in $(seq 1 "$nodes"); do
      [ "$j" = "$i" ] || seeds+="${seeds:+,}tcp://127.0.0.1:${cluster_ports[$((j - 1))]}"
    done
    cluster_args=(--set "cluster.member_id=$i" --set "cluster.voters=$voters"
      --set "cluster.endpoint=tcp://127.0.0.1:${cluster_ports[$((i - 1))]}"
      --set "cluster.seeds=$seeds")
  fi
  # Each node its own id: the id names its CHP server, and other nodes tell servers apart by it.
  "$bin/broker/node/chorusd" --config deploy/demo.toml --set "node.id=demo-$i" --set "http.port=$port" \
    --set "http.static_dir=$work/static" --set node.log_level=warn \
    --set scheduler.enabled=true --set "scheduler.source_roots=$work/sources" \
    --set "scheduler.catalog_dir=$work/catalogs" "${cluster_args[@]}" >"$out.$i" &
  node_pids+=" $!"
done
for i in $(seq 1 "$nodes"); do
  for _ in $(seq 1 200); do
    grep -q '^chorusd ready' "$out.$i" && break
    kill -0 $node_pids 2>/dev/null || { echo "run-demo: a chorusd exited (port busy? try DEMO_PORT=0)" >&2; exit 1; }
    sleep 0.05  # waiting for the node's ready line
  done
  grep -q '^chorusd ready' "$out.$i" || { echo "run-demo: chorusd $i did not start" >&2; exit 1; }
done
line=$(grep '^chorusd ready' "$out.1")
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$line"; }
http=$(field http)

# The sync endpoint (holds the API key; takes the user from the page's demo token), and the
# page's pointer to it.
sync_out="$work/sync-server.out"
DEMO_API_KEY=demo-api-key node client/js/demo/sync_server.mjs --api "http://$http" \
  --origin "http://$http" --sources "$work/sources" --secret chorus-demo-secret >"$sync_out" &
sync_pid=$!
for _ in $(seq 1 200); do
  grep -q '^sync-server ready' "$sync_out" && break
  kill -0 $sync_pid 2>/dev/null || { echo "run-demo: the sync endpoint exited" >&2; exit 1; }
  sleep 0.05  # waiting for the endpoint's ready line
done
sync_url=$(sed -n 's/^sync-server ready url=\(.*\)$/\1/p' "$sync_out")
[ -n "$sync_url" ] || { echo "run-demo: the sync endpoint did not start" >&2; exit 1; }
printf '{"syncEndpoint": "%s"}\n' "$sync_url" >"$work/static/demo-config.json"

# The cluster map places every partition once the voters elected a leader and heard every
# node (a few seconds): wait for it, so the first publish goes to a placed primary.
for _ in $(seq 1 200); do
  curl -fsS -X POST -H 'X-API-Key: demo-api-key' -d '{}' "http://$http/api/cluster" 2>/dev/null |
    grep -q '"unassigned":0' && break
  sleep 0.1  # waiting for the map
done
# A first message, through the server API, so the room has history when the page opens.
curl -fsS -o /dev/null -X POST -H 'X-API-Key: demo-api-key' \
  -d '{"channel":"chat:lobby","data":{"nick":"chorus","text":"Welcome to the Chorus demo room."}}' \
  "http://$http/api/publish" || echo "run-demo: could not publish the welcome message" >&2

for i in $(seq 1 "$nodes"); do grep '^chorusd ready' "$out.$i"; done
echo
echo "  Demo chat page:   http://$http/            (open it in two browser windows)"
for i in $(seq 2 "$nodes"); do
  echo "    node $i:         http://$(sed -n 's/.* http=\([^ ]*\).*/\1/p' "$out.$i")/   (same rooms, another node)"
done
[ "$nodes" = 1 ] || echo "  Cluster:          $nodes nodes; publications and presence are cluster-wide, R=2 with failover (docs/cluster.md, Status)"
echo "  Sync panel:       on the same page; sources in $work/sources, endpoint $sync_url"
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
  wait $node_pids
fi
