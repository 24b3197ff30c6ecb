#!/usr/bin/env bash
# One million tracked message ids, through the server: the release binary with the shipped
# flows in rules/ takes distinct Mailjet `sent` events (each records a correlation fact and
# starts a 48 h `absent` timer) until the store holds TARGET of them. Then it reports the
# store's size on disk, hookflow's memory, and the rate of `open` events for those ids
# (each looks up and cancels its message's timer among the million) against the rate of
# sends. Usage: benches/million.sh [TARGET]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${1:-1000000}"

command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin hookflow

work=$(mktemp -d)
trap 'kill "$(cat "$work/pid" 2>/dev/null)" 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r rules "$work/rules"
cp -r templates "$work/templates"
printf 'listen: 127.0.0.1:0\nstore: sqlite://data/hookflow.db\n' > "$work/hookflow.yaml"
(cd "$work" && exec "$OLDPWD/target/release/hookflow" serve --config hookflow.yaml > hookflow.out 2>/dev/null) &
echo $! > "$work/pid"
for _ in $(seq 100); do
  addr=$(sed -n 's/.*listening on http:\/\/\(.*\)/\1/p' "$work/hookflow.out" | head -1)
  [ -n "$addr" ] && break
  sleep 0.1
done
[ -n "$addr" ] || { echo "server did not start" >&2; exit 1; }
pid=$(cat "$work/pid")

stat() { curl -s "http://$addr/api/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
rate() { awk '/^Requests\/sec/ {print $2}'; }

# Sends, in rounds of new ids, until TARGET timers are pending.
round=0; sent_rates=()
started=$(date +%s)
while [ "$(stat timers_pending)" -lt "$TARGET" ]; do
  round=$((round + 1))
  sent_rates+=("$(ID_OFFSET=$((round * 100000000)) wrk -t2 -c64 -d20s -s benches/load.lua "http://$addr" | rate)")
done
loaded=$(( $(date +%s) - started ))
pending=$(stat timers_pending)
events=$(stat events)
rss_hwm=$(awk '/VmHWM/ {print int($2/1024)}' "/proc/$pid/status")
rss=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$pid/status")
db=$(du -sm "$work/data" | cut -f1)

# Opens for ids sent in the first round: each finds its timer among the million.
open_rate=$(EVENT=open ID_OFFSET=100000000 wrk -t2 -c64 -d15s -s benches/load.lua "http://$addr" | rate)
cancelled=$(( pending - $(stat timers_pending) ))

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "loaded $events sent events in ${loaded}s (${round} rounds of 20 s; req/s per round: ${sent_rates[*]})"
echo "pending timers (tracked ids): $pending"
echo "store on disk (database + write-ahead log): ${db} MB, $(( db * 1024 * 1024 / pending )) bytes per tracked id"
echo "hookflow RSS: ${rss} MB now, ${rss_hwm} MB peak"
echo "opens for tracked ids: ${open_rate} req/s, ${cancelled} timers cancelled"
