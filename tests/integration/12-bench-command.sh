#!/bin/bash
# `ndtpipe bench`: lists exactly the harnesses of bench/ (every *.sh but
# the helpers), refuses a name that picks none (exit 2) and an unknown
# option (exit 2).  Running the benchmarks themselves is `make bench`.
. "$(dirname "$0")/lib.sh"
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
"$NDTPIPE" bench --list >"$T/list" || fail "bench --list exited $?"
(cd "$ROOT/bench" && ls *.sh | grep -v -e '^lib.sh$' -e '^run.sh$' -e '^gen_' | sed 's/\.sh$//' | sort) >"$T/want"
diff -u "$T/want" "$T/list" || fail "bench --list differs from bench/*.sh"
[ "$(wc -l <"$T/list")" -ge 5 ] || fail "fewer than five benchmarks listed"
rc=0; "$NDTPIPE" bench no-such-benchmark 2>"$T/err" || rc=$?
[ $rc -eq 2 ] || fail "an unknown benchmark name: exit $rc, want 2"
grep -q "no benchmark matches 'no-such-benchmark'" "$T/err" || fail "message: $(cat "$T/err")"
rc=0; "$NDTPIPE" bench --bogus 2>/dev/null || rc=$?
[ $rc -eq 2 ] || fail "an unknown option: exit $rc, want 2"
echo ok
