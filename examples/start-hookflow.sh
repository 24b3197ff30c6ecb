# Sourced by the example scripts: builds hookflow, copies the example flows into a
# scratch folder, starts `hookflow serve "$@"` there on a free port, and sets `root`,
# `work` (the scratch folder, removed on exit) and `base` (the server's URL).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin hookflow
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
cp -r "$root/rules" "$root/templates" "$work/"
printf 'listen: 127.0.0.1:0\n' > "$work/hookflow.yaml"
(cd "$work" && "$root/target/release/hookflow" serve "$@" > "$work/out" 2> "$work/log") &
for _ in $(seq 50); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/hookflow listening on //p' "$work/out")
[ -n "$base" ] || { echo "hookflow did not start:" >&2; cat "$work/log" >&2; exit 1; }
