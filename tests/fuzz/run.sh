#!/bin/bash
# Builds and briefly runs libFuzzer targets (what `make fuzz` calls).
#
#   tests/fuzz/run.sh [tests/fuzz/fuzz_NAME.c ...]    (default: all of them)
#   FUZZ_SECONDS=N   time per target (default 10)
#   BUILD=dir        build tree (default build): binaries in $BUILD/fuzz/,
#                    corpora in $BUILD/fuzz/corpus/NAME/, crashes in
#                    $BUILD/fuzz/artifacts/NAME/
#
# A target is one C file with LLVMFuzzerTestOneInput.  It declares in its
# top comment what it needs, one line each (globs relative to the repo):
#   fuzz-sources: common/arena.c ingest/*.c     module sources to link
#                 (default: every common/ and ingest/ source and the
#                 generated protobuf code); GEN/ stands for $BUILD/gen/
#   fuzz-libs: -lz                               extra link flags
#   fuzz-seeds: DIR ...                          seed directories, or "none"
#                 (default: $NDT_FIXTURES, the exposition fixtures)
# Sources are compiled with clang -fsanitize=fuzzer-no-link,address,undefined
# and the target is linked with -fsanitize=fuzzer, so libFuzzer's coverage
# sees the code under test.  Exits non-zero if a target fails to build or
# finds a crash (the reproducer's path is printed).
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-10}
NDT_FIXTURES=${NDT_FIXTURES:-$(cd .. && pwd)/shared/fixtures}
CLANG=${CLANG:-clang}
out=$BUILD/fuzz
# The Makefile passes the pkg-config flags of the project's libraries.
PKG_CFLAGS=${PKG_CFLAGS:-}
PKG_LIBS=${PKG_LIBS:--lm}
CFLAGS="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -I. -I$BUILD/gen -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-unused-parameter $PKG_CFLAGS"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"

command -v "$CLANG" >/dev/null || { echo "fuzz: $CLANG not installed (make deps)" >&2; exit 1; }
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tests/fuzz/fuzz_*.c)

# declared FILE KEY: the value of a "KEY:" line in FILE's top comment.
declared() {
    sed -n "s/^[ *#/]*$2:[[:space:]]*//p" "$1" | head -n 1
}

build_target() { # file name
    local file=$1 name=$2 srcs libs objs=() src obj
    srcs=$(declared "$file" fuzz-sources)
    [ -n "$srcs" ] || srcs="common/*.c ingest/*.c GEN/ingest/*.pb-c.c"
    srcs=${srcs//GEN\//$BUILD/gen/}
    libs=$(declared "$file" fuzz-libs)
    mkdir -p "$out/obj/$name"
    for src in $srcs; do
        [ -f "$src" ] || { echo "fuzz: $name: no source $src" >&2; return 1; }
        obj=$out/obj/$name/$(echo "${src%.c}" | tr / _).o
        "$CLANG" $CFLAGS $SAN -fsanitize=fuzzer-no-link -c "$src" -o "$obj" || return 1
        objs+=("$obj")
    done
    "$CLANG" $CFLAGS $SAN -fsanitize=fuzzer "$file" "${objs[@]}" -o "$out/$name" $libs $PKG_LIBS
}

failed=0
for file in "${targets[@]}"; do
    name=$(basename "$file" .c)
    echo "fuzz: building $name"
    if ! build_target "$file" "$name"; then
        echo "fuzz: $name: build failed" >&2
        failed=1
        continue
    fi
    seeds=$(declared "$file" fuzz-seeds)
    [ -n "$seeds" ] || seeds=$NDT_FIXTURES
    [ "$seeds" = none ] && seeds=
    corpus=$out/corpus/$name
    artifacts=$out/artifacts/$name
    mkdir -p "$corpus" "$artifacts"
    echo "fuzz: running $name for ${FUZZ_SECONDS}s"
    # Fixture directories are nested: libFuzzer reads only files at the
    # top of a seed directory, so flatten the seeds into the corpus once.
    for d in $seeds; do
        find "$d" -type f -size -1024k -exec cp -n {} "$corpus/" \; 2>/dev/null
    done
    if ! "$out/$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 \
        -max_len=65536 -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$corpus" >"$out/$name.log" 2>&1; then
        echo "fuzz: $name FAILED, see $out/$name.log; reproducer(s):" >&2
        ls "$artifacts" >&2
        tail -n 40 "$out/$name.log" >&2
        failed=1
    else
        grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$out/$name.log" | tr '\n' ' '
        echo
    fi
done
exit $failed
