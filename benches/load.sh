#!/usr/bin/env bash
# Load benchmark: wrk posting distinct Mailjet events at 64 connections to the release
# binary with 100 rules loaded, beside two baselines run in the same script: bare axum
# that parses the JSON and answers 200 without storing (the HTTP limit), and the durable
# baseline (benches/durable_baseline.rs: one SQLite writer thread, group commit,
# synchronous=FULL, append only, 200 after commit: the limit of this design). Reports
# each server's req/s, p50/p99 and CPU per request (user + system from /proc, all
# threads, over the run), and hookflow's peak RSS and ratios to the durable baseline.
# Usage: benches/load.sh [DURATION_SECONDS]   (default 15)
# Environment: DURABILITY=normal (default full); CAMPAIGN_OFFSET=1000 makes no rule match
# (ingest alone, no jobs); PERF=FILE records a perf profile of hookflow during its run;
# RULES_FROM=DIR loads that rules folder instead of the 100 generated rules;
# NO_BASELINE=1 skips both baseline servers; HOOKFLOW_BIN=PATH runs that hookflow binary
# instead of building this checkout's (benches/compare.sh compares builds so).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-15}"
CONNECTIONS=64
THREADS=2

command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
if [ -z "${HOOKFLOW_BIN:-}" ]; then
  cargo build --release --quiet --bin hookflow
  HOOKFLOW_BIN="$PWD/target/release/hookflow"
fi
[ -n "${NO_BASELINE:-}" ] || cargo build --release --quiet --example baseline-server --example durable-baseline

work=$(mktemp -d)
# Servers start inside $(...), so they are not this shell's jobs: their pids go to files.
trap 'kill $(cat "$work"/*.pid 2>/dev/null) $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/rules"
if [ -n "${RULES_FROM:-}" ]; then
  # A given rules folder instead (e.g. RULES_FROM=rules, the shipped flows).
  cp -r "$RULES_FROM"/. "$work/rules/"
  [ -d templates ] && cp -r templates "$work/templates"
fi
# 100 rules over the seven Mailjet types; on `sent`, the ten for campaigns 0-9 match the
# events whose campaign is 0-9 (one in ten), with a `log` action.
[ -n "${RULES_FROM:-}" ] || for i in $(seq 0 99); do
  types=(sent open click bounce blocked spam unsub)
  cat > "$work/rules/r$i.yaml" <<RULE
on: ${types[$((i % 7))]}
when:
  mj_campaign_id: $((i % 10 + ${CAMPAIGN_OFFSET:-0}))
  email: { ends_with: "@example.com" }
actions:
  - log: { message: "{{email}} in campaign {{mj_campaign_id}}" }
RULE
done
cat > "$work/hookflow.yaml" <<CFG
listen: 127.0.0.1:0
store: sqlite://data/hookflow.db
durability: ${DURABILITY:-full}
CFG

# Starts "$@" and prints the address from its "listening on http://ADDR" line; the pid
# goes to "$log.pid".
start() {
  local log="$1"; shift
  "$@" > "$log" 2>/dev/null &
  echo $! > "$log.pid"
  for _ in $(seq 100); do
    addr=$(sed -n 's/.*listening on http:\/\/\(.*\)/\1/p' "$log" | head -1)
    [ -n "$addr" ] && { echo "$addr"; return; }
    sleep 0.1
  done
  echo "server did not start" >&2; exit 1
}

# CPU (user + system ticks, all threads) a process has used so far.
ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Microseconds of CPU per request: ticks spent over requests answered.
per_request() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="$2" 'BEGIN { if (n > 0) printf "%.1f", 1e6 * t / hz / n; else print "n/a" }'; }

# Runs wrk against $1 (pid $3), output in $2: "RPS P50 P99 NON2XX CPU_US_PER_REQUEST".
run_wrk() {
  local before after
  before=$(ticks_of "$3")
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s benches/load.lua "http://$1" > "$2"
  after=$(ticks_of "$3")
  local rps p50 p99 errors requests
  rps=$(awk '/^Requests\/sec/ {print $2}' "$2")
  p50=$(awk '$1 == "50%" {print $2}' "$2")
  p99=$(awk '$1 == "99%" {print $2}' "$2")
  errors=$(awk '/Non-2xx or 3xx responses/ {print $5}' "$2")
  requests=$(awk '/requests in/ {print $1}' "$2")
  echo "$rps $p50 $p99 ${errors:-0} $(per_request $((after - before)) "${requests:-0}")"
}

