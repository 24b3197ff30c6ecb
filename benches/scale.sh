#!/usr/bin/env bash
# Scale-out benchmark: the same load against one hookflow on SQLite, then one, two and
# three hookflow instances sharing one PostgreSQL, in one run on this machine. Each
# instance gets its own wrk (the 64 connections split between them, distinct event ids),
# as a load balancer would spread them. 100 generated rules, one event in ten fires a
# `log` action, so delivery runs too. Reports per setup: accepted req/s (summed), the
# worst instance's p99, deliveries per second (jobs succeeded, from the first request
# until the queue is empty), hookflow's CPU per event (all instances), and for PostgreSQL
# the database round trips per event (statements, BEGIN and COMMIT included, counted by
# pg_stat_statements) and PostgreSQL's own CPU per event (its processes, from /proc).
#
# The PostgreSQL is one of the script's own: initdb in a temporary folder, its own port,
# default settings but pg_stat_statements loaded, fsync and synchronous_commit on (as
# `durability: full`). On 2 cores everything — wrk, the instances, PostgreSQL — shares
# the same CPUs: this shows each setup's overhead, not how far it scales on more machines.
#
# Usage: benches/scale.sh [DURATION_SECONDS]   (default 15)
# Environment: SETUPS="sqlite pg1 pg2 pg3" (default all); DURABILITY=normal; CONNECTIONS
# (default 64, split between the instances); POOL (connections per instance, default 4);
# TOP=N prints each PostgreSQL setup's N most frequent statements; PG_OPTIONS adds server
# settings (e.g. "-c commit_delay=1000").
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-15}"
CONNECTIONS="${CONNECTIONS:-64}"
SETUPS="${SETUPS:-sqlite pg1 pg2 pg3}"

command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
cargo build --release --quiet --bin hookflow
BIN="$PWD/target/release/hookflow"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

