#!/usr/bin/env bash
# Event delivery latency at 1,000 events/s (examples/event_latency.rs), the
# three cases of BENCHMARKS.md, RUNS times each:
#   saves with one observing registry, saves with two, and REGISTERED from
#   a Kamailio (started here, loopback) sharing the cores.
#   scripts/bench-latency.sh [RUNS]      (default 3; about 20 s a run)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh > /dev/null
runs=${1:-3}
cargo build --release --example event_latency --quiet
bin=target/release/examples/event_latency
for _ in $(seq "$runs"); do "$bin" 5000; done
for _ in $(seq "$runs"); do "$bin" 5000 --both-observe; done
run=$(mktemp -d /tmp/sipprofile-latency.XXXXXX)
port=$((20000 + RANDOM % 20000))
tests/peers/kamailio.sh start "$run/kam" "$port" MD5 60 5000 > /dev/null
trap 'tests/peers/kamailio.sh stop "$run/kam"; rm -rf "$run"' EXIT
for _ in $(seq "$runs"); do
    "$bin" 5000 --registrar "sip:127.0.0.1:$port"
    sleep 2 # let the un-REGISTERs of the previous run settle
done
