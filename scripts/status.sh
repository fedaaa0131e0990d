#!/usr/bin/env bash
# Shows the nodes started by scripts/start-nodes.sh: process state, address,
# incarnation, health and connected peers, from each node's status.json
# (rewritten by the node every second).
set -euo pipefail
cd "$(dirname "$0")/.."
run="${COMPAKTOR_RUN:-run}"
bin="target/release/compaktor-node"
[ -x "$bin" ] || cargo build --release --quiet --bin compaktor-node
exec "$bin" status --run "$run"
