#!/bin/bash
# Runs every benchmark bench/*.sh (what `make bench` calls).  Each prints
# its results; docs/PERFORMANCE.md records them with the machine they ran on.
set -u
cd "$(dirname "$0")/.."
failed=0
for b in bench/*.sh; do
    case "$(basename "$b")" in run.sh | gen_*.sh) continue ;; esac
    echo "== $b"
    bash "$b" || { echo "bench: $b failed" >&2; failed=1; }
done
exit $failed
