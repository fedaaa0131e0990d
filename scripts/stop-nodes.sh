#!/usr/bin/env bash
# Stops the nodes started by scripts/start-nodes.sh: SIGTERM (a graceful
# shutdown that tells peers), then SIGKILL for any still up after 10 s.
set -euo pipefail
cd "$(dirname "$0")/.."
run="${COMPAKTOR_RUN:-run}"

compgen -G "$run/node-*/pid" >/dev/null || { echo "no nodes in $run"; exit 0; }
for pidfile in "$run"/node-*/pid; do
    kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
done
for pidfile in "$run"/node-*/pid; do
    node="$(basename "$(dirname "$pidfile")")"
    pid="$(cat "$pidfile")"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        echo "$node: killed (no graceful exit within 10 s)"
    else
        echo "$node: stopped"
    fi
    rm -f "$pidfile"
done
