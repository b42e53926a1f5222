#!/usr/bin/env bash
# CPU per registration, digest included, against a registrar that costs
# almost nothing: a SIPp UAS (tests/peers/sipp/uas_register_401_200.xml)
# answering each REGISTER with 401 (MD5, qop=auth), then 200 unchecked.
# Against that same UAS, in one run:
#   - SIPp as the UAC (tests/peers/sipp/uac_register_auth.xml), N users: its
#     process's CPU (user + system, /usr/bin/time) over N;
#   - sipprofile (examples/scale.rs), N profiles from one client, with the
#     server as its own process (default) and in the client's process: the
#     CPU of client + server from the first enable to the last REGISTERED,
#     over N.
#   scripts/bench-cpu.sh [N] [ROUNDS]       (default: 10000 1)
# The machine may be shared: run SIPp and sipprofile side by side (this
# script alternates them ROUNDS times) and compare within a round.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
rounds=${2:-1}
if [ "${BENCH_PROFILE:-release}" = debug ]; then
    cargo build --example scale --bin sipprofile-server --quiet
    scale=target/debug/examples/scale
    export SIPPROFILE_SERVER_BIN=$PWD/target/debug/sipprofile-server
else
    cargo build --release --example scale --bin sipprofile-server --quiet
    scale=target/release/examples/scale
    export SIPPROFILE_SERVER_BIN=$PWD/target/release/sipprofile-server
fi
run=$(mktemp -d /tmp/sipprofile-cpu.XXXXXX)
port=$((20000 + RANDOM % 20000))
sipp -sf tests/peers/sipp/uas_register_401_200.xml -i 127.0.0.1 -p "$port" \
    -buff_size 4194304 -nostdin > "$run/uas.log" 2>&1 &
uas=$!
trap 'kill $uas 2> /dev/null || true; rm -rf "$run"' EXIT
sleep 0.5
awk -v n="$n" 'BEGIN { print "SEQUENTIAL"; for (i = 1; i <= n; i++) printf "user%d;[authentication username=user%d password=pw%d]\n", i, i, i }' > "$run/users.csv"
printf '%-6s %-26s %10s %12s %14s\n' round tool 'seconds' 'CPU s' 'CPU us/reg'
status=0
for round in $(seq "$rounds"); do
    t0=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$run/sipp.time" \
        sipp "127.0.0.1:$port" -sf tests/peers/sipp/uac_register_auth.xml -inf "$run/users.csv" \
        -i 127.0.0.1 -m "$n" -r 20000 -rp 1000 -l 4000 -buff_size 4194304 -nostdin \
        -timeout 120s > /dev/null 2>&1 || status=1
    t1=$(date +%s.%N)
    read -r u s < <(tail -n 1 "$run/sipp.time")
    cpu=$(echo "$u + $s" | bc)
    printf '%-6s %-26s %10.3f %12.2f %14.1f\n' "$round" "SIPp UAC" "$(echo "$t1 - $t0" | bc)" "$cpu" "$(echo "$cpu * 1000000 / $n" | bc -l)"
    for hosting in process in-process; do
        rm -f "$run"/p.db*
        SIPPROFILE_SERVER=$hosting SIPPROFILE_SERVER_LINGER_MS=0 SCALE_IDLE_SECONDS=1 \
            "$scale" "$run/p.db" "sip:127.0.0.1:$port" "$n" > "$run/scale.out"
        get() { tr ' ' '\n' < "$run/scale.out" | sed -n "s/^$1=//p"; }
        [ "$(get registered)" = "$n" ] || { echo "FAILED: $(cat "$run/scale.out")" >&2; status=1; }
        printf '%-6s %-26s %10.3f %12.2f %14.1f\n' "$round" "sipprofile ($hosting)" "$(get register_s)" "$(get cpu_s)" "$(echo "$(get cpu_s) * 1000000 / $n" | bc -l)"
    done
done
exit $status