work=$(mktemp -d)
chmod 755 "$work"
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
cleanup() {
  kill $(cat "$work"/*.pid 2>/dev/null) 2>/dev/null || true
  [ -d "$work/pg" ] && as_pg "$PGBIN/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The script's PostgreSQL.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/pg"
[ "$(id -u)" = 0 ] && chown postgres: "$work/pg"
as_pg "$PGBIN/initdb" -D "$work/pg" -A trust -U postgres --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$work/pg" -l "$work/pg/log" -w start \
  -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c shared_preload_libraries=pg_stat_statements -c max_connections=200 ${PG_OPTIONS:-}" >/dev/null
PG="postgres://postgres@127.0.0.1:$port/postgres"
sql() { psql -qAtX "$PG" -c "$1"; }
sql "CREATE EXTENSION pg_stat_statements" >/dev/null

mkdir -p "$work/rules"
for i in $(seq 0 99); do
  types=(sent open click bounce blocked spam unsub)
  cat > "$work/rules/r$i.yaml" <<RULE
on: ${types[$((i % 7))]}
when:
  mj_campaign_id: $((i % 10))
  email: { ends_with: "@example.com" }
actions:
  - log: { message: "{{email}} in campaign {{mj_campaign_id}}" }
RULE
done

# Starts instance $1 of setup $2 (store URL $3) and appends its address to `addrs`. Not
# called in a command substitution: the substitution would wait for the server, which
# inherits its pipe.
start() {
  local n="$1" setup="$2" store="$3" dir="$work/$2-$1"
  mkdir -p "$dir"
  cat > "$dir/hookflow.yaml" <<CFG
listen: 127.0.0.1:0
rules: ../rules
store: $store
durability: ${DURABILITY:-full}
CFG
  case "$store" in postgres*) printf 'postgres: { instance: i%s, schema: %s, pool: %s }\n' "$n" "$setup" "${POOL:-4}" >> "$dir/hookflow.yaml" ;; esac
  (cd "$dir" && exec "$BIN" serve --config hookflow.yaml < /dev/null > out 2> err) &
  echo $! > "$work/$setup-$n.pid"
  for _ in $(seq 200); do
    addr=$(sed -n 's/.*listening on http:\/\/\(.*\)/\1/p' "$dir/out" 2>/dev/null | head -1)
    [ -n "$addr" ] && { addrs+=("$addr"); return; }
    sleep 0.1
  done
  echo "instance $n of $setup did not start:" >&2; cat "$dir/err" >&2; exit 1
}

# CPU ticks used so far by the script's PostgreSQL: the postmaster's children (backends,
# WAL writer, checkpointer), read while the instances still hold their connections.
pg_ticks() {
  local pm t=0
  pm=$(head -1 "$work/pg/postmaster.pid")
  for s in /proc/[0-9]*/stat; do
    read -r -a f < "$s" 2>/dev/null || continue
    [ "${f[3]}" = "$pm" ] && t=$((t + f[13] + f[14]))
  done
  echo "$t"
}

# Milliseconds of a wrk latency such as 1.23ms, 850.00us or 1.02s.
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) printf "%.2f", v / 1000; else if (v ~ /ms$/) printf "%.2f", v + 0; else printf "%.2f", v * 1000 }'; }

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}'); wrk ${CONNECTIONS} connections in all, ${DURATION}s; durability ${DURABILITY:-full}"
printf "%-22s %10s %9s %13s %14s %14s %14s\n" setup "req/s" "p99 ms" "delivered/s" "CPU us/event" "PG CPU us/ev" "round trips"
for setup in $SETUPS; do
  case "$setup" in
    sqlite) n=1 store="sqlite://data/hookflow.db" ;;
    pg[1-9]) n="${setup#pg}" store="$PG" ;;
    *) echo "unknown setup $setup" >&2; exit 1 ;;
  esac
  addrs=()
  for i in $(seq 0 $((n - 1))); do start "$i" "$setup" "$store"; done
  pg_before=0
  if [ "$store" = "$PG" ]; then sql "SELECT pg_stat_statements_reset()" >/dev/null; pg_before=$(pg_ticks); fi
  started=$(date +%s.%N)
  loads=()
  for i in $(seq 0 $((n - 1))); do
    ID_OFFSET=$((i * 1000000000)) wrk -t1 -c$((CONNECTIONS / n)) -d"${DURATION}s" --latency \
      -s benches/load.lua "http://${addrs[$i]}" > "$work/$setup-$i.wrk" &
    loads+=($!)
  done
  wait "${loads[@]}"
  # Delivery: until no job is pending or running.
  for _ in $(seq 600); do
    left=$(curl -s "http://${addrs[0]}/api/stats" | python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"]; print(j.get("pending",0)+j.get("running",0))')
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  drained=$(date +%s.%N)
  stats=$(curl -s "http://${addrs[0]}/api/stats")
  events=$(echo "$stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')
  done_jobs=$(echo "$stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["jobs"].get("succeeded",0))')
  rps=$(cat "$work"/"$setup"-*.wrk | awk '/^Requests\/sec/ {s += $2} END {printf "%.0f", s}')
  p99=0
  for f in "$work"/"$setup"-*.wrk; do
    p=$(to_ms "$(awk '$1 == "99%" {print $2}' "$f")")
    p99=$(awk -v a="$p99" -v b="$p" 'BEGIN { print (b > a) ? b : a }')
  done
  ticks=0
  for i in $(seq 0 $((n - 1))); do
    t=$(awk '{print $14 + $15}' "/proc/$(cat "$work/$setup-$i.pid")/stat")
    ticks=$((ticks + t))
  done
  cpu=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$events" 'BEGIN { printf "%.0f", 1e6 * t / hz / n }')
  delivered=$(awk -v j="$done_jobs" -v a="$started" -v b="$drained" 'BEGIN { printf "%.0f", j / (b - a) }')
  trips=- pg_cpu=-
  if [ "$store" = "$PG" ]; then
    pg_cpu=$(awk -v t="$(( $(pg_ticks) - pg_before ))" -v hz="$(getconf CLK_TCK)" -v n="$events" 'BEGIN { printf "%.0f", 1e6 * t / hz / n }')
    calls=$(sql "SELECT sum(calls) FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%'")
    trips=$(awk -v c="$calls" -v n="$events" 'BEGIN { printf "%.2f", c / n }')
    if [ -n "${TOP:-}" ]; then
      sql "SELECT calls, left(regexp_replace(query, '\s+', ' ', 'g'), 90) FROM pg_stat_statements
           WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY calls DESC LIMIT $TOP" | sed 's/^/    /' >&2
    fi
  fi
  printf "%-22s %10s %9s %13s %14s %14s %14s\n" "$setup ($n instance$([ "$n" = 1 ] || echo s))" "$rps" "$p99" "$delivered" "$cpu" "$pg_cpu" "$trips"
  echo "  stored $events events, $done_jobs jobs delivered" >&2
  for i in $(seq 0 $((n - 1))); do kill "$(cat "$work/$setup-$i.pid")"; rm -f "$work/$setup-$i.pid"; done
  sleep 1
done
