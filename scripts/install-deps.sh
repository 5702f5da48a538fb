#!/usr/bin/env bash
# Installs the Debian 12 packages Chorus needs to build and test. Idempotent: it installs only
# what is missing, so running it on a ready machine costs a few dpkg queries.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build pkg-config ccache git
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libhiredis-dev
  libraft-dev libuv1-dev libsqlite3-dev
  googletest libgtest-dev libgmock-dev
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  clang clang-format libclang-rt-14-dev
  libboost-dev libboost-system-dev libsimdjson-dev libjwt-dev nlohmann-json3-dev libssl-dev
  curl chromium
  redis-server nats-server libnats-dev
  nginx libnginx-mod-nchan
  haproxy openssl
  python3
  iproute2
)
# libraft-dev and libuv1-dev: the cluster map's Raft group (broker/cluster, docs/cluster.md).
# libsqlite3-dev: the sync scheduler's catalog (broker/scheduler, docs/scheduler.md).
# redis-server, nats-server and libnats-dev (with libhiredis-dev above): broker_bench's peers,
# started as children by the bench and its smoke test (tests/bench/peer_*.h).
# nginx and libnginx-mod-nchan: ws_fanout's peer (Nchan), an nginx child with a config of its
# own (tests/bench/nchan_peer.h); the ws_fanout smoke test fails without them.
# haproxy and openssl: node_haproxy_test checks deploy/haproxy.cfg (`haproxy -c`, and a real
# HAProxy with a self-signed certificate in front of chorusd); it skips when haproxy is missing.
# python3: scripts/check-rules.sh (spec rules traced to tests), run by scripts/test.sh.
# iproute2: `ip netns` and veth pairs for node_cluster_split_test (network splits, issue 12
# test 6; it runs as root and skips, saying why, without root or `ip`).
# Node.js >= 20 runs client/js and the e2e tests; Debian's nodejs (18) only when none is there.
command -v node >/dev/null 2>&1 || PKGS+=(nodejs npm)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# The benchmarks start redis-server, nats-server and nginx as children on ports of their own;
# the packages must not start system services (nginx on port 80...). Without a policy-rc.d
# (Docker images have one), a temporary one refuses every start during the install.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# chorus install-deps: no service starts during the install\nexit 101\n' |
    $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  trap '$SUDO rm -f "$POLICY"' EXIT
fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
