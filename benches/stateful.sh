#!/usr/bin/env bash
# What stateful rules cost: benches/load.sh against the shipped flows in rules/, and
# against the same folder without its stateful rules (files using after, absent,
# threshold or once), alternating, ROUNDS times each. Every request is a distinct Mailjet
# `sent` event stamped with the current time, so each one starts a 48 h `absent` timer,
# counts into a `threshold` window and records a correlation fact.
# Usage: benches/stateful.sh [DURATION_SECONDS]   (default 15; ROUNDS=2)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-15}"
ROUNDS="${ROUNDS:-2}"

stateless=$(mktemp -d)
trap 'rm -rf "$stateless"' EXIT
cp -r rules/. "$stateless/"
removed=$(grep -rlE '^(absent|threshold|once):|^  after:|after: \{' "$stateless" || true)
[ -n "$removed" ] || { echo "no stateful rule found in rules/" >&2; exit 1; }
rm $removed
echo "stateful files left out: $(echo "$removed" | sed "s|$stateless/||" | tr '\n' ' ')"

rps() { NO_BASELINE=1 RULES_FROM="$1" benches/load.sh "$DURATION" | awk '/^hookflow \(/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) { print $i; exit } }'; }
with=(); without=()
for round in $(seq "$ROUNDS"); do
  with+=("$(rps rules)")
  without+=("$(rps "$stateless")")
  echo "round $round: with stateful rules ${with[-1]} req/s, without ${without[-1]} req/s"
done
printf '%s\n' "${with[@]}" "${without[@]}" | awk -v n="$ROUNDS" '
  NR <= n { w += $1 } NR > n { o += $1 }
  END { printf "mean: with %.0f req/s, without %.0f req/s: stateful rules cost %.1f%% of ingest throughput\n", w/n, o/n, 100 * (1 - w/o) }'
