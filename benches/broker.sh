#!/usr/bin/env bash
# The broker's costs, in one run (not a test; run on demand): per-call p50/p99 of a plain
# syscall, a refused one (a raw user-notification round trip through the broker), an openat
# (plain, observed under --explain, and brokered: made by the broker under --ask), a TCP
# connect (and one brokered by --egress), inside brig and on the bare host;
# then two syscall-heavy workloads (find /usr, make -j2 of 60 C files) under brig, under
# brig --explain and, given BRIG_BEFORE (a brig without the broker's observer, e.g. a build
# of a373cf2), under that, with bwrap beside them. Unprivileged: as root it drops to
# BENCH_UID (default 1000). Usage: benches/broker.sh [BRIG]   (needs cc, hyperfine, bwrap)
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
BRIG=$(readlink -f "${1:-$here/../target/x86_64-unknown-linux-gnu/release/brig}")
N=${BENCH_CALLS:-20000}
. "$here/lib.sh"
cc -O2 -o "$out/probe" "$here/broker_probe.c"
echo hello > "$out/file"
chmod -R a+rX "$out"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
echo "## per call (ns), $N calls each"
echo "| where | call | p50 | p99 |"
echo "|---|---|---:|---:|"
row() { local where=$1; shift; "${as[@]}" "$@" | while read -r call _ p50 _ p99; do echo "| $where | $call | $p50 | $p99 |"; done; }
row host "$out/probe" plain "$N"
row brig "$BRIG" run -q --rx "$out" -- "$out/probe" plain "$N"
row brig "$BRIG" run -q --rx "$out" -- "$out/probe" refused "$N"
row host "$out/probe" open "$N" "$out/file"
row brig "$BRIG" run -q --rx "$out" -- "$out/probe" open "$N" "$out/file"
row "brig --explain" "$BRIG" run -q --explain --rx "$out" -- "$out/probe" open "$N" "$out/file" 2>/dev/null
row "brig --explain" "$BRIG" run -q --explain --rx "$out" -- "$out/probe" connect "$N" "$port" 2>/dev/null
# Brokered open: the file is not in the view; --ask is answered "always" once (on a pty, as a
# person would), after which each open is made by the broker and installed with ADDFD.
"${as[@]}" /usr/bin/python3 "$here/../crates/brig/tests/probes/ask_driver.py" a "$BRIG" run -q --ask --rx "$out/probe" -- "$out/probe" open "$N" "$out/file" |
  tr -d '\r' | grep '^open p50' | while read -r call _ p50 _ p99; do echo "| brig --ask (always) | $call (brokered) | $p50 | $p99 |"; done
row brig "$BRIG" run -q --rx "$out" -- "$out/probe" connect "$N" "$port"
# Brokered connect: --egress to a name the host resolves to 127.0.0.1, where a server listens.
# The name comes from a hosts file bound over /etc/hosts around brig (needs root).
if [ "$(id -u)" = 0 ]; then
  printf '127.0.0.1 localhost\n127.0.0.1 brig-bench.test\n' > "$out/hosts"; chmod a+r "$out/hosts"
  python3 -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(4096)
while True: s.accept()[0].close()' "$port" & srv=$!
  sleep 0.5
  EN=$((N / 10))
  row host "$out/probe" egress "$EN" 127.0.0.1 "$port"
  unshare -m --propagation private sh -c "mount --bind $out/hosts /etc/hosts && exec ${as[*]} $BRIG run -q --egress brig-bench.test:$port --rx $out -- $out/probe egress $EN brig-bench.test $port" |
    while read -r call _ p50 _ p99; do echo "| brig --egress | $call (brokered) | $p50 | $p99 |"; done
  kill $srv
fi

# A small C project: 60 files, make -j2.
mkdir -p "$out/proj"
for i in $(seq 1 60); do printf 'int f%d(int x){return x*%d;}\n' "$i" "$i" > "$out/proj/f$i.c"; done
printf 'int main(void){return 0;}\n' > "$out/proj/main.c"
printf 'SRC=$(wildcard *.c)\nOBJ=$(SRC:.c=.o)\napp: $(OBJ)\n\tcc -o $@ $^\n%%.o: %%.c\n\tcc -O2 -c $<\nclean:\n\trm -f *.o app\n' > "$out/proj/Makefile"
chmod -R a+rwX "$out/proj"
make_cmd() { echo "$1 run -q --rwx $out/proj --chdir $out/proj $2 -- sh -c 'make -s clean && make -s -j2'"; }
find_cmd() { echo "$1 run -q $2 -- sh -c 'find /usr >/dev/null 2>&1; true'"; }
cmds=("$(find_cmd "$BRIG" "")" "$(find_cmd "$BRIG" --explain)")
mcmds=("$(make_cmd "$BRIG" "")" "$(make_cmd "$BRIG" --explain)")
if [ -n "${BRIG_BEFORE:-}" ]; then
  B=$(readlink -f "$BRIG_BEFORE")
  cmds+=("$(find_cmd "$B" "")"); mcmds+=("$(make_cmd "$B" "")")
fi
cmds+=("bwrap --ro-bind / / --dev /dev --proc /proc --unshare-all -- sh -c 'find /usr >/dev/null 2>&1; true'")
echo
"${as[@]}" hyperfine -w 2 -r "${BENCH_RUNS:-10}" --export-markdown "$out/find.md" "${cmds[@]}" >/dev/null 2>&1
cat "$out/find.md"
echo
"${as[@]}" hyperfine -w 1 -r "${BENCH_RUNS:-10}" --export-markdown "$out/make.md" "${mcmds[@]}" >/dev/null 2>&1
cat "$out/make.md"
