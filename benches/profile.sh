#!/usr/bin/env bash
# Where hookflow's CPU goes under load: the shipped flows (rules/), durability normal, a
# wrk load of distinct Mailjet `sent` events, `perf record -g` on the server for 8 s.
# Needs a build with frame pointers, else release stacks are cut short:
#   RUSTFLAGS="-C force-frame-pointers=yes" CARGO_TARGET_DIR=/tmp/fp-target cargo build --release --bin hookflow
# Usage: benches/profile.sh   (HOOKFLOW_BIN defaults to /tmp/fp-target/release/hookflow)
# Writes /tmp/perf.data; prints req/s, then CPU by thread and the store thread's own frames.
set -euo pipefail
BIN="${HOOKFLOW_BIN:-/tmp/fp-target/release/hookflow}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
w=$(mktemp -d); trap 'rm -rf "$w"' EXIT
cp -r "$ROOT/rules" "$w"/; [ -d "$ROOT/templates" ] && cp -r "$ROOT/templates" "$w"/
printf 'listen: 127.0.0.1:0\nstore: sqlite://data/hookflow.db\ndurability: normal\n' > "$w/hookflow.yaml"
cd "$w"; "$BIN" serve --config hookflow.yaml > out 2> err < /dev/null &
pid=$!
for i in $(seq 100); do addr=$(sed -n 's/.*listening on http:\/\/\(.*\)/\1/p' out | head -1); [ -n "$addr" ] && break; sleep 0.1; done
(wrk -t2 -c64 -d14s -s "$ROOT/benches/load.lua" "http://$addr" > wrk.out) &
sleep 3
perf record -F 999 -g -p $pid -o /tmp/perf.data -- sleep 8 2> /dev/null
wait %2 2>/dev/null || true
grep Requests wrk.out
kill $pid
perf report -i /tmp/perf.data --no-children --sort comm --stdio -g none 2>/dev/null | grep "%" | head -8
perf report -i /tmp/perf.data --comm hookflow-store --children --sort sym --stdio -g none 2>/dev/null | grep "hookflow::" | head -12
