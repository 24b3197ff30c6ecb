#!/usr/bin/env bash
# A two-minute tour: run hookflow on its defaults in a scratch folder with the example
# flows, post Mailjet's sample events, and show what happened. Needs curl.
source "$(dirname "$0")/start-hookflow.sh"
echo "hookflow is at $base (log: $work/log)"

echo; echo "== posting examples/events/batch-v2.json (7 Mailjet events in one request)"
curl -s -H 'Content-Type: application/json' --data @"$root/examples/events/batch-v2.json" "$base/hooks/mailjet"; echo
echo "== posting it again: duplicates are acknowledged, not processed twice"
curl -s -H 'Content-Type: application/json' --data @"$root/examples/events/batch-v2.json" "$base/hooks/mailjet"; echo
echo "== a broken request gets a reason"
curl -s -H 'Content-Type: application/json' --data '{"email": "x@y.z"}' "$base/hooks/mailjet"; echo
sleep 1
echo; echo "== GET /api/stats"; curl -s "$base/api/stats"; echo
echo "== GET /api/suppressions"; curl -s "$base/api/suppressions"; echo
echo "== GET /api/jobs (newest first)"
curl -s "$base/api/jobs?limit=3"; echo
