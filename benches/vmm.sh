#!/usr/bin/env bash
# brig-vmm (issue 12): what isolating the devices costs. Devices each in their own prison and
# the VMM in one (`--devices process`, the default) against the same device code on threads of
# one unjailed VMM process (`--devices in-process`), side by side in one run:
#   1. boot to the guest's final marker: a whole brig-vmm run of the checklist (rng + blk),
#      from exec to exit (hyperfine);
#   2. blk sequential write and read, rng draws, ARG MiB each, measured by the guest between
#      marks whose host times the VMM notes (median of RUNS runs);
#   3. absolute figures: the CPU time of a boot (with 1); the VMM's own memory (RSS less guest memory,
#      which is shared); the blk device's CPU time per GiB moved.
# Run as root (the prisons still run unprivileged). Usage: benches/vmm.sh [ARG_MIB] [RUNS]
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
cd "$here/.."
ARG=${1:-128}
RUNS=${2:-5}
cargo build -q --release -p brig -p brig-vmm
(cd crates/brig-guest && cargo build -q --release --target-dir ../../target/guest)
V=$PWD/target/x86_64-unknown-linux-gnu/release/brig-vmm
G=$PWD/target/guest/x86_64-unknown-none/release/brig-guest
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
truncate -s 1M "$work/small.img"
truncate -s "$((ARG + 1))M" "$work/big.img"
modes=(process in-process)

# Boot: N alternating runs of each mode, as a child of python: the time from exec to the
# guest's final marker on stdout, to exit, and the CPU time of every process of the run.
python3 - "$V" "$G" "$work/small.img" >"$work/boot" <<'PY'
import resource, statistics, subprocess, sys, time
v, g, img = sys.argv[1:4]
res = {m: ([], [], []) for m in ("process", "in-process")}
for i in range(33):
    for m in res:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        p = subprocess.Popen([v, "--guest", g, "--rng", "1", "--blk", img, "--devices", m],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        marker = None
        for line in p.stdout:
            if line.startswith(b"BRIG-GUEST-DONE ok=") and b"failed=0" in line:
                marker = time.monotonic() - t0
        p.wait()
        done = time.monotonic() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if i >= 3 and marker is not None:  # 3 warm-up runs
            for k, x in enumerate((marker, done, cpu)):
                res[m][k].append(x * 1000)
for m, (marker, done, cpu) in res.items():
    f = lambda xs: f"{statistics.mean(xs):.1f} ± {statistics.stdev(xs):.1f}"
    print(m, f(marker), "|", f(done), "|", f(cpu), "|", statistics.mean(marker))
PY
echo "## Boot (checklist: rng + blk; ms, 30 runs each, alternating)"
echo
echo "| devices | exec to the final marker | exec to exit | CPU of all its processes |"
echo "|---|---:|---:|---:|"
awk '{ $NF=""; printf "| %s |\n", $0 }' "$work/boot" | sed 's/ | *|$/ |/; s/^| \([a-z-]*\) /| \1 | /'
awk '{m[NR]=$NF} END {printf "| ratio (to the marker) | %.2fx | | |\n", m[1]/m[2]}' "$work/boot"

# ms between two marks of a bench run's stderr.
between() { awk -v a="mark $2 " -v b="mark $3 " 'index($0,a){s=$(NF-1)} index($0,b){e=$(NF-1)} END {print e-s}' "$1"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo
echo "## Throughput measured by the guest ($ARG MiB each, median of $RUNS; MiB/s)"
echo
echo "| devices | blk write | blk read | rng |"
echo "|---|---:|---:|---:|"
declare -A tput
# Three placements: in-process; devices in prisons with a memory limit above the image's working
# set (what the prisons themselves cost); and with brig-vmm's default limit (256 MiB), which the
# image's page cache counts against.
rows=(in-process big-limit default-limit)
for m in "${rows[@]}"; do
  case $m in
    in-process) flags=(--devices in-process) ;;
    big-limit) flags=(--device-mem 2048) ;;
    default-limit) flags=() ;;
  esac
  for i in $(seq "$RUNS"); do
    # A fresh image each run: its page cache is then charged to the device that first touches
    # it (its own cgroup in process mode), as a VM's image is.
    rm -f "$work/big.img" && truncate -s "$((ARG + 1))M" "$work/big.img"
    "$V" --guest "$G" --rng 1 --blk "$work/big.img" --mode bench --arg "$ARG" "${flags[@]}" \
      >/dev/null 2>"$work/$m.$i"
    for pair in "w 10 11" "r 20 21" "g 30 31"; do
      set -- $pair
      echo "$(between "$work/$m.$i" "$2" "$3")" >>"$work/$m.$1"
    done
  done
  case $m in
    in-process) row="| in-process" ;;
    big-limit) row="| in prisons, --device-mem 2048" ;;
    default-limit) row="| in prisons, default --device-mem" ;;
  esac
  for k in w r g; do
    ms=$(median <"$work/$m.$k")
    v=$(awk -v a="$ARG" -v ms="$ms" 'BEGIN {printf "%.0f", a / (ms / 1000)}')
    tput[$m.$k]=$v
    row="$row | $v"
  done
  echo "$row |"
