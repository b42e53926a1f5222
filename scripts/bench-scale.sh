#!/usr/bin/env bash
# Scale benchmark: for each N, start Kamailio (MD5 digest, UDP, loopback)
# with N users, then in the same run
#   - SIPp registers N users flat out (authenticated REGISTERs),
#   - sipprofile registers N stored profiles from one process (examples/scale.rs),
#   - PJSIP (pjsua2-python, 8 accounts per process) for N <= 1000 when installed
#     (pip install pjsua2-python==2.15.1.post1); its RSS is the sum over processes,
#     its time includes starting the processes,
# checks that every binding is present then gone, and prints one table.
# sipprofile runs once per hosting of its server: as its own process
# ("sipprofile", the default) and in the client's process ("sipprofile-inproc",
# SIPPROFILE_SERVER=in-process); SCALE_HOSTINGS="process" runs the first only.
# Kamailio gets shared/private memory for N bindings (KAMAILIO_SHM_MB,
# KAMAILIO_PKG_MB: 1024/32 above 10,000, else its defaults).
#   scripts/bench-scale.sh [N ...]        (default: 100 1000 10000; 100000 works)
# Not part of the test command (scripts/test.sh runs a small smoke of it).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh > /dev/null
sizes=("${@:-100 1000 10000}")
[ $# -gt 0 ] || sizes=(100 1000 10000)
if [ "${BENCH_PROFILE:-release}" = debug ]; then
    cargo build --example scale --bin sipprofile-server --quiet
    scale=target/debug/examples/scale
else
    cargo build --release --example scale --bin sipprofile-server --quiet
    scale=target/release/examples/scale
fi
status=0
results=$(mktemp /tmp/sipprofile-bench.XXXXXX)

count_bindings() {
    kamcmd -s "unix:$1/ctl" stats.get_statistics location_contacts | sed -n 's/.*= *//p'
}

for n in "${sizes[@]}"; do
    run=$(mktemp -d /tmp/sipprofile-bench-run.XXXXXX)
    if [ "$n" -gt 10000 ]; then
        export KAMAILIO_SHM_MB=${KAMAILIO_SHM_MB:-1024} KAMAILIO_PKG_MB=${KAMAILIO_PKG_MB:-32}
    fi
    port=$((20000 + RANDOM % 20000))
    tests/peers/kamailio.sh start "$run/kam" "$port" MD5 60 "$n" > /dev/null
    # -- SIPp --
    awk -v n="$n" 'BEGIN { print "SEQUENTIAL"; for (i = 1; i <= n; i++) printf "user%d;[authentication username=user%d password=pw%d]\n", i, i, i }' > "$run/users.csv"
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M %U %S" -o "$run/sipp.time" \
        sipp "127.0.0.1:$port" -sf tests/peers/sipp/uac_register_auth.xml -inf "$run/users.csv" \
        -i 127.0.0.1 -m "$n" -r 20000 -rp 1000 -l 4000 -buff_size 1048576 -nostdin \
        -timeout 120s > /dev/null 2>&1 || true
    t1=$(date +%s.%N)
    sipp_bind=$(count_bindings "$run/kam")
    read -r sipp_rss sipp_u sipp_s < <(tail -n 1 "$run/sipp.time")
    printf '%s\n' "$n SIPp $(echo "$t1 - $t0" | bc) $sipp_rss $(echo "$sipp_u + $sipp_s" | bc) $sipp_bind" >> "$results"
    # SIPp gives up on a call after its retransmissions; at 100,000 a few do.
    [ "$sipp_bind" = "$n" ] || echo "note: N=$n SIPp bound $sipp_bind of $n (its failed calls)" >&2
    tests/peers/kamailio.sh stop "$run/kam"
    for hosting in ${SCALE_HOSTINGS:-process in-process}; do
    tool=sipprofile; [ "$hosting" = in-process ] && tool=sipprofile-inproc
    rm -f "$run"/p.db* "$run/peak" "$run/scale.out"
    # -- sipprofile (fresh Kamailio: same users, no bindings) --
    tests/peers/kamailio.sh start "$run/kam" "$port" MD5 60 "$n" > /dev/null
    SIPPROFILE_SERVER=$hosting SIPPROFILE_SERVER_LINGER_MS=${SIPPROFILE_SERVER_LINGER_MS:-0} SCALE_IDLE_SECONDS=${SCALE_IDLE_SECONDS:-10} "$scale" "$run/p.db" "sip:127.0.0.1:$port" "$n" > "$run/scale.out" &
    pid=$!
    # Bindings while registered (sampled after REGISTERED, during the idle window).
    while ! grep -q . "$run/scale.out" 2> /dev/null && kill -0 $pid 2> /dev/null; do
        sleep 0.5
        b=$(count_bindings "$run/kam"); [ "$b" -ge "$n" ] && { echo "$b" > "$run/peak"; break; }
    done
    wait $pid
    line=$(cat "$run/scale.out")
    peak=$(cat "$run/peak" 2> /dev/null || echo 0)
    after=$(count_bindings "$run/kam")
    # Correctness, asserted: every binding present while registered, none after.
    if [ "$peak" -lt "$n" ] || [ "$after" != 0 ]; then
        echo "FAILED: N=$n $tool peak bindings $peak, left $after" >&2
        status=1
    fi
    get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
    printf '%s\n' "$n $tool $(get register_s) $(echo "$(get peak_rss_mb) * 1024" | bc) $(get cpu_s) $peak $after $(get save_s) $(get start_ms) $(get rss_per_profile_bytes) $(get idle_cpu_pct) $(get teardown_s) $(get errors)" >> "$results"
    tests/peers/kamailio.sh stop "$run/kam"
    done
    # -- PJSIP (pjsua2-python: 8 accounts per process, so N/8 processes) --
    if [ "$n" -le "${PJSIP_MAX_N:-1000}" ]; then
        python3 -c 'import pjsua2' 2> /dev/null || python3 -m pip install -q pjsua2-python==2.15.1.post1 > /dev/null 2>&1 || true
    fi
    if [ "$n" -le "${PJSIP_MAX_N:-1000}" ] && python3 -c 'import pjsua2' 2> /dev/null; then
        tests/peers/kamailio.sh start "$run/kam" "$port" MD5 60 "$n" > /dev/null
        t0=$(date +%s.%N)
        pids=()
        for first in $(seq 1 8 "$n"); do
            count=$((n - first + 1)); [ $count -gt 8 ] && count=8
            python3 benches/pjsip/register.py "$port" "$first" "$count" > "$run/pj.$first" 2> /dev/null &
            pids+=($!)
        done
        wait "${pids[@]}" || true
        last=$(cat "$run"/pj.* | awk '$1 == "registered" { if ($2 < 0) bad = 1; if ($2 > m) m = $2 } END { if (bad) print -1; else print m }')
        rss=$(cat "$run"/pj.* | awk '$1 == "rss_kib" { s += $2 } END { print s }')
        bind=$(count_bindings "$run/kam")
        secs=$(echo "$last - $t0" | bc)
        [ "$last" = -1 ] && secs=-1
        printf '%s\n' "$n PJSIP $secs $rss 0 $bind" >> "$results"
        tests/peers/kamailio.sh stop "$run/kam"
    fi
    rm -rf "$run"
done

echo
printf '%-6s %-18s %9s %10s %9s %12s %9s %9s\n' N tool seconds 'regs/s' 'x SIPp' 'peak RSS MB' 'CPU s' bindings
# (PJSIP: CPU s not measured, 0)
while read -r n tool secs rss cpu bind rest; do
    [ "$tool" = SIPp ] && sipp_secs=$secs
    ratio=$(echo "scale=2; $secs / $sipp_secs" | bc)
    printf '%-6s %-18s %9.3f %10.0f %9s %12.1f %9.2f %9s\n' "$n" "$tool" "$secs" "$(echo "$n / $secs" | bc -l)" "$ratio" "$(echo "$rss / 1024" | bc -l)" "$cpu" "$bind"
done < "$results"
echo
echo "sipprofile details (N, bindings left after teardown, save_s for N durable saves, server start ms, RSS bytes/profile, idle CPU %, teardown s, errors):"
awk '$2 ~ /^sipprofile/ { print "  N=" $1, $2, "left=" $7, "save_s=" $8, "start_ms=" $9, "rss_per_profile=" $10, "idle_cpu_pct=" $11, "teardown_s=" $12, "errors=" $13 }' "$results"
echo "results: $results"

# Chart: registrations/s and peak RSS against N, SIPp and sipprofile.
if [ "${BENCH_CHART:-}" = none ]; then exit $status; fi
python3 -c 'import matplotlib' 2> /dev/null || python3 -m pip install -q matplotlib > /dev/null 2>&1 || true
python3 - "$results" "${BENCH_CHART:-benchmarks-scale.png}" << 'PY' || echo "(no chart: matplotlib unavailable)"
import sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
for tool, style in (("SIPp", "s--"), ("sipprofile", "o-"), ("sipprofile-inproc", "^-")):
    pts = [(int(r[0]), float(r[2]), float(r[3]) / 1024) for r in rows if r[1] == tool]
    if not pts:
        continue
    n = [p[0] for p in pts]
    a.plot(n, [p[0] / p[1] for p in pts], style, label=tool)
    b.plot(n, [p[2] for p in pts], style, label=tool)
for ax, title, unit in ((a, "registrations/s (to all registered)", "regs/s"), (b, "peak RSS", "MiB")):
    ax.set_xscale("log"); ax.set_xlabel("N profiles"); ax.set_ylabel(unit); ax.set_title(title); ax.legend(); ax.grid(True, alpha=0.3)
fig.suptitle("Kamailio 5.6 on loopback, MD5 digest, UDP, 2 cores shared")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=100)
print("chart:", sys.argv[2])
PY

exit $status
