#!/bin/bash
# 10-check-metrics: `ndtpipe check metrics` agrees with `promtool check
# metrics` on every fixture and on crafted inputs.
#
# promtool exit codes: 0 clean, 3 lint problems only (still a valid
# exposition), 1 parse error.  ndtpipe: 0 valid, 1 invalid.  For invalid
# inputs the line number must agree too (promtool prints "line N", ndtpipe
# "FILE:N:COL: reason").  Intentional disagreements are listed at the end
# with their reasons.  promtool 2.42 has no OpenMetrics checker, so the
# --openmetrics verdicts are asserted on their own.
. "$(dirname "$0")/lib.sh"
need promtool jq
[ -x "$NDTPIPE" ] || fail "build first: $NDTPIPE missing"

checked=0
# agree FILE: both tools give the same verdict (and line when invalid).
agree() {
    local f=$1 p n pline nline
    promtool check metrics <"$f" >"$T/p.out" 2>&1; p=$?
    "$NDTPIPE" check metrics "$f" >/dev/null 2>"$T/n.err"; n=$?
    [ $p = 3 ] && p=0
    [ $p = 0 ] || [ $p = 1 ] || fail "promtool exit $p on $f: $(cat "$T/p.out")"
    [ $p = $n ] || fail "verdicts differ on $f: promtool $p, ndtpipe $n: $(cat "$T/n.err" "$T/p.out")"
    if [ $n = 1 ]; then
        pline=$(grep -o 'line [0-9]*' "$T/p.out" | head -1 | cut -d' ' -f2)
        nline=$(sed -n 's/^.*:\([0-9]*\):\([0-9]*\): .*$/\1/p' "$T/n.err" | head -1)
        [ -n "$nline" ] || fail "no line:col in ndtpipe's error on $f: $(cat "$T/n.err")"
        [ "$pline" = "$nline" ] || fail "error line differs on $f: promtool $pline, ndtpipe $nline"
    fi
    checked=$((checked + 1))
}

# 1. Every exposition fixture (SOURCES.md and the NGSI-LD JSON are not).
while IFS= read -r f; do
    agree "$f"
done < <(find "$NDT_FIXTURES" -type f ! -path '*smart-data-models*' ! -name SOURCES.md | sort)
[ $checked -ge 58 ] || fail "only $checked fixtures found under $NDT_FIXTURES"
note "$checked fixtures: same verdicts as promtool"

# 2. Crafted inputs, valid and invalid, one per file.
cases=(
    'foo 1\n'  'foo 1'  'foo 1\r\n'  '# HELP foo x\r\nfoo 1\n'
    '# TYPE foo counter\n# TYPE foo counter\nfoo 1\n'  '# HELP foo a\n# HELP foo b\n'
    'foo 1\n# TYPE foo counter\n'  'foo 1\n# HELP foo x\n'  '1foo 1\n'  'foo{a="1",a="2"} 1\n'
    '# TYPE h histogram\nh_bucket{a="1"} 1\n'  '# TYPE h histogram\nh_bucket{le="x"} 1\n'
    'foo 1 123 x\n'  'foo{a="b"}1\n'  'foo 1 1.5\n'  'foo{a="\\q"} 1\n'  'foo{a="\\\\ \\" \\n"} 1\n'
    'foo{a=b} 1\n'  'foo{} 1\n'  'foo{a="1",} 1\n'  'foo{ a="1" , b = "2" } 1\n'
    'a NaN\nb nan\nc +Inf\nd -Inf\ne Inf\nf inf\nh infinity\n'  'foo +nan\n'  'foo 0x1p3\n'
    'foo 1_000\n'  '# TYPE foo bogus\n'  '# TYPE foo gauge_histogram\nfoo 1\n'  '# TYPE foo COUNTER\n'
    '# HELP\n'  '# TYPE foo\n'  'foo{__name__="x"} 1\n'  'foo\n'  'foo \n'  'foo\t1\t2\n'  '  foo 1\n'
    '#TYPE foo counter\nfoo 1\n'  '# HELP foo a \\" b\n'  'foo 1e400\n'  'foo 1e-400\n'
    'foo 1\nbar 1\nfoo 2\n'  'foo 1 -5\n'  'foo{a="\xff"} 1\n'  '# HELP foo \xff\n'
    'foo{a="x\x1cy"} 1\n'  'foo 1 2 \n'  'foo  1\n'  '\n\n'  ''  'foo 1\n   '
    '# TYPE s summary\ns_count 1\n# TYPE s_count gauge\n'  'foo{a="x\n'  '# HELP 1foo x\n'
)
i=0
for c in "${cases[@]}"; do
    i=$((i + 1))
    printf "$c" >"$T/case$i.txt"
    agree "$T/case$i.txt"
