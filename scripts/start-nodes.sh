#!/usr/bin/env bash
# Starts N compaktor nodes on 127.0.0.1, each its own process, with
# certificates from one freshly generated CA.
#
#   scripts/start-nodes.sh [N=3] [BASE_PORT=7101]
#
# Everything goes into the run folder ($COMPAKTOR_RUN, default ./run):
#   run/certs/            ca.pem, node-<i>.pem, node-<i>.key
#   run/node-<i>/         node.log (stderr), stdout, pid, status.json
# Stop them with scripts/stop-nodes.sh; see them with scripts/status.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

count="${1:-3}"
base="${2:-7101}"
run="${COMPAKTOR_RUN:-run}"

if compgen -G "$run/node-*/pid" >/dev/null; then
    for pidfile in "$run"/node-*/pid; do
        if kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            echo "nodes from $run are still running; stop them first: scripts/stop-nodes.sh" >&2
            exit 1
        fi
    done
fi

cargo build --release --quiet --bin compaktor-node
bin="target/release/compaktor-node"

rm -rf "$run"
mkdir -p "$run"
ids=$(seq -s, -f "node-%g" 1 "$count")
"$bin" certs --out "$run/certs" --ids "$ids" >/dev/null

for i in $(seq 1 "$count"); do
    dir="$run/node-$i"
    mkdir -p "$dir"
    nohup "$bin" run --certs "$run/certs" --id "node-$i" --bind "127.0.0.1:$((base + i - 1))" \
        --status "$dir/status.json" >"$dir/stdout" 2>"$dir/node.log" </dev/null &
    echo $! >"$dir/pid"
done

# Each node prints one `ready` line once it listens.
for i in $(seq 1 "$count"); do
    dir="$run/node-$i"
    for _ in $(seq 1 100); do
        grep -q '^ready ' "$dir/stdout" 2>/dev/null && break
        if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
            echo "node-$i exited; see $dir/node.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    grep '^ready ' "$dir/stdout" >/dev/null || { echo "node-$i not ready after 10 s; see $dir/node.log" >&2; exit 1; }
    echo "node-$i: $(head -n1 "$dir/stdout" | cut -d' ' -f2-)"
done
echo "run folder: $run"
