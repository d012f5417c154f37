#!/bin/bash
# Runs ndtpipe's tests and prints one closing line "N passed, N failed, N skipped".
#
#   tests/run.sh              unit tests (ASan+UBSan build) then integration tests
#   tests/run.sh unit         unit tests only
#   tests/run.sh integration  integration tests only
#   BUILD=dir                 use dir/ndtpipe and dir/asan/tests (default build)
#   TESTS=pattern             run only the test files whose name matches
#
# A unit test is a cmocka binary in $BUILD/asan/tests; an integration test is
# an executable tests/integration/*.sh driving build/ndtpipe and real peers
# on 127.0.0.1.  Exit 77 from an integration test means skipped (the
# automake convention), anything else non-zero is a failure.  Each test's
# output goes to build/test-logs/<name>.log and is shown when it fails.
set -u
cd "$(dirname "$0")/.."
what=${1:-all}
BUILD=${BUILD:-build}
logs=$BUILD/test-logs
mkdir -p "$logs"
passed=0 failed=0 skipped=0 failures=()

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export NDT_FIXTURES=${NDT_FIXTURES:-$(cd .. && pwd)/shared/fixtures}
export NDTPIPE=${NDTPIPE:-$PWD/$BUILD/ndtpipe}

run_one() { # name, command...
    local name=$1; shift
    local log="$logs/${name//\//_}.log" start end rc
    start=$(date +%s%N)
    "$@" >"$log" 2>&1
    rc=$?
    end=$(date +%s%N)
    local ms=$(( (end - start) / 1000000 )) secs
    secs=$(printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)))
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1)); printf 'PASS  %-40s %6ss\n' "$name" "$secs"
    elif [ $rc -eq 77 ]; then
        skipped=$((skipped + 1)); printf 'SKIP  %-40s %s\n' "$name" "$(tail -n 1 "$log")"
    else
        failed=$((failed + 1)); failures+=("$name")
        printf 'FAIL  %-40s %6ss (exit %d)\n' "$name" "$secs" "$rc"
        sed 's/^/    | /' "$log" | tail -n 60
    fi
}

if [ "$what" = all ] || [ "$what" = unit ]; then
    for t in "$BUILD"/asan/tests/test_*; do
        [ -x "$t" ] || continue
        case "$t" in *.d) continue ;; esac
        name=unit/$(basename "$t")
        [[ -n "${TESTS:-}" && "$name" != *${TESTS}* ]] && continue
        run_one "$name" "$t"
    done
fi
if [ "$what" = all ] || [ "$what" = integration ]; then
    for t in tests/integration/*.sh; do
        [ -x "$t" ] || continue
        name=integration/$(basename "$t" .sh)
        [[ -n "${TESTS:-}" && "$name" != *${TESTS}* ]] && continue
        run_one "$name" "$t"
    done
fi

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
