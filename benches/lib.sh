# Sourced by the benchmarks: `as` runs a command as BENCH_UID (default 1000) when started as
# root, so every figure is an unprivileged run; `out` is a scratch directory removed at exit.
as=()
if [ "$(id -u)" = 0 ]; then as=(setpriv --reuid="${BENCH_UID:-1000}" --regid="${BENCH_UID:-1000}" --clear-groups); fi
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
chmod 777 "$out"
