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

# A 64 MiB answer in a sealed memfd is the pingpong run's last line (above).

# Restart of a crashed component: a new brig, prison, exec and hello, then one call.
cargo build -q --release -p brig-component --examples
echo
echo "| component | p50 (µs) | p99 (µs) |"
echo "|---|---:|---:|"
target/x86_64-unknown-linux-gnu/release/examples/restart 50 |
  while read -r what _ p50 _ p99; do echo "| $what | $p50 | $p99 |"; done

# unpack of a 200 MB archive (50 files of base64 text) through the component, against the
# same crates in-process (--in-process); median of 5 alternating runs each, in seconds; each run
# starts after a sync, so that the writeback of the run before does not land in it.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
head -c 150000000 /dev/urandom | base64 -w 100 | split -b 4000000 - "$work/src/part-"
tar -C "$work/src" -cf "$work/a.tar" .
gzip -1 -k "$work/a.tar"
zstd -q "$work/a.tar" -o "$work/a.tar.zst"
unpack=target/x86_64-unknown-linux-gnu/release/examples/unpack
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo
echo "| archive | in-process (s) | component (s) | in-process / component |"
echo "|---|---:|---:|---:|"
for a in a.tar.gz a.tar.zst; do
  for i in 1 2 3 4 5; do
    for mode in in-process component; do
      rm -rf "$work/out" && mkdir "$work/out" && sync
      flag=(); [ $mode = in-process ] && flag=(--in-process)
      s=$(date +%s.%N)
      "$unpack" "${flag[@]}" "$work/$a" "$work/out" 2>/dev/null
      e=$(date +%s.%N)
      echo "$e - $s" | bc >> "$work/$mode"
    done
  done
  ip=$(median < "$work/in-process"); co=$(median < "$work/component")
  echo "| $a ($(stat -c %s "$work/a.tar") bytes) | $ip | $co | $(echo "scale=3; $ip / $co" | bc) |"
  rm -f "$work/in-process" "$work/component"
done

# A group: `brig run -m` of two /bin/true members, the second `after` the first, against one
# `brig run -m` of /bin/true; 40 runs each in this loop, p50 and p90 in µs.
brig=target/x86_64-unknown-linux-gnu/release/brig
cargo build -q --release -p brig
printf '[component.a.program]\npath = "/bin/true"\n[component.b]\nafter = ["a"]\n[component.b.program]\npath = "/bin/true"\n' > "$work/group.toml"
printf '[program]\npath = "/bin/true"\n' > "$work/one.toml"
echo
echo "| brig run -m | p50 (µs) | p90 (µs) |"
echo "|---|---:|---:|"
for m in one group; do
  for i in $(seq 40); do
    s=$(date +%s%N); "$brig" run -m "$work/$m.toml" >/dev/null 2>&1; e=$(date +%s%N)
    echo $(((e - s) / 1000))
  done | sort -n | awk -v m=$m '{a[NR]=$1} END {print "| " m " | " a[int(NR/2)] " | " a[int(NR*0.9)] " |"}'
done
