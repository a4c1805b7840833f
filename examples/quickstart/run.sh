#!/usr/bin/env bash
# Runs the quickstart: two echo backends (v1 on :3001, v2 on :3002) and Portcullis on
# 127.0.0.1:8080 with the config in this directory. Ctrl-C stops all three.
#   curl -H 'Host: shop.example.com' http://127.0.0.1:8080/                        # -> v1
#   curl -H 'Host: shop.example.com' -H 'qa: canary-test' http://127.0.0.1:8080/   # -> v2
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p portcullis -p testkit --bin portcullis --bin echo-server
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
target/release/echo-server --listen 127.0.0.1:3001 --pod shop-v1 --namespace shop & pids+=($!)
target/release/echo-server --listen 127.0.0.1:3002 --pod shop-v2 --namespace shop & pids+=($!)
target/release/portcullis run --config examples/quickstart --admin 127.0.0.1:9901 "$@" & pids+=($!)
wait "${pids[2]}"
