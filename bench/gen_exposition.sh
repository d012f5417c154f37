#!/bin/bash
# gen_exposition.sh SOURCE COPIES > OUT: a large, valid text exposition made
# from a real one (node-exporter's e2e-output.txt in the benchmarks).
#
# Every family keeps its HELP/TYPE once; each of its samples is repeated
# COPIES times with target labels added (instance, job, namespace, pod,
# replica), as a federating Prometheus or a large kube-state-metrics
# would expose them.  Summaries and histograms stay valid: each copy is a
# distinct series.  Not a benchmark itself (no .sh runs it alone).
set -eu
src=$1 copies=$2
awk -v K="$copies" '
function flush(   k, i, line, brace, sp, labels) {
    for (k = 1; k <= K; k++) {
        labels = sprintf("instance=\"10.%d.%d.%d:9100\",job=\"node-exporter\",namespace=\"monitoring-%02d\",pod=\"node-exporter-7d9f8c6b5-%05d\",replica=\"%d\"", int(k / 256) % 256, k % 256, (k * 7) % 256, k % 16, k * 37 % 100000, k)
        for (i = 1; i <= n; i++) {
            line = block[i]
            brace = index(line, "{")
            sp = index(line, " ")
            if (brace > 0 && (sp == 0 || brace < sp))
                print substr(line, 1, brace) labels "," substr(line, brace + 1)
            else
                print substr(line, 1, sp - 1) "{" labels "}" substr(line, sp)
        }
    }
    n = 0
}
/^#/ { flush(); print; next }
/^[ \t]*$/ { next }
{ block[++n] = $0 }
END { flush() }
' "$src"
