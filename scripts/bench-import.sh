#!/usr/bin/env bash
# Bulk provisioning benchmark: `sipprofile import` of N profiles (one
# save_all: one durable SQLite transaction), timed as a whole command (the
# CLI's start, the server's start, the import), then the store's size on
# disk per profile once the server has stopped (WAL checkpointed into the
# file). Release build.
#   scripts/bench-import.sh [N ...]        (default: 1000 10000 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=("$@")
[ $# -gt 0 ] || sizes=(1000 10000 100000)
nice cargo build --release --bin sipprofile --bin sipprofile-server --quiet
export SIPPROFILE_SERVER_BIN=$PWD/target/release/sipprofile-server SIPPROFILE_SERVER_LINGER_MS=0
printf '%-7s %10s %14s %14s %12s\n' N 'import s' 'profiles/s' 'store bytes' 'bytes/profile'
for n in "${sizes[@]}"; do
    run=$(mktemp -d /tmp/sipprofile-import.XXXXXX)
    awk -v n="$n" 'BEGIN {
        print "["
        for (i = 1; i <= n; i++)
            printf "{\"type\":{\"name\":\"IETF\",\"class\":0},\"aor\":\"sip:user%d@sipprofile.test\",\"registrar\":{\"address\":\"sip:127.0.0.1:5060\",\"user\":\"user%d\",\"password\":\"pw%d\"}}%s\n", i, i, i, (i < n ? "," : "")
        print "]"
    }' > "$run/in.json"
    t0=$(date +%s.%N)
    target/release/sipprofile --store "$run/p.db" import "$run/in.json" > /dev/null
    t1=$(date +%s.%N)
    # The server stops once its last client is gone: wait (bounded) for it.
    for _ in $(seq 100); do
        target/release/sipprofile --store "$run/p.db" server 2> /dev/null | grep -q "No profile server runs" && break
        sleep 0.1
    done
    count=$(sqlite3 "$run/p.db" "SELECT count(*) FROM profiles")
    [ "$count" = "$n" ] || { echo "FAILED: $count profiles stored, not $n" >&2; exit 1; }
    bytes=$(stat -c %s "$run/p.db")
    wal=$(stat -c %s "$run/p.db-wal" 2> /dev/null || echo 0)
    secs=$(echo "$t1 - $t0" | bc)
    printf '%-7s %10.3f %14.0f %14s %12.0f\n' "$n" "$secs" "$(echo "$n / $secs" | bc -l)" "$((bytes + wal))" "$(echo "($bytes + $wal) / $n" | bc -l)"
    rm -rf "$run"
done
