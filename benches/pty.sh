#!/usr/bin/env bash
# The terminal relay, run on demand (not a test), in one run side by side:
#   1. bulk output: `head -c $BENCH_BYTES /dev/zero` (default 1 GiB) written to a terminal through
#      brig's private pty and relay, against the same through script(1)'s pty, and directly.
#      The terminal is an outer script(1) whose output goes to /dev/null, so both paths cross
#      the same outer pty and the difference is the inner pty plus its relay.
#   2. interactive latency: one byte typed into the terminal and echoed back by `cat` in the
#      prison (through brig's relay) against `cat` under script(1), round trips timed in-process.
# Prints a markdown table (paste into docs/benchmarks.md).
# Runs unprivileged: as root it drops to BENCH_UID (default 1000) for every command.
# Usage: benches/pty.sh [path/to/brig]   (default target/x86_64-unknown-linux-gnu/release/brig; needs hyperfine, script)
set -euo pipefail
cd "$(dirname "$0")/.."
BRIG=$(readlink -f "${1:-target/x86_64-unknown-linux-gnu/release/brig}")
BYTES=${BENCH_BYTES:-1G}
RUNS=${BENCH_RUNS:-5}
command -v hyperfine >/dev/null && command -v script >/dev/null || {
  echo "needs hyperfine and script: apt-get install -y hyperfine bsdutils" >&2; exit 2; }
. "$(dirname "$(readlink -f "$0")")/lib.sh"

HEAD="head -c $BYTES /dev/zero"
"${as[@]}" hyperfine -N -w 1 -r "$RUNS" --export-json "$out/bulk.json" \
  "script -qc '$HEAD' /dev/null" \
  "script -qc \"script -qc '$HEAD' /dev/null\" /dev/null" \
  "script -qc '$BRIG run -- $HEAD' /dev/null" >/dev/null </dev/null

# Latency: a pty of our own is the user's terminal; 2000 one-byte round trips through cat.
"${as[@]}" /usr/bin/python3 - "$BRIG" >"$out/latency.txt" <<'PY'
import os, pty, sys, time, statistics, tty
def rtt(argv, n=2000):
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp(argv[0], argv)
    tty.setraw(fd)
    time.sleep(0.5)
    # Wait until cat echoes: the prison is up.
    os.write(fd, b"a")
    got = b""
    while b"a" not in got:
        got += os.read(fd, 100)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        os.write(fd, b"x")
        got = b""
        while b"x" not in got:
            got += os.read(fd, 100)
        times.append((time.perf_counter() - t) * 1e6)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return statistics.median(times)
brig = sys.argv[1]
print(rtt(["script", "-qc", "stty raw -echo; cat", "/dev/null"]))
print(rtt([brig, "run", "--", "sh", "-c", "stty raw -echo; cat"]))
PY

python3 - "$out" <<'PY'
import json, sys, os, statistics
d = sys.argv[1]
r = json.load(open(os.path.join(d, "bulk.json")))["results"]
bare, script, brig = (statistics.median(x["times"]) for x in r)
lat = [float(x) for x in open(os.path.join(d, "latency.txt")).read().split()]
print("| terminal path | median | ratio |")
print("|---|---:|---:|")
print(f"| bulk output, one pty (no inner pty) | {bare:.2f} s | |")
print(f"| bulk output through script(1)'s pty | {script:.2f} s | |")
print(f"| bulk output through brig's pty and relay | {brig:.2f} s | throughput {script / brig:.2f}x of script(1) |")
print(f"| keystroke echo round trip, script(1) | {lat[0]:.0f} us | |")
print(f"| keystroke echo round trip, brig | {lat[1]:.0f} us | {lat[1] / lat[0]:.2f}x of script(1) |")
PY
