#!/bin/bash
# make bench: runs every benchmark script in bench/ (all *.sh but the
# helpers) and prints their Markdown results; BENCH=pattern picks some.
# Results worth keeping are copied into docs/PERFORMANCE.md with the
# command that produced them.
set -u
cd "$(dirname "$0")"
status=0
for b in *.sh; do
    case "$b" in lib.sh | run.sh | gen_*.sh) continue ;; esac
    [[ -n "${BENCH:-}" && "$b" != *${BENCH}* ]] && continue
    echo "# bench/$b"
    echo
    if ! ./"$b"; then
        echo "bench/$b failed" >&2
        status=1
    fi
    echo
done
exit $status