done
note "${#cases[@]} crafted inputs: same verdicts and lines as promtool"

# 3. stdin, '-', --dump, usage errors.
f=$NDT_FIXTURES/prometheus/alltypes.237mfs.prom.txt
"$NDTPIPE" check metrics <"$f" || fail "stdin redirect"
cat "$f" | "$NDTPIPE" check metrics - || fail "stdin pipe"
"$NDTPIPE" check metrics --dump "$f" >"$T/dump.jsonl" || fail "--dump"
[ "$(wc -l <"$T/dump.jsonl")" = 1857 ] || fail "--dump printed $(wc -l <"$T/dump.jsonl") lines, want 1857"
jq -e -s 'length == 1857 and (map(select(.value == "NaN")) | length) == 12' "$T/dump.jsonl" >/dev/null \
    || fail "--dump output is not the expected JSON"
jq -e -s '.[0] | .name and .labels and .type and .family' "$T/dump.jsonl" >/dev/null || fail "--dump fields"
"$NDTPIPE" check metrics --dump "$NDT_FIXTURES/cadvisor/prometheus_metrics" |
    jq -e -s 'map(select(.timestamp_ms == 1395066363000)) | length == 276' >/dev/null || fail "timestamps in --dump"
"$NDTPIPE" check metrics --openmetrics --dump "$NDT_FIXTURES/prometheus/alltypes.5mfs.om.txt" |
    jq -e -s 'map(select(.exemplar)) | .[0].exemplar.labels.dummyID == "17783"' >/dev/null || fail "exemplar in --dump"
"$NDTPIPE" check metrics --bogus "$f" 2>/dev/null; [ $? = 2 ] || fail "unknown option must exit 2"
"$NDTPIPE" check 2>/dev/null; [ $? = 2 ] || fail "missing 'metrics' must exit 2"
"$NDTPIPE" check metrics "$T/does-not-exist" 2>/dev/null; [ $? = 1 ] || fail "missing file must exit 1"
"$NDTPIPE" check metrics --help | grep -q openmetrics || fail "--help"

# 4. OpenMetrics (no promtool to compare with: 2.42 checks text only).
for f in 1histogram.om.txt alltypes.5mfs.om.txt dump-openmetrics-roundtrip-test.prom dump-openmetrics-test.prom; do
    "$NDTPIPE" check metrics --openmetrics "$NDT_FIXTURES/prometheus/$f" || fail "OM: $f should be valid"
done
# dovecot: counter family with a _count sample, see SOURCES.md.
"$NDTPIPE" check metrics --openmetrics "$NDT_FIXTURES/telegraf/dovecot/input.txt" 2>"$T/om.err" && fail "dovecot OM must be rejected"
grep -q ':33:1: sample "dovecot_imap_command_count"' "$T/om.err" || fail "dovecot OM error: $(cat "$T/om.err")"

# 5. Intentional disagreements: ndtpipe rejects, promtool accepts.
#    - A repeated `le` (or `quantile`) label: Go's parser drops those labels
#      before its duplicate check; a series with two `le` is still broken.
#    - Lines over 1 MiB: a scraper must bound what one line can cost.
printf '# TYPE h histogram\nh_bucket{le="1",le="2"} 1\n' >"$T/dup-le.txt"
{ printf 'foo{a="'; head -c 1100000 /dev/zero | tr '\0' x; printf '"} 1\n'; } >"$T/long.txt"
for f in "$T/dup-le.txt" "$T/long.txt"; do
    promtool check metrics <"$f" >/dev/null 2>&1; p=$?
    [ $p = 0 ] || [ $p = 3 ] || fail "promtool now rejects $(basename "$f"): update this list"
    "$NDTPIPE" check metrics "$f" 2>/dev/null && fail "ndtpipe must reject $(basename "$f")"
done
echo "ok: $checked inputs agree with promtool"
