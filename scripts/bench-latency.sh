#!/usr/bin/env bash
# Event delivery latency at 1,000 events/s (examples/event_latency.rs), the
# three cases of BENCHMARKS.md, RUNS times each, each next to its floor (the
# same wake-up over a bare channel, no library: `--floor`):
#   saves with one observing registry        | floor, one thread woken
#   saves with two observing registries      | floor, one thread woken for
#                                             | both; and two threads woken
#                                             | (a thread per registry)
#   REGISTERED from a Kamailio (started here, | floor while SIPp registers
#   loopback) sharing the cores: called on    | at 1,000/s with that Kamailio
#   the engine's thread, no thread woken      | (what a wake-up costs there)
# and each library case again with its threads on one CPU (SIPPROFILE_CPUS=0,
# printed as pinned=0).
#   scripts/bench-latency.sh [RUNS]      (default 3; about 65 s a run)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh > /dev/null
runs=${1:-3}
cargo build --release --example event_latency --bin sipprofile-server --quiet
bin=target/release/examples/event_latency
pinned() { SIPPROFILE_CPUS=0 "$bin" "$@" | sed 's/$/ pinned=0/'; }
for _ in $(seq "$runs"); do "$bin" 5000; "$bin" 5000 --floor; pinned 5000; done
for _ in $(seq "$runs"); do
    "$bin" 5000 --both-observe; "$bin" 5000 --both-observe --floor
    "$bin" 5000 --both-observe --floor --thread-each; pinned 5000 --both-observe
done
run=$(mktemp -d /tmp/sipprofile-latency.XXXXXX)
port=$((20000 + RANDOM % 20000))
tests/peers/kamailio.sh start "$run/kam" "$port" MD5 60 5000 > /dev/null
trap 'tests/peers/kamailio.sh stop "$run/kam"; rm -rf "$run"' EXIT
{ echo SEQUENTIAL; for i in $(seq 5000); do echo "user$i;[authentication username=user$i password=pw$i]"; done; } > "$run/users.csv"
for _ in $(seq "$runs"); do
    "$bin" 5000 --registrar "sip:127.0.0.1:$port"
    sleep 2 # let the un-REGISTERs of the previous run settle
    pinned 5000 --registrar "sip:127.0.0.1:$port"
    sleep 2
    # The floor under the same load: SIPp registers the same users at
    # 1,000/s (6 s) while the bare channel is timed (5 s) alongside.
    sipp "127.0.0.1:$port" -sf tests/peers/sipp/uac_register_auth.xml -inf "$run/users.csv" \
        -i 127.0.0.1 -m 6000 -r 1000 -rp 1000 -l 4000 -nostdin -timeout 30s > /dev/null 2>&1 &
    sipp_pid=$!
    sleep 0.5
    "$bin" 5000 --floor | sed 's/kind=floor/kind=floor+SIPp/'
    wait "$sipp_pid" || true
    sleep 2
done