if [ -z "${NO_BASELINE:-}" ]; then
  base_addr=$(start "$work/baseline.out" target/release/examples/baseline-server 127.0.0.1:0)
  read -r base_rps base_p50 base_p99 base_err base_cpu < <(run_wrk "$base_addr" "$work/baseline.wrk" "$(cat "$work/baseline.out.pid")")
  kill "$(cat "$work/baseline.out.pid")" 2>/dev/null || true
  dur_addr=$(start "$work/durable.out" target/release/examples/durable-baseline 127.0.0.1:0 "$work/durable.db")
  read -r dur_rps dur_p50 dur_p99 dur_err dur_cpu < <(run_wrk "$dur_addr" "$work/durable.wrk" "$(cat "$work/durable.out.pid")")
  kill "$(cat "$work/durable.out.pid")" 2>/dev/null || true
else
  base_rps=0 base_p50=- base_p99=- base_err=- base_cpu=-
  dur_rps=0 dur_p50=- dur_p99=- dur_err=- dur_cpu=-
fi

hf_addr=$(cd "$work" && start "$work/hookflow.out" "$HOOKFLOW_BIN" serve --config hookflow.yaml)
hf_pid=$(cat "$work/hookflow.out.pid")
if [ -n "${PERF:-}" ]; then perf record -F 999 ${PERF_ARGS:--g} -p "$hf_pid" -o "${PERF}" -- sleep "$DURATION" >/dev/null 2>&1 & fi
read -r hf_rps hf_p50 hf_p99 hf_err hf_cpu < <(run_wrk "$hf_addr" "$work/hookflow.wrk" "$hf_pid")
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$hf_pid/status")
stored=$(curl -s "http://$hf_addr/api/stats")
# CPU hookflow spent (user + system, all threads) per stored event: steadier than req/s
# on a shared machine, and what a change to the code costs.
ticks=$(awk '{print $14 + $15}' "/proc/$hf_pid/stat")
# The store's writer thread alone: ingest's one serial step, what bounds throughput.
writer_ticks=$(for t in /proc/"$hf_pid"/task/*; do
  if [ "$(cat "$t/comm")" = hookflow-store ]; then awk '{print $14 + $15}' "$t/stat"; fi
done | awk '{s += $1} END {print s + 0}')
events=$(echo "$stored" | sed -n 's/.*"events":\([0-9]*\).*/\1/p')
per_event() { awk -v t="$1" -v hz="$(getconf CLK_TCK)" -v n="${events:-0}" 'BEGIN { if (n > 0) printf "%.1f", 1e6 * t / hz / n; else print "n/a" }'; }
cpu_us=$(per_event "$ticks")
writer_us=$(per_event "$writer_ticks")
per_commit=$(curl -s "http://$hf_addr/metrics" | awk '/^hookflow_commit_events_sum/ {s=$2} /^hookflow_commit_events_count/ {c=$2} END {if (c) printf "%.1f", s/c}')

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f%%", 100 * a / b; else print "n/a" }'; }
times() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0) printf "%.2f×", a / b; else print "n/a" }'; }
echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; durability ${DURABILITY:-full}"
printf "%-36s %10s %9s %9s %8s %10s\n" "server" "req/s" "p50" "p99" "non-2xx" "CPU/req"
printf "%-36s %10s %9s %9s %8s %10s\n" "bare axum (parse, 200)" "$base_rps" "$base_p50" "$base_p99" "$base_err" "${base_cpu}us"
printf "%-36s %10s %9s %9s %8s %10s\n" "durable baseline (SQLite FULL)" "$dur_rps" "$dur_p50" "$dur_p99" "$dur_err" "${dur_cpu}us"
label="${RULES_FROM:+rules from $RULES_FROM}"
printf "%-36s %10s %9s %9s %8s %10s\n" "hookflow (${label:-100 rules}, SQLite)" "$hf_rps" "$hf_p50" "$hf_p99" "$hf_err" "${hf_cpu}us"
echo "hookflow / bare: $(ratio "$hf_rps" "$base_rps") of req/s; hookflow / durable baseline: $(ratio "$hf_rps" "$dur_rps") of req/s, $(times "$hf_cpu" "$dur_cpu") its CPU per request; peak RSS $((rss_kb / 1024)) MB"
echo "store after the run: $stored; events per group commit: $per_commit"
echo "hookflow CPU per stored event: $cpu_us us (the store's writer thread: $writer_us us)"
