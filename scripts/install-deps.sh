#!/bin/sh
# Installs what the demo and the tests need on Debian, only when missing:
# Kamailio (registrar, sqlite and TLS modules), SIPp, dnsmasq (the DNS
# server of the RFC 3263 tests), sqlite3, pkg-config.
set -eu
need=""
command -v kamailio > /dev/null 2>&1 || need="$need kamailio"
[ -f /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so ] || need="$need kamailio-sqlite-modules"
[ -f /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || need="$need kamailio-tls-modules"
command -v sipp > /dev/null 2>&1 || need="$need sip-tester"
[ -x /usr/sbin/dnsmasq ] || need="$need dnsmasq-base"
command -v sqlite3 > /dev/null 2>&1 || need="$need sqlite3"
command -v pkg-config > /dev/null 2>&1 || need="$need pkg-config"
command -v make > /dev/null 2>&1 || need="$need make"
command -v valgrind > /dev/null 2>&1 || need="$need valgrind"
command -v openssl > /dev/null 2>&1 || need="$need openssl"
command -v readelf > /dev/null 2>&1 || need="$need binutils"
command -v cc > /dev/null 2>&1 || need="$need gcc"
command -v c++ > /dev/null 2>&1 || need="$need g++"
if [ -n "$need" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing:$need"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $need
fi
