#!/usr/bin/env bash
# smoke_test.sh — starts saslguard-baseline on a free port, drives it with saslguard-load for 1 s,
# and checks the RESULT line (requests answered, no errors) and the clean "cannot connect" exit.
# Usage: bench/smoke_test.sh [directory holding saslguard-load and saslguard-baseline]
set -euo pipefail

bin_dir=${1:-$(dirname "$0")/../build/bench}
load=$bin_dir/saslguard-load
baseline=$bin_dir/saslguard-baseline
for tool in "$load" "$baseline"; do
  [[ -x $tool ]] || { echo "smoke_test: $tool not built" >&2; exit 1; }
done

work=$(mktemp -d)
baseline_pid=
cleanup() {
  if [[ -n $baseline_pid ]] && kill -0 "$baseline_pid" 2>/dev/null; then
    kill "$baseline_pid"
    wait "$baseline_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "smoke_test: FAIL: $*" >&2; exit 1; }

# Port 0: the kernel picks a free port; the baseline prints the one it got.
"$baseline" --listen 127.0.0.1:0 --threads 1 >"$work/baseline.out" 2>"$work/baseline.err" &
baseline_pid=$!
echo "$baseline_pid" >"$work/baseline.pid"
address=
for _ in $(seq 50); do
  address=$(sed -n 's/^listening on //p' "$work/baseline.out")
  [[ -n $address ]] && break
  kill -0 "$baseline_pid" 2>/dev/null || fail "baseline exited: $(cat "$work/baseline.err")"
  sleep 0.1
done
[[ -n $address ]] || fail "baseline did not report its address within 5 s"

# A generous timeout: the smoke test checks correctness, not speed, on a possibly busy machine.
"$load" --target "$address" --connections 4 --duration 1 --warmup 0.2 --timeout-ms 5000 \
  --compromised-share 0.1 --unauthenticated-share 0.1 --quiet >"$work/load.out" ||
  fail "saslguard-load exited with $?"
result=$(grep '^RESULT ' "$work/load.out") || fail "no RESULT line in: $(cat "$work/load.out")"
echo "$result"

value() { tr ' ' '\n' <<<"$result" | sed -n "s/^$1=//p"; }
awk -v rps="$(value rps)" 'BEGIN { exit !(rps > 0) }' || fail "rps is not positive"
[[ $(value requests) -eq $(value dunno) ]] || fail "a reply other than DUNNO from the baseline"
for key in err_connect err_closed err_timeout err_malformed; do
  [[ $(value $key) == 0 ]] || fail "$key=$(value $key)"
done

kill "$(cat "$work/baseline.pid")"
wait "$baseline_pid" || fail "baseline exited with $? on SIGTERM"
baseline_pid=

# An absent server is one line and exit status 2, not a hang or a crash.
status=0
"$load" --target "unix:$work/absent.sock" --duration 1 2>"$work/absent.err" >/dev/null || status=$?
[[ $status -eq 2 ]] || fail "absent server: exit status $status, expected 2"
grep -q "^cannot connect to unix:$work/absent.sock: " "$work/absent.err" ||
  fail "absent server: unexpected message: $(cat "$work/absent.err")"

echo "smoke_test: OK"
