#!/usr/bin/env bash
# Start-up of two brig binaries (`brig run -- /bin/true`), for the "within 5% of the previous
# build" budget: rounds alternate which binary goes first, so drift of the machine during the
# run (it is large on this 2-core VM) falls on both. Prints each round's medians and the median
# of the per-round ratios. Run on demand (not a test); unprivileged: as root it drops to
# BENCH_UID (default 1000). Usage: benches/compare.sh OLD_BRIG NEW_BRIG   (needs hyperfine)
set -euo pipefail
OLD=$(readlink -f "$1"); NEW=$(readlink -f "$2")
ROUNDS=${BENCH_ROUNDS:-6}; RUNS=${BENCH_RUNS:-200}
. "$(dirname "$(readlink -f "$0")")/lib.sh"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then a=$OLD b=$NEW; else a=$NEW b=$OLD; fi
  "${as[@]}" hyperfine -N -w 20 -r "$RUNS" --export-json "$out/$r.json" \
    "$a run -- /bin/true" "$b run -- /bin/true" >/dev/null
done
python3 - "$out" "$OLD" "$NEW" "$ROUNDS" <<'PY'
import json, os, statistics, sys
d, old, new, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ratios = []
print("| round | first | old median (ms) | new median (ms) | new/old |")
print("|---:|---|---:|---:|---:|")
for r in range(1, rounds + 1):
    res = json.load(open(os.path.join(d, f"{r}.json")))["results"]
    m = {x["command"].split(" run")[0]: statistics.median(x["times"]) * 1000 for x in res}
    o, n = m[old], m[new]
    ratios.append(n / o)
    print(f"| {r} | {'old' if r % 2 else 'new'} | {o:.3f} | {n:.3f} | {n / o:.3f} |")
print(f"\nmedian of the per-round ratios: {statistics.median(ratios):.3f}")
PY
