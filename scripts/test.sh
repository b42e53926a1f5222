#!/usr/bin/env bash
# Every test suite: Rust unit and integration tests (header sync, C and C++
# tests with ASan/UBSan and valgrind against Kamailio, interop with Kamailio
# and SIPp, conformance, CLI, install), the Python package's pytest suite,
# and a short coverage-guided fuzzing run. Installs what it needs when missing. Prints each runner's summary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
log=$(mktemp /tmp/sipprofile-test.XXXXXX.log)
failed=0

echo "== cargo test --all-targets (unit; header; C, C++ with ASan/UBSan and valgrind; Kamailio and SIPp interop; conformance; CLI; install)"
cargo test --all-targets --no-fail-fast 2>&1 | tee "$log" \
    | grep -E --line-buffered '^(\s+Running|test result|test .* FAILED)' || true
if grep -q -E 'test result: FAILED|^error(\[|:)' "$log" || ! grep -q '^test result' "$log"; then
    failed=1
fi

echo "== Python package (fresh virtualenv: pip install builds and bundles the library; pytest against Kamailio)"
# The debug build cargo test just made is bundled (SIPPROFILE_CARGO_PROFILE):
# the same install a user does, without a second, release build.
venv=$(mktemp -d /tmp/sipprofile-venv.XXXXXX)
pylog=$(mktemp /tmp/sipprofile-pytest.XXXXXX.log)
pystart=$(date +%s)
if ! { python3 -m venv "$venv" \
    && SIPPROFILE_CARGO_PROFILE=debug "$venv/bin/pip" install --quiet ./bindings/python pytest pycparser \
    && env -u SIPPROFILE_LIB "$venv/bin/python" -m pytest -q -p no:cacheprovider bindings/python/tests; } > "$pylog" 2>&1; then
    failed=1
    cat "$pylog"
fi
pyseconds=$(( $(date +%s) - pystart ))
rm -rf "$venv"

echo "== API reference (scripts/api-docs.sh: Doxygen from the headers' comments)"
apilog=$(mktemp /tmp/sipprofile-apidocs.XXXXXX.log)
if ! scripts/api-docs.sh target/doc/api > "$apilog" 2>&1; then
    failed=1
    cat "$apilog"
fi

echo "== fuzzing (coverage-guided, 15 s per target; scripts/fuzz.sh N for longer)"
fuzzlog=$(mktemp /tmp/sipprofile-fuzz.XXXXXX.log)
if ! scripts/fuzz.sh 15 > "$fuzzlog" 2>&1; then
    failed=1
    tail -n 40 "$fuzzlog"
fi

echo "== scale smoke (scripts/bench-scale.sh with N=200, debug build)"
benchlog=$(mktemp /tmp/sipprofile-bench-smoke.XXXXXX.log)
if ! BENCH_PROFILE=debug SCALE_IDLE_SECONDS=1 BENCH_CHART=none PJSIP_MAX_N=0 scripts/bench-scale.sh 200 > "$benchlog" 2>&1; then
    failed=1
    tail -n 20 "$benchlog"
fi

echo "== summary"
grep -E '^test result' "$log" || true
# The packaging and CLI checks by name (their suites are counted above).
for t in install::deb_installs_and_an_example_registers_through_it \
    install::exported_symbols_are_exactly_the_headers_functions \
    cli::every_key_survives_export_then_import cli::set_parses_booleans_and_numbers_strictly \
    cli::watch_json_prints_one_object_per_event cli::remove_alias_suggestions_and_man_pages; do
    grep -E "^test ${t#*::} \.\.\. " "$log" | sed "s/^test [^ ]* /${t%%::*}: ${t#*::} /" || echo "${t%%::*}: ${t#*::} did not run"
done
echo "api docs: $(grep -o 'sip_[a-z_0-9]*' target/doc/api/html/globals_func.html 2> /dev/null | sort -u | wc -l) C functions documented ($(tail -n 1 "$apilog"))"
echo "pytest (fresh venv, bundled library, ${pyseconds} s with the install): $(tail -n 1 "$pylog")"
grep -a -E '^Done [0-9]+ runs' "$fuzzlog" | sed 's/^/fuzz: /' || true
grep -E '^200 ' "$benchlog" | sed 's/^/scale smoke: N=/' || true
if [ "$failed" != 0 ]; then
    echo "FAILED (logs: $log $pylog)"
    exit 1
fi
echo "all test suites passed"
