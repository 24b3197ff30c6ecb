#!/usr/bin/env bash
# Two or more builds of hookflow under the same load, in one run: benches/load.sh against
# each binary in turn, alternating, ROUNDS times, once with the 100 generated rules and
# once with the shipped flows in rules/ (stateful ones included). Alternating spreads the
# shared machine's drift over every build alike. Prints each round and the means, and each
# build's mean as a ratio of the first build's: req/s, and hookflow's CPU per event
# (steadier on a shared machine). DURABILITY=normal takes fsync out of the comparison.
# Usage: BINS="before=/path/to/old after=target/release/hookflow" benches/compare.sh [DURATION]
#        (default 10 s per run; ROUNDS=3; SCENARIOS="generated shipped")
# A binary built from another commit: git worktree add /tmp/old REV &&
#   cargo build --release --manifest-path /tmp/old/Cargo.toml --bin hookflow
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
ROUNDS="${ROUNDS:-3}"
: "${BINS:?set BINS=\"name=path name=path ...\"}"
read -ra builds <<< "$BINS"
for b in "${builds[@]}"; do
  [ -x "${b#*=}" ] || { echo "not an executable: ${b#*=}" >&2; exit 1; }
done

# req/s, p99 and CPU µs per event of one run: "RPS P99 CPU".
run() {
  local bin="$1" rules="$2"
  HOOKFLOW_BIN="$bin" NO_BASELINE=1 RULES_FROM="$rules" benches/load.sh "$DURATION" |
    awk '/^hookflow \(/ { n = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+(ms|us|s)?$/) v[++n] = $i }
         /^hookflow CPU per stored event/ { cpu = $(NF - 1) }
         END { print v[1], v[3], cpu }'
}

echo "machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); ${DURATION}s per run, $ROUNDS rounds"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
for scenario in ${SCENARIOS:-generated shipped}; do
  case "$scenario" in
    generated) rules="" ;;
    shipped) rules=rules ;;
    *) echo "unknown scenario $scenario" >&2; exit 1 ;;
  esac
  for round in $(seq "$ROUNDS"); do
    for b in "${builds[@]}"; do
      read -r rps p99 cpu < <(run "${b#*=}" "$rules")
      echo "$scenario round $round: ${b%%=*} $rps req/s, p99 $p99, $cpu us CPU per event"
      echo "$scenario ${b%%=*} $rps $cpu" >> "$results"
    done
  done
done
echo "means:"
awk -v order="$(for b in "${builds[@]}"; do printf '%s ' "${b%%=*}"; done)" '
  { s[$1 " " $2] += $3; c[$1 " " $2] += $4; n[$1 " " $2]++; if (!($1 in seen)) { seen[$1] = 1; sc[++k] = $1 } }
  END {
    m = split(order, names, " ")
    for (i = 1; i <= k; i++) {
      first = s[sc[i] " " names[1]] / n[sc[i] " " names[1]]
      firstc = c[sc[i] " " names[1]] / n[sc[i] " " names[1]]
      for (j = 1; j <= m; j++) {
        key = sc[i] " " names[j]; mean = s[key] / n[key]; cpu = c[key] / n[key]
        printf "  %-10s %-10s %9.0f req/s %6.1f%% of %s   %6.1f us CPU/event %6.1f%% of %s\n", sc[i], names[j], mean, 100 * mean / first, names[1], cpu, 100 * cpu / firstc, names[1]
      }
    }
  }' "$results"
