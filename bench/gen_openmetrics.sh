#!/bin/bash
# gen_openmetrics.sh SOURCE > OUT: a text 0.0.4 exposition rewritten as
# OpenMetrics 1.0 (for the OpenMetrics parser's throughput benchmark):
# counter families lose their `_total` in HELP/TYPE (OpenMetrics names the
# family without it; kept where that would clash with another family, as
# go_memstats_alloc_bytes does, and then the family is typed unknown),
# `untyped` becomes `unknown`, blank lines and free
# comments are dropped, and `# EOF` ends the file.  Not a benchmark itself.
set -eu
awk '
NR == FNR { if ($1 == "#" && $2 == "TYPE") { typed[$3] = 1; if ($4 == "counter") counter[$3] = 1 }; next }
$1 == "#" && ($2 == "HELP" || $2 == "TYPE") {
    name = $3
    base = name; sub(/_total$/, "", base)
    if ((name in counter) && name ~ /_total$/ && !(base in typed)) {
        sub(/_total /, " ", $0)
    }
    if ($2 == "TYPE" && $4 == "untyped") sub(/ untyped$/, " unknown", $0)
    if ($2 == "TYPE" && (name in counter) && name ~ /_total$/ && (base in typed)) sub(/ counter$/, " unknown", $0)
    print; next
}
/^#/ || /^[ \t]*$/ { next }
{ print }
END { print "# EOF" }
' "$1" "$1"
