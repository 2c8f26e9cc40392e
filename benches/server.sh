#!/usr/bin/env bash
# Server throughput benchmark, run on demand (not a test): the example static-file server
# (crates/brig-caps/examples/static_server.rs) serving many small files, unsandboxed and under
# brig (a dir capability, a listen capability, capability mode), measured with wrk in the same
# run, alternating, ROUNDS times each. Prints requests/s (median) and the ratio brig/bare.
# Runs unprivileged: as root it drops to BENCH_UID (default 1000) for the servers.
# Usage: benches/server.sh   (needs wrk; builds target/x86_64-unknown-linux-gnu/release/brig and the example)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "needs wrk: apt-get install -y wrk" >&2; exit 2; }
cargo build --release -q -p brig -p brig-caps --example static_server
BRIG=$(readlink -f target/x86_64-unknown-linux-gnu/release/brig)
ROUNDS=${BENCH_ROUNDS:-5}
DUR=${BENCH_SECONDS:-5}
FILES=${BENCH_FILES:-1000}
. "$(dirname "$(readlink -f "$0")")/lib.sh"
work=$out; chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cp target/x86_64-unknown-linux-gnu/release/examples/static_server "$work/static_server"
mkdir "$work/site"
for i in $(seq 0 $((FILES - 1))); do head -c 512 /dev/urandom | base64 -w 64 > "$work/site/f$i.txt"; done
cat > "$work/rotate.lua" <<LUA
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/f" .. (counter % $FILES) .. ".txt")
end
LUA
chown -R "${BENCH_UID:-1000}:${BENCH_UID:-1000}" "$work" 2>/dev/null || true
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
up() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.02; done; echo "server on $1 did not start" >&2; exit 1; }
P1=$(port); P2=$(port)
"${as[@]}" "$work/static_server" --bare "$work/site" "127.0.0.1:$P1" 2>/dev/null & pids+=($!)
"${as[@]}" "$BRIG" run --rx "$work/static_server" --dir "site=$work/site" \
  --listen "http=tcp://127.0.0.1:$P2" -- "$work/static_server" 2>/dev/null & pids+=($!)
up "$P1"; up "$P2"
for p in "$P1" "$P2"; do  # both must really serve the files (wrk counts errors as requests too)
  cmp -s <(curl -sf "http://127.0.0.1:$p/f7.txt") "$work/site/f7.txt" || { echo "server on $p does not serve" >&2; exit 1; }
done
rps() {
  local out; out=$(wrk -t1 -c8 -d"${DUR}s" -s "$work/rotate.lua" "http://127.0.0.1:$1/")
  if grep -q "Non-2xx" <<<"$out"; then echo "errors from the server on $1: $out" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
bare=(); brig=()
for _ in $(seq "$ROUNDS"); do bare+=("$(rps "$P1")"); brig+=("$(rps "$P2")"); done
python3 - "${bare[*]}" "${brig[*]}" "$FILES" <<'PY'
import statistics, sys
bare = [float(x) for x in sys.argv[1].split()]
brig = [float(x) for x in sys.argv[2].split()]
b, j = statistics.median(bare), statistics.median(brig)
print(f"| static_server, {sys.argv[3]} files of ~700 B, wrk -c8 | bare | brig (dir + listen caps, capability mode) | ratio |")
print("|---|---:|---:|---:|")
print(f"| requests/s, median of {len(bare)} | {b:,.0f} | {j:,.0f} | {j / b:.3f}x |")
print(f"| all rounds | {', '.join(f'{x:,.0f}' for x in bare)} | {', '.join(f'{x:,.0f}' for x in brig)} | |")
PY
