#!/bin/sh
# The demo: builds the library and examples-c/register, starts Kamailio on
# loopback, provisions a profile in a fresh store, registers, prints the
# events, de-registers, and stops Kamailio.
set -eu
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --lib --release
make -s -C examples-c LIBDIR=../target/release BUILD=build-release
run=$(mktemp -d /tmp/sipprofile-demo.XXXXXX)
port=${SIPPROFILE_DEMO_PORT:-5070}
trap 'tests/peers/kamailio.sh stop "$run"; rm -rf "$run"' EXIT
tests/peers/kamailio.sh start "$run" "$port" MD5
echo "Kamailio registrar on 127.0.0.1:$port (user alice, password alicepw)"
SIPPROFILE_LOG=${SIPPROFILE_LOG:-info} examples-c/build-release/register \
    "$run/profiles.db" "sip:127.0.0.1:$port" sip:alice@sipprofile.test alice alicepw
