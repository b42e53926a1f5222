#!/usr/bin/env bash
# Refresh benchmark: N profiles registered from one process with Kamailio
# (MD5 digest, UDP, loopback), then watched for a whole refresh period.
# Kamailio's own counters are sampled every second: accepted REGISTERs and
# bound contacts. Prints how the refreshes spread (first/last second after
# all were registered, the busiest second), the client's CPU over the
# period, and asserts that every profile refreshed and that no binding
# lapsed (bound contacts never below N).
#   scripts/bench-refresh.sh [N] [EXPIRES]      (default: 10000 3600)
# With the default expiry the refreshes fall 2,700-3,000 s after
# registering, so a run takes about 53 minutes; EXPIRES=600 takes 6.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh > /dev/null
n=${1:-10000}
expires=${2:-3600}
# Last refresh due (src/sip/registration.rs `refresh_after`), plus a margin
# for registering N and the refresh round trips that ends before the next
# round of refreshes (at 90 % of twice that).
if [ "$expires" -le 1200 ]; then due=$((expires / 2)); else due=$((expires - 600)); fi
margin=$((due / 20 > 10 ? due / 20 : 10))
idle=$((due + margin))
min_expires=$((expires < 60 ? expires : 60))
cargo build --release --example scale --quiet
run=$(mktemp -d /tmp/sipprofile-refresh.XXXXXX)
port=$((20000 + RANDOM % 20000))
tests/peers/kamailio.sh start "$run/kam" "$port" MD5 "$min_expires" "$n" > /dev/null
stat() { kamcmd -s "unix:$run/kam/ctl" stats.get_statistics "$1" | sed -n 's/.*= *//p'; }
env_expires=()
[ "$expires" != 3600 ] && env_expires=(SCALE_EXPIRES="$expires")
env SCALE_IDLE_SECONDS="$idle" "${env_expires[@]}" \
    target/release/examples/scale "$run/p.db" "sip:127.0.0.1:$port" "$n" > "$run/scale.out" &
pid=$!
echo "N=$n expires=$expires: watching for about $((idle + 30)) s (Kamailio counters every second)"
t0=$(date +%s)
# Bounded: the scale run ends by itself after its idle window; this loop
# also stops at twice that.
while kill -0 $pid 2> /dev/null && [ $(($(date +%s) - t0)) -lt $((2 * idle + 120)) ]; do
    echo "$(date +%s.%N) $(stat accepted_regs) $(stat location_contacts)" >> "$run/samples"
    sleep 1
done
wait $pid
line=$(cat "$run/scale.out")
tests/peers/kamailio.sh stop "$run/kam"
get() { echo "$line" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
# samples: time, accepted REGISTERs so far, contacts bound. Registered =
# the first sample with N accepted; refreshes = what was accepted after it.
# The last few samples fall in the teardown (contacts going): not counted.
status=0
awk -v n="$n" -v idle="$idle" '
    { t[NR] = $1; acc[NR] = $2; bound[NR] = $3 }
    END {
        for (i = 1; i <= NR && acc[i] < n; i++) {}
        r = i; if (r > NR) { print "FAILED: never all registered"; exit 1 }
        minb = n; busiest = 0; first = -1; last = -1
        for (i = r + 1; i <= NR; i++) {
            if (t[i] - t[r] > idle - 5) break
            d = acc[i] - acc[i - 1]
            if (d > 0) { if (first < 0) first = t[i] - t[r]; last = t[i] - t[r] }
            if (d > busiest) busiest = d
            if (bound[i] < minb) minb = bound[i]
        }
        refreshed = acc[i - 1] - acc[r]
        printf "all registered after %.0f s; refreshes %d of %d, from %.0f s to %.0f s after that; busiest second %d (%.1f%% of N); bound contacts never below %d\n", t[r] - t[1], refreshed, n, first, last, busiest, 100 * busiest / n, minb
        if (refreshed < n || minb < n) { print "FAILED: a profile did not refresh or a binding lapsed"; exit 1 }
    }' "$run/samples" || status=1
echo "client: register_s=$(get register_s) cpu over the ${idle} s window (refreshes included)=$(get idle_cpu_pct) % of a core, rss_per_profile_bytes=$(get rss_per_profile_bytes), errors=$(get errors)"
echo "samples: $run/samples"
exit $status
