# Sourced by the example scripts: builds hookflow, copies the example flows into a
# scratch folder, starts `hookflow serve "$@"` there on a free port, and sets `root`,
# `work` (the scratch folder, removed on exit) and `base` (the server's URL). The
# server is stopped when the script exits, however it exits.
#
# The binary is built in `$CARGO_TARGET_DIR` (default `target/`); `HOOKFLOW_BIN` names
# one to use instead, without building.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${HOOKFLOW_BIN:-}" ]; then
  target="${CARGO_TARGET_DIR:-$root/target}"
  case "$target" in /*) ;; *) target="$PWD/$target" ;; esac
  cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin hookflow
  HOOKFLOW_BIN="$target/release/hookflow"
fi
work=$(mktemp -d)
hookflow_pid=
stop_hookflow() {
  if [ -n "$hookflow_pid" ]; then
    kill "$hookflow_pid" 2>/dev/null || true
    wait "$hookflow_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap stop_hookflow EXIT
cp -r "$root/rules" "$root/templates" "$work/"
printf 'listen: 127.0.0.1:0\n' > "$work/hookflow.yaml"
# `exec`: the background job is hookflow itself, so the trap's `kill` reaches it.
(cd "$work" && exec "$HOOKFLOW_BIN" serve "$@" > "$work/out" 2> "$work/log") &
hookflow_pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/hookflow listening on //p' "$work/out")
[ -n "$base" ] || { echo "hookflow did not start:" >&2; cat "$work/log" >&2; exit 1; }
