#!/usr/bin/env bash
# brig-oci beside runc and crun, in one run (not a test; run on demand, as root): the same
# busybox bundle's create -> start -> delete --force (youki's benchmark), `podman run --rm
# --network none IMG /bin/true` (rootful, and rootless as BRIG_TEST_UID) and `ctr run --rm
# --runc-binary R IMG ID /bin/true`, each runtime
# on the same machine in the same run. A runtime that fails a row is reported as failing (crun
# refuses this machine's hybrid cgroup layout). podman's default ulimits ask for a hard
# RLIMIT_NOFILE this machine cannot grant (no CAP_SYS_RESOURCE in the bounding set), so every
# rootful podman row sets its ulimits (rootless podman asks for none). Usage: benches/oci.sh [BRIG_OCI] [RUNS]
# (needs hyperfine, podman, containerd, runc, crun, busybox-static)
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
BRIG=$(readlink -f "${1:-$here/../target/x86_64-unknown-linux-gnu/release/brig-oci}")
RUNS=${2:-30}
[ "$(id -u)" = 0 ] || { echo "benches/oci.sh: run as root (the engines are rootful)" >&2; exit 1; }
ctrd=""
img="localhost/brig-oci-bench-$$:latest"
out=$(mktemp -d)
# Rootless podman runs as BRIG_TEST_UID (default 1000) with a HOME of its own; its pause process
# (which holds podman's user namespace) is killed at the end.
U=${BRIG_TEST_UID:-1000}
rl=$(mktemp -d /tmp/brig-oci-bench-rl.XXXXXX)
cleanup() {
  kill "$ctrd" 2>/dev/null
  podman rmi -f "$img" >/dev/null 2>&1
  kill -9 "$(cat "$rl/run/libpod/tmp/pause.pid" 2>/dev/null)" 2>/dev/null
  rm -rf "$out" "$rl"
}
trap cleanup EXIT
runtimes=("brig-oci=$BRIG" "runc=$(command -v runc)" "crun=$(command -v crun)")

# The bundle: runc's own `spec`, not on a terminal, running /bin/true on a busybox root.
mkdir -p "$out/bundle/rootfs"/{bin,proc,dev,sys,tmp,etc,run}
cp /bin/busybox "$out/bundle/rootfs/bin/"
for a in sh true; do ln -s busybox "$out/bundle/rootfs/bin/$a"; done
(cd "$out/bundle" && runc spec && python3 - <<'EOF'
import json
c = json.load(open("config.json"))
c["process"]["terminal"] = False
c["process"]["args"] = ["/bin/true"]
json.dump(c, open("config.json", "w"))
EOF
)
tar -C "$out/bundle/rootfs" -cf "$out/rootfs.tar" .
podman import "$out/rootfs.tar" "$img" >/dev/null 2>&1
podman save --format oci-archive -o "$out/image.tar" "$img" >/dev/null 2>&1
mkdir -p "$rl/run" && cp "$out/rootfs.tar" "$rl/" && chmod 755 "$rl" && chown -R "$U:$U" "$rl"
rootless() { setpriv --reuid="$U" --regid="$U" --clear-groups env HOME="$rl" XDG_RUNTIME_DIR="$rl/run" podman "$@"; }
rootless import "$rl/rootfs.tar" "$img" >/dev/null 2>&1
containerd --root "$out/ctrd/root" --state "$out/ctrd/state" --address "$out/ctrd/sock" >/dev/null 2>&1 &
ctrd=$!
for _ in $(seq 100); do ctr -a "$out/ctrd/sock" version >/dev/null 2>&1 && break; sleep 0.1; done
ctr -a "$out/ctrd/sock" image import --base-name "${img%:latest}" "$out/image.tar" >/dev/null

# One row: NAME CMD (a shell command with $R for the runtime); a runtime whose command fails
# once is reported as failing, with its first error line.
row() {
  local name=$1 cmd=$2
  local line="| $name |"
  for rt in "${runtimes[@]}"; do
    local n=${rt%%=*} R=${rt#*=}
    if ! err=$(R="$R" bash -c "$cmd" 2>&1 >/dev/null); then
      line+=" fails${err:+: $(echo "$err" | tail -1 | cut -c1-60)} |"
      continue
    fi
    R="$R" hyperfine --shell=bash --style none --runs "$RUNS" --warmup 3 \
      --export-json "$out/$n.json" "$cmd" >/dev/null 2>&1 || { line+=" fails |"; continue; }
    line+=" $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%.1f ± %.1f" % (r["mean"]*1e3, r["stddev"]*1e3))' "$out/$n.json") |"
  done
  echo "$line"
}
export out img rl U
export -f rootless
echo "## brig-oci, runc, crun: ms per container (mean ± sd, $RUNS runs each)"
echo
echo "| row | brig-oci | runc | crun |"
echo "|---|---:|---:|---:|"
row "create → start → delete --force (bundle)" \
  'id=b$RANDOM$RANDOM; $R --root $out/st create --bundle $out/bundle $id </dev/null >/dev/null && $R --root $out/st start $id && $R --root $out/st delete --force $id'
row "podman run --rm --network none IMG /bin/true" \
  'podman --runtime $R run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 $img /bin/true'
row "podman run --rm --network none IMG /bin/true (rootless, uid $U)" \
  'rootless --runtime $R run --rm --network none $img /bin/true'
row "ctr run --rm IMG /bin/true" \
  'ctr -a $out/ctrd/sock run --rm --runc-binary $R $img c$RANDOM$RANDOM /bin/true'