done
for m in big-limit default-limit; do
  awk -v m="$m" -v w="${tput[$m.w]}" -v W="${tput[in-process.w]}" -v r="${tput[$m.r]}" \
    -v R="${tput[in-process.r]}" -v g="${tput[$m.g]}" -v Gr="${tput[in-process.g]}" \
    'BEGIN {printf "| ratio, %s / in-process | %.2fx | %.2fx | %.2fx |\n", m, w/W, r/R, g/Gr}'
done
echo
echo "## Absolute figures"
echo
echo "| devices | VMM's own RSS (MiB) | blk device CPU ms per GiB |"
echo "|---|---:|---:|"
# The host pid of the program below brig-vmm (pid $1) whose command line has the word $2.
program() {
  for p in /proc/[0-9]*; do
    tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qx -- "$2" || continue
    q=${p#/proc/}
    while [ "$q" -gt 1 ]; do
      q=$(awk '{print $4}' "/proc/$q/stat" 2>/dev/null || echo 1)
      [ "$q" = "$1" ] && { echo "${p#/proc/}"; }
    done
  done | tail -1
}
for m in "${modes[@]}"; do
  # RSS: sampled during a soak, the VMM's anonymous and file pages (guest memory is shmem).
  "$V" --guest "$G" --rng 1 --blk "$work/small.img" --devices "$m" --arg 20000 >/dev/null 2>&1 &
  launcher=$!
  sleep 1
  if [ "$m" = process ]; then vmm=$(program "$launcher" vmm); else vmm=$launcher; fi
  rss=$(awk '/^RssAnon|^RssFile/ {k += $2} END {printf "%.1f", k / 1024}' "/proc/$vmm/status")
  wait "$launcher" || true
  # The blk device's CPU time over a bench run (its program's, in process mode; the whole
  # process's less the VMM's vCPU is not separable in-process, so only process mode).
  if [ "$m" = process ]; then
    "$V" --guest "$G" --blk "$work/big.img" --mode bench --arg "$ARG" >/dev/null 2>&1 &
    launcher=$!
    blk=""
    while [ -z "$blk" ] && kill -0 "$launcher" 2>/dev/null; do blk=$(program "$launcher" virtio-blk); done
    ticks=0
    while [ -r "/proc/$blk/stat" ]; do
      t=$(awk '{print $14 + $15}' "/proc/$blk/stat" 2>/dev/null || echo "$ticks")
      ticks=${t:-$ticks}
      sleep 0.01
    done
    wait "$launcher" || true
    per=$(awk -v t="$ticks" -v a="$ARG" -v hz="$(getconf CLK_TCK)" \
      'BEGIN {printf "%.0f", t * 1000 / hz / (2 * a / 1024)}')
  else
    per="(not separable)"
  fi
  echo "| $m | $rss | $per |"
done
