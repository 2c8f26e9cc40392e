#!/usr/bin/env bash
# Start-up and overhead benchmark, run on demand (not a test): times, in one hyperfine run each,
#   1. bare /bin/true, unshare -Urmpin --fork, bwrap --unshare-all with a comparable view, brig run
#   2. a syscall-heavy workload (find over /usr, stat-heavy) bare and under brig
#   3. a CPU-bound workload bare and under brig
# and prints medians and ratios as a markdown table (paste into docs/benchmarks.md).
# Runs unprivileged: as root it drops to BENCH_UID (default 1000) for every command.
# Usage: benches/startup.sh [path/to/brig]   (default target/x86_64-unknown-linux-gnu/release/brig; needs hyperfine, bwrap)
set -euo pipefail
cd "$(dirname "$0")/.."
BRIG=$(readlink -f "${1:-target/x86_64-unknown-linux-gnu/release/brig}")
RUNS=${BENCH_RUNS:-300}
command -v hyperfine >/dev/null && command -v bwrap >/dev/null || {
  echo "needs hyperfine and bwrap: apt-get install -y hyperfine bubblewrap" >&2; exit 2; }
. "$(dirname "$(readlink -f "$0")")/lib.sh"

BWRAP="bwrap --unshare-all --die-with-parent --new-session --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --ro-bind /etc/ld.so.cache /etc/ld.so.cache --proc /proc --dev /dev --tmpfs /tmp"

bench() { # name runs cmd...
  local name=$1 runs=$2; shift 2
  "${as[@]}" hyperfine -N -w 20 -r "$runs" --export-json "$out/$name.json" "$@" >/dev/null
}

bench start "$RUNS" "/bin/true" "unshare -Urmpin --fork /bin/true" "$BWRAP /bin/true" "$BRIG run -- /bin/true"
FIND='find /usr/lib /usr/share -xdev -type f -newer /usr/bin/true 2>/dev/null; true'
bench syscalls 20 "sh -c '{ $FIND; } >/dev/null'" "$BRIG run -- sh -c '{ $FIND; } >/dev/null'"
CPU="python3 -c 'sum(i*i for i in range(3_000_000))'"
bench cpu 20 "$CPU" "$BRIG run -- $CPU"

python3 - "$out" <<'PY'
import json, sys, os, statistics
d = sys.argv[1]
def med(name):
    r = json.load(open(os.path.join(d, name + ".json")))["results"]
    return [(x["command"], statistics.median(x["times"]) * 1000) for x in r]
s = med("start")
bw = s[2][1]
print("| command | median (ms) | ratio to bwrap |")
print("|---|---:|---:|")
labels = ["bare /bin/true", "unshare -Urmpin --fork /bin/true", "bwrap --unshare-all (comparable view) /bin/true", "brig run -- /bin/true"]
for (c, m), l in zip(s, labels):
    print(f"| {l} | {m:.2f} | {m / bw:.2f}x |")
for name, label in (("syscalls", "find over /usr (syscall-heavy)"), ("cpu", "python3 CPU loop")):
    (bc, b), (_, j) = med(name)
    print(f"| {label}: bare / brig | {b:.1f} / {j:.1f} | brig/bare {j / b:.3f}x |")
PY
