#!/usr/bin/env bash
# Rehearse the 48-hour reminder (rules/marketing/not-opened-reminder.yaml) in a minute:
# hookflow runs the example flows on a manual clock, takes two `sent` events, sees one of
# them opened, and is moved 48 hours forward. Only the unopened message gets a reminder,
# written to the outbox folder. Needs curl.
start=2027-01-15T08:00:00Z
t0=1800000000   # the same instant, as Mailjet writes it
source "$(dirname "$0")/start-hookflow.sh" --manual-clock "$start"
post() { curl -s -H 'Content-Type: application/json' --data "$1" "$base/hooks/mailjet"; echo; }
move() { echo "== the clock moves $1"; curl -s -H 'Content-Type: application/json' --data "{\"advance\": \"$1\"}" "$base/api/clock"; echo; }

echo "hookflow is at $base, its clock stands at $start"
echo "== two campaign messages are sent; Bob opens his an hour later"
post "{\"event\":\"sent\",\"time\":$t0,\"MessageID\":1001,\"email\":\"ann@example.org\",\"mj_campaign_id\":7257}"
post "{\"event\":\"sent\",\"time\":$t0,\"MessageID\":1002,\"email\":\"bob@example.org\",\"mj_campaign_id\":7257}"
post "{\"event\":\"open\",\"time\":$((t0 + 3600)),\"MessageID\":1002,\"email\":\"bob@example.org\",\"mj_campaign_id\":7257}"
echo "== pending timers: $(curl -s "$base/api/stats")"
move 47h59m
move 1m
for _ in $(seq 50); do ls "$work/data/outbox/"*.eml >/dev/null 2>&1 && break; sleep 0.1; done
echo "== the outbox: one reminder, to Ann"
for f in "$work/data/outbox/"*.eml; do grep -E '^(To|Subject):' "$f"; done
