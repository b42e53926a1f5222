#!/bin/sh
# Starts or stops a Kamailio registrar on loopback for sipprofile's tests and
# demo, with its own config, database and control socket under RUNDIR.
#
#   kamailio.sh start RUNDIR PORT [MD5|SHA-256] [MIN_EXPIRES] [USERS]
#   kamailio.sh stop RUNDIR
#   kamailio.sh bindings RUNDIR        (kamcmd ul.dump)
#   kamailio.sh count RUNDIR           (number of contacts bound)
#
# Environment: KAMAILIO_IPV6=1 also listens on [::1]:PORT (UDP and TCP);
# KAMAILIO_TLS_PORT=N with KAMAILIO_TLS_DIR holding server.pem/server.key
# also listens for TLS on 127.0.0.1:N. KAMAILIO_KEEPALIVE=N: usrloc probes
# every contact with OPTIONS each second and drops one silent for N s.
# KAMAILIO_OUTBOUND=N: RFC 5626 outbound (outbound and stun modules) with a
# Flow-Timer of N s. KAMAILIO_SHM_MB / KAMAILIO_PKG_MB: shared and
# per-process memory (kamailio -m / -M; defaults 64 and 8 MB: enough for
# about 10,000 bindings; 100,000 take about 512 and 16). KAMAILIO_ADDRESSES="A B": listen there instead of on
# 127.0.0.1; KAMAILIO_NETNS_PID=P: run in the network namespace of process P.
#
# Users: alice/alicepw, bob/bobpw in domain sipprofile.test, plus
# user1..userUSERS with password pwN (for scale runs).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cmd=$1 rundir=$2

case $cmd in
start)
    port=$3 algorithm=${4:-MD5} min_expires=${5:-60} users=${6:-0}
    mkdir -p "$rundir"
    rundir=$(cd "$rundir" && pwd)
    rm -f "$rundir/kamailio.db" "$rundir/ctl"
    {
        cat /usr/share/kamailio/db_sqlite/standard-create.sql
        cat /usr/share/kamailio/db_sqlite/auth_db-create.sql
        echo "BEGIN;"
        echo "INSERT INTO subscriber (username, domain, password) VALUES ('alice', 'sipprofile.test', 'alicepw');"
        echo "INSERT INTO subscriber (username, domain, password) VALUES ('bob', 'sipprofile.test', 'bobpw');"
        # One statement for any number of users (100,000 in well under a second).
        echo "WITH RECURSIVE n(i) AS (SELECT 1 WHERE $users > 0 UNION ALL SELECT i + 1 FROM n WHERE i < $users)
              INSERT INTO subscriber (username, domain, password) SELECT 'user' || i, 'sipprofile.test', 'pw' || i FROM n;"
        echo "COMMIT;"
    } | sqlite3 "$rundir/kamailio.db"
    listen=""
    for a in ${KAMAILIO_ADDRESSES:-127.0.0.1}; do
        listen="${listen:+$listen
}listen=udp:$a:$port
listen=tcp:$a:$port"
    done
    if [ -n "${KAMAILIO_IPV6:-}" ]; then
        listen="$listen
listen=udp:[::1]:$port
listen=tcp:[::1]:$port"
    fi
    tls=""
    if [ -n "${KAMAILIO_TLS_PORT:-}" ]; then
        listen="$listen
enable_tls=yes
listen=tls:127.0.0.1:$KAMAILIO_TLS_PORT"
        cat > "$rundir/tls.cfg" <<TLS
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = $KAMAILIO_TLS_DIR/server.key
certificate = $KAMAILIO_TLS_DIR/server.pem

[client:default]
verify_certificate = no
require_certificate = no
TLS
        tls="loadmodule \"tls.so\"
modparam(\"tls\", \"config\", \"$rundir/tls.cfg\")"
    fi
    keepalive=""
    if [ -n "${KAMAILIO_KEEPALIVE:-}" ]; then
        keepalive="modparam(\"usrloc\", \"timer_interval\", 1)
modparam(\"usrloc\", \"ka_mode\", 1)
modparam(\"usrloc\", \"ka_timeout\", $KAMAILIO_KEEPALIVE)
modparam(\"usrloc\", \"ka_loglevel\", 1)"
    fi
    if [ -n "${KAMAILIO_OUTBOUND:-}" ]; then
        keepalive="$keepalive
loadmodule \"outbound.so\"
loadmodule \"stun.so\"
modparam(\"registrar\", \"outbound_mode\", 1)
modparam(\"registrar\", \"flow_timer\", $KAMAILIO_OUTBOUND)"
    fi
    sed -e "s|@RUNDIR@|$rundir|g" -e "s|@PORT@|$port|g" \
        -e "s|@ALGORITHM@|$algorithm|g" -e "s|@MIN_EXPIRES@|$min_expires|g" \
        "$here/kamailio.cfg.in" | awk -v l="$listen" -v t="$tls" -v k="$keepalive" '{ if ($0 == "@LISTEN@") print l; else if ($0 == "@TLS@") print t; else if ($0 == "@KEEPALIVE@") print k; else print }' \
        > "$rundir/kamailio.cfg"
    ${KAMAILIO_NETNS_PID:+nsenter -t "$KAMAILIO_NETNS_PID" -n} kamailio -f "$rundir/kamailio.cfg" ${KAMAILIO_SHM_MB:+-m "$KAMAILIO_SHM_MB"} ${KAMAILIO_PKG_MB:+-M "$KAMAILIO_PKG_MB"} -DD -E -Y "$rundir" -P "$rundir/kamailio.pid" -w "$rundir" \
        > "$rundir/kamailio.log" 2>&1 &
    echo $! > "$rundir/kamailio.shell-pid"
    # Ready when the control socket answers (bounded: 10 s).
    i=0
    while ! kamcmd -s "unix:$rundir/ctl" core.version > /dev/null 2>&1; do
        i=$((i + 1))
        if [ "$i" -gt 100 ]; then
            echo "kamailio did not start; log:" >&2
            cat "$rundir/kamailio.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    ;;
stop)
    # Kamailio removes its pid file as it exits: read it once.
    pid=$(cat "$rundir/kamailio.pid" 2> /dev/null || true)
    for p in "$pid" "$(cat "$rundir/kamailio.shell-pid" 2> /dev/null || true)"; do
        [ -n "$p" ] && kill "$p" 2> /dev/null || true
    done
    i=0
    while [ -n "$pid" ] && kill -0 "$pid" 2> /dev/null && [ $i -lt 50 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    rm -f "$rundir/kamailio.pid" "$rundir/kamailio.shell-pid"
    ;;
bindings)
    kamcmd -s "unix:$rundir/ctl" ul.dump
    ;;
count)
    kamcmd -s "unix:$rundir/ctl" stats.get_statistics location_contacts | sed -n 's/.*= *//p'
    ;;
*)
    echo "usage: $0 start|stop|bindings RUNDIR ..." >&2
    exit 2
    ;;
esac
