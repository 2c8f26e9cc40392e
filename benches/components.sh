#!/usr/bin/env bash
# The cost of brig-ipc (issue 10): an empty RPC round trip (`Channel::call`) against a raw
# one-byte seqpacket ping-pong between the same two processes, p50 and p99 in ns, on one CPU
# (taskset -c 0) and across CPUs. Run on demand (not a test). Usage: benches/components.sh [N]
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
cd "$here/.."
cargo build -q --release -p brig-ipc --example pingpong
bin=target/x86_64-unknown-linux-gnu/release/examples/pingpong
N=${1:-100000}
echo "| CPUs | call | p50 (ns) | p99 (ns) |"
echo "|---|---|---:|---:|"
for where in same across; do
  if [ $where = same ]; then run=(taskset -c 0 "$bin"); else run=("$bin"); fi
  "${run[@]}" "$N" | while read -r mode _ p50 _ p99; do echo "| $where | $mode | $p50 | $p99 |"; done
done
