#!/usr/bin/env bash
# Every test suite: Rust unit and integration tests (header sync, C tests
# with ASan/UBSan against Kamailio, interop with Kamailio and SIPp). Installs
# what it needs when missing. Prints each runner's summary lines.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
log=$(mktemp /tmp/sipprofile-test.XXXXXX.log)
echo "== cargo test --all-targets (unit, header, C with ASan against Kamailio, interop)"
rc=0
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log" \
    | grep -E --line-buffered '^(\s+Running|test result|test .* FAILED|failures:)' || rc=$?
cargo_rc=$(grep -c -E 'test result: FAILED|^error(\[|:)' "$log" || true)
echo "== summary"
grep -E '^test result' "$log" || true
if [ "$cargo_rc" != "0" ] || ! grep -q '^test result' "$log"; then
    echo "FAILED: see $log"
    exit 1
fi
echo "all test suites passed"
