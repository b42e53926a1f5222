#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through cargo-fuzz) of what parses
# network input: SIP messages and stream framing, digest challenges, the
# registration state machine fed sequences of hostile responses and timings,
# the profile server's socket protocol (frames and messages), STUN answers,
# requests to our Contact and rtnetlink messages.
#   scripts/fuzz.sh [SECONDS_PER_TARGET]      (default 60; the test command uses 15)
# Seeds (real Kamailio and SIPp responses) are in fuzz/seeds; the growing
# corpus lives in fuzz/corpus (not committed). cargo-fuzz needs nightly
# features; RUSTC_BOOTSTRAP=1 enables them on the stable toolchain, and
# --sanitizer none keeps the build to coverage instrumentation only.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
command -v cargo-fuzz > /dev/null 2>&1 || cargo install cargo-fuzz --locked --quiet
for target in sip_message digest_challenge registration protocol network_input; do
    mkdir -p "corpus/$target"
    cp -n seeds/$target/* "corpus/$target/" 2> /dev/null || true
    RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=70000 -rss_limit_mb=1024 2>&1 | tail -n 1
done
