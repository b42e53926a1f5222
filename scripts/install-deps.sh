#!/bin/sh
# Installs what the demo and the tests need on Debian, only when missing:
# Kamailio (registrar, sqlite, TLS, outbound and stun modules), SIPp,
# dnsmasq (the DNS server of the RFC 3263 tests), sqlite3, pkg-config,
# compilers and binutils, dpkg-deb, python3-venv, doxygen (scripts/api-docs.sh),
# iproute2 and util-linux (network namespaces for the network-change tests).
set -eu
need=""
command -v kamailio > /dev/null 2>&1 || need="$need kamailio"
[ -f /usr/lib/x86_64-linux-gnu/kamailio/modules/db_sqlite.so ] || need="$need kamailio-sqlite-modules"
[ -f /usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so ] || need="$need kamailio-tls-modules"
[ -f /usr/lib/x86_64-linux-gnu/kamailio/modules/outbound.so ] || need="$need kamailio-outbound-modules"
command -v sipp > /dev/null 2>&1 || need="$need sip-tester"
[ -x /usr/sbin/dnsmasq ] || need="$need dnsmasq-base"
command -v ip > /dev/null 2>&1 || need="$need iproute2"
command -v nsenter > /dev/null 2>&1 || need="$need util-linux"
command -v sqlite3 > /dev/null 2>&1 || need="$need sqlite3"
command -v pkg-config > /dev/null 2>&1 || need="$need pkg-config"
command -v make > /dev/null 2>&1 || need="$need make"
command -v valgrind > /dev/null 2>&1 || need="$need valgrind"
command -v openssl > /dev/null 2>&1 || need="$need openssl"
command -v readelf > /dev/null 2>&1 || need="$need binutils"
command -v cc > /dev/null 2>&1 || need="$need gcc"
command -v dpkg-deb > /dev/null 2>&1 || need="$need dpkg"
command -v doxygen > /dev/null 2>&1 || need="$need doxygen"
# The Python test makes a fresh virtualenv (Debian's python3 needs python3-venv).
python3 -c 'import venv, ensurepip' > /dev/null 2>&1 || need="$need python3-venv"
command -v c++ > /dev/null 2>&1 || need="$need g++"
if [ -n "$need" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "installing:$need"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $need
fi
